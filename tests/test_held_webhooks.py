"""Webhooks held outside the database while it is unreachable, and written exactly once when it returns."""
import json
import time
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
import sqlalchemy as sa

from phoneapp import create_app
from phoneapp.extensions import db
from phoneapp.held_webhooks import HeldWebhooks
from phoneapp.models import CallRecord
from phoneapp.services.webhook_events import held_webhooks, replay_held_webhooks
from tests.conftest import base_environ, make_app
from tests.test_routing_cache import down_app, post_signed, setup_routing
from tests.test_webhooks import TRACKING, voice_params


def call_sid(n):
    return f"CA{n:032d}"


def answer_and_finish(app, sid, duration=42):
    """One whole call as Twilio reports it: voice webhook, dial result, the call's completed callback."""
    started = time.monotonic()
    answer = post_signed(app, "/twilio/voice", voice_params(call_sid=sid))
    answered_in = time.monotonic() - started
    dial = post_signed(app, "/twilio/dial-status", {"CallSid": sid, "DialCallStatus": "completed",
                                                     "DialCallSid": "CB" + sid[2:], "DialCallDuration": "40"})
    done = post_signed(app, "/twilio/status", {"CallSid": sid, "CallStatus": "completed",
                                               "CallDuration": str(duration), "To": TRACKING})
    assert (dial.status_code, done.status_code) == (200, 200)
    return answer, answered_in


def up_app(tmp_path):
    """The same install once the database is back: its rows as the outage left them."""
    return create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance")}, environ=base_environ(tmp_path))


def records():
    db.session.expire_all()
    return db.session.scalars(sa.select(CallRecord).order_by(CallRecord.twilio_call_sid)).all()


def test_calls_during_an_outage_are_answered_held_and_written_once_when_the_database_returns(tmp_path,
                                                                                            migrated_postgres):
    assert setup_routing(make_app(tmp_path)).target == "+14155550187"
    down = down_app(tmp_path)
    with down.app_context():
        for n in range(5):
            answer, answered_in = answer_and_finish(down, call_sid(n))
            assert answer.status_code == 200
            assert ET.fromstring(answer.data).find("Dial/Number").text == "+14155550187"
            assert answered_in < 1.0
        assert held_webhooks().count() == 15, "3 webhooks per call, all kept on disk"
        before_replay = replay_held_webhooks()
        assert (before_replay.written, before_replay.remaining) == (0, 15), "nothing written while still down"

    up = up_app(tmp_path)
    with up.app_context():
        result = replay_held_webhooks()
        assert (result.written, result.remaining, result.quarantined) == (15, 0, 0)
        written = records()
        assert [r.twilio_call_sid for r in written] == [call_sid(n) for n in range(5)]
        for record in written:
            assert (record.status, record.duration, record.dial_status) == ("completed", 42, "completed")
            assert (record.routed_by, record.forwarded_to) == ("assignment", "+14155550187")
            # The call is dated when it happened, not when the database came back.
            assert record.ended_at - record.started_at < timedelta(seconds=5)
        assert held_webhooks().count() == 0
        again = replay_held_webhooks()
        assert again.written == 0 and len(records()) == 5, "a second replay writes nothing"


def test_a_replay_interrupted_after_writing_writes_nothing_twice(tmp_path, migrated_postgres):
    """The process died between commit and delete: the same events replay once more onto the same rows."""
    setup_routing(make_app(tmp_path))
    down = down_app(tmp_path)
    with down.app_context():
        answer_and_finish(down, call_sid(7))
        held = held_webhooks()
        saved = {path.name: path.read_text() for path in held.pending()}
    up = up_app(tmp_path)
    with up.app_context():
        assert replay_held_webhooks().written == 3
        for name, text in saved.items():
            (held.directory / name).write_text(text)
        assert replay_held_webhooks().written == 3
        [record] = records()
        assert (record.status, record.duration) == ("completed", 42)


def test_only_one_replayer_at_a_time_and_a_broken_event_is_kept_aside(tmp_path):
    held = HeldWebhooks(tmp_path / "held")
    for n in range(3):
        held.hold({"kind": "call_status", "params": {"CallSid": call_sid(n)}, "received_at": "2026-11-24T10:00:00"})
    seen = []

    def apply_while_another_replays(event):
        assert held.replay(seen.append).busy, "a second replayer must wait its turn"
        if event["params"]["CallSid"] == call_sid(1):
            raise ValueError("cannot be written as it is")
        seen.append(event["params"]["CallSid"])

    result = held.replay(apply_while_another_replays)
    assert (result.written, result.quarantined) == (2, 1)
    assert seen == [call_sid(0), call_sid(2)], "oldest first"
    [kept] = held.failed_directory.glob("*.json")
    assert json.loads(kept.read_text())["params"]["CallSid"] == call_sid(1)
    assert held.count() == 0 and held.quarantined_count() == 1


def test_after_one_failure_the_database_is_not_waited_on_for_every_call(tmp_path, migrated_postgres):
    setup_routing(make_app(tmp_path))
    down = down_app(tmp_path)
    with down.app_context():
        post_signed(down, "/twilio/voice", voice_params(call_sid=call_sid(1)))
        attempts = []
        sa.event.listen(db.engine, "do_connect", lambda *args: attempts.append(1))
        for n in range(2, 12):
            post_signed(down, "/twilio/voice", voice_params(call_sid=call_sid(n)))
        assert attempts == [], "calls within the pause go straight to the routing cache"
        assert held_webhooks().count() == 11


@pytest.mark.parametrize("path, params", [
    ("/twilio/fallback", voice_params()),
    ("/twilio/dial-events", {"CallSid": "CB" + "3" * 32, "ParentCallSid": "CA" + "1" * 32, "CallStatus": "ringing"}),
    ("/twilio/recording?kind=voicemail", {"CallSid": "CA" + "1" * 32, "RecordingUrl": "https://api.twilio.com/r/RE1",
                                          "RecordingSid": "RE" + "1" * 32, "RecordingStatus": "completed",
                                          "RecordingDuration": "9"}),
])
def test_every_writing_webhook_holds_what_it_cannot_write(tmp_path, migrated_postgres, path, params):
    setup_routing(make_app(tmp_path))
    down = down_app(tmp_path)
    with down.app_context():
        response = post_signed(down, path, params)
        assert response.status_code == 200
        assert ET.fromstring(response.data).tag == "Response"
        assert held_webhooks().count() == 1
    up = up_app(tmp_path)
    with up.app_context():
        assert replay_held_webhooks().written == 1
        [record] = records()
        assert record.twilio_call_sid == "CA" + "1" * 32


def test_health_says_how_many_webhooks_wait_for_the_database(tmp_path, migrated_postgres):
    setup_routing(make_app(tmp_path))
    down = down_app(tmp_path)
    with down.app_context():
        answer_and_finish(down, call_sid(3))
        response = down.test_client().get("/api/health")
        assert response.status_code == 503
        database = response.get_json()["components"][0]
        assert database["component"] == "database" and not database["ok"]
        assert "3 webhook(s) held on this server" in database["detail"]
        assert "written when it returns" in database["detail"]
    up = up_app(tmp_path)
    with up.app_context():
        replay_held_webhooks()
        from phoneapp.services.health import current_health

        database = current_health()[0]
        assert database.ok and "held" not in database.detail
