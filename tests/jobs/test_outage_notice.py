"""End to end: Redis goes down under a running `python worker.py`; admins get one e-mail, then one when it is back."""
import time

import pytest

from phoneapp.extensions import db
from phoneapp.services import users
from tests.support.api import ApiClient
from tests.support.apps import make_app
from tests.support.jobs import start_worker, stop_worker, wait_until, worker_environ
from tests.support.mail import Inbox, start_smtp
from tests.support.ports import free_port

ADMIN_MAIL = "ops@example.test"


@pytest.fixture
def inbox():
    inbox = Inbox()
    controller = start_smtp(free_port(), inbox)
    inbox.url = f"smtp://127.0.0.1:{controller.port}"
    yield inbox
    controller.stop()


def redis_notices(inbox):
    return [subject for subject in inbox.subjects() if "Redis" in subject]


def test_a_redis_outage_under_a_running_worker_is_mailed_once_and_its_end_once(
        private_redis, inbox, tmp_path, migrated_postgres):
    environ = {"REDIS_URL": private_redis.url, "SMTP_URL": inbox.url, "ALERT_EMAILS": ADMIN_MAIL,
               "HEALTH_CHECK_INTERVAL": "1", "SYNC_INTERVAL": "1h", "VERIFY_INTERVAL": "1h",
               "MONITOR_ALERTS_INTERVAL": "1h"}
    app = make_app(tmp_path, **environ)
    with app.app_context():
        staff = users.create_user("staff@example.test", "staple paper clip", role="staff")
        api = ApiClient(app.test_client(), users.issue_token(staff))
        worker = start_worker(worker_environ(app, tmp_path, **environ), log_path=tmp_path / "worker.log")
        try:
            wait_until(lambda: api.get("/api/health").status_code == 200, timeout=40,
                       message="every component to be ok with the worker running")
            assert inbox.messages == []

            private_redis.stop()
            response = api.get("/api/health")
            assert response.status_code == 503
            down = [item["component"] for item in response.get_json()["components"] if not item["ok"]]
            assert down == ["redis"]
            wait_until(lambda: redis_notices(inbox), timeout=30, message="the outage e-mail")
            time.sleep(4)  # four more health checks, each still finding Redis down
            notices = redis_notices(inbox)
            assert len(notices) == 1, inbox.subjects()
            assert notices[0].startswith("[phoneapp]") and "Redis is down" in notices[0]
            assert [recipients for recipients, _ in inbox.messages] == [[ADMIN_MAIL]]

            private_redis.start()
            wait_until(lambda: len(redis_notices(inbox)) == 2, timeout=30, message="the recovery e-mail")
            time.sleep(3)
            notices = redis_notices(inbox)
            assert len(notices) == 2 and notices[1].startswith("[phoneapp] Resolved"), inbox.subjects()
            assert api.get("/api/health").status_code == 200
        finally:
            stop_worker(worker)
        db.session.remove()
