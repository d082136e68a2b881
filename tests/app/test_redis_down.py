"""Redis down: calls are still answered and recorded, and staff pages still open (SPEC §8)."""
import time
import xml.etree.ElementTree as ET

import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import CallRecord
from phoneapp.services.webhook_events import webhook_log
from tests.support.apps import make_app
from tests.support.pages import ADMIN, login
from tests.support.webhooks import post_signed, setup_routing, voice_params


def test_webhooks_answer_and_record_with_redis_stopped(tmp_path, migrated_postgres, private_redis):
    app = make_app(tmp_path, REDIS_URL=private_redis.url)
    setup_routing(app)
    private_redis.stop()
    with app.app_context():
        for n in range(5):
            sid = f"CA{n:032d}"
            started = time.monotonic()
            answer = post_signed(app, "/twilio/voice", voice_params(call_sid=sid))
            assert time.monotonic() - started < 1.0
            assert ET.fromstring(answer.data).find("Dial/Number").text == "+14155550187"
            post_signed(app, "/twilio/dial-status", {"CallSid": sid, "DialCallStatus": "no-answer"})
            post_signed(app, "/twilio/status", {"CallSid": sid, "CallStatus": "completed", "CallDuration": "20"})
        stored = db.session.scalars(sa.select(CallRecord).order_by(CallRecord.twilio_call_sid)).all()
        assert [(r.status, r.dial_status) for r in stored] == [("completed", "no-answer")] * 5
        assert webhook_log().waiting()[0] == 0, "the database was up: written at once, nothing left waiting"


def test_staff_pages_open_with_redis_stopped(tmp_path, migrated_postgres, private_redis):
    app = make_app(tmp_path, REDIS_URL=private_redis.url)
    setup_routing(app)
    with app.app_context():
        from phoneapp.services import users

        users.create_user(ADMIN[0], ADMIN[1], role="admin")
    private_redis.stop()
    with app.app_context():
        client = app.test_client()
        assert login(client, *ADMIN).status_code == 303
        # The numbers page would queue a check of its stale numbers; with no queue it still shows them.
        for path in ("/", "/numbers", "/calls", "/health"):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
        assert "Redis" in client.get("/health").get_data(as_text=True)
