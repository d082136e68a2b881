"""The webhook log: every webhook on disk before it is answered, written to the database once, whatever fails."""
import json
import stat
import time
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
import sqlalchemy as sa

from phoneapp import create_app
from phoneapp.extensions import db
from phoneapp.models import CallRecord, utcnow
from phoneapp.services.health import current_health
from phoneapp.services.webhook_events import webhook_log, write_orphaned_webhooks
from phoneapp.services.webhook_log import WebhookLog
from tests.support.apps import base_environ, make_app
from tests.support.webhooks import TRACKING, down_app, post_signed, setup_routing, voice_params


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


def up_app(tmp_path, **overrides):
    """The same install once the database is back: its rows as the outage left them."""
    return create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), **overrides},
                      environ=base_environ(tmp_path))


def records():
    db.session.expire_all()
    return db.session.scalars(sa.select(CallRecord).order_by(CallRecord.twilio_call_sid)).all()


def stop_process(app):
    """What a web process's exit does to its log: the segment is left for others, unlocked."""
    with app.app_context():
        webhook_log().close()


def test_calls_during_an_outage_are_answered_logged_and_written_once_when_the_database_returns(
        tmp_path, migrated_postgres):
    assert setup_routing(make_app(tmp_path)).target == "+14155550187"
    down = down_app(tmp_path)
    with down.app_context():
        for n in range(5):
            answer, answered_in = answer_and_finish(down, call_sid(n))
            assert answer.status_code == 200
            assert ET.fromstring(answer.data).find("Dial/Number").text == "+14155550187"
            assert answered_in < 1.0
        assert webhook_log().waiting()[0] == 15, "3 webhooks per call, all kept on disk"
    # Running already when the web process stopped (a worker, another web process): it writes the log.
    up = up_app(tmp_path)
    stop_process(down)

    with up.app_context():
        back = utcnow()
        result = write_orphaned_webhooks()
        assert (result.written, result.remaining, result.quarantined) == (15, 0, 0)
        written = records()
        assert [r.twilio_call_sid for r in written] == [call_sid(n) for n in range(5)]
        for record in written:
            assert (record.status, record.duration, record.dial_status) == ("completed", 42, "completed")
            assert (record.routed_by, record.forwarded_to) == ("assignment", "+14155550187")
            # The call is dated when it happened, not when the database came back.
            assert record.ended_at < back
            assert record.ended_at - record.started_at < timedelta(seconds=5)
        assert webhook_log().waiting()[0] == 0 and not webhook_log().segments()
        assert write_orphaned_webhooks().written == 0 and len(records()) == 5, "a second pass writes nothing"


def test_a_log_written_again_after_a_crash_changes_nothing(tmp_path, migrated_postgres):
    """A process died after its batch committed but before it noted so: the batch is written once more."""
    setup_routing(make_app(tmp_path))
    down = down_app(tmp_path)
    with down.app_context():
        answer_and_finish(down, call_sid(7))
        [segment] = webhook_log().segments()
        saved = segment.read_bytes()
    # Running already when the web process stopped (a worker, another web process): it writes the log.
    up = up_app(tmp_path)
    stop_process(down)
    with up.app_context():
        assert write_orphaned_webhooks().written == 3
        [before] = [(r.status, r.duration, r.started_at, r.ended_at) for r in records()]
        segment.write_bytes(saved)
        assert write_orphaned_webhooks().written == 3
        assert [(r.status, r.duration, r.started_at, r.ended_at) for r in records()] == [before]


def test_a_live_process_keeps_its_log_and_a_bad_event_is_set_aside(tmp_path):
    alive, other = WebhookLog(tmp_path / "log"), WebhookLog(tmp_path / "log")
    for n in range(3):
        kind = "unknown" if n == 1 else "call_status"
        alive.append({"kind": kind, "params": {"CallSid": call_sid(n)}, "received_at": "2026-11-24T10:00:00"})
    written = []

    def write_batch(events):
        if any(event["kind"] == "unknown" for event in events):
            raise ValueError("cannot be written as it is")
        written.extend(event["params"]["CallSid"] for event in events)

    assert other.write_orphans(write_batch).written == 0, "the process that logged them is alive and writes them"
    alive.close()
    result = other.write_orphans(write_batch)
    assert (result.written, result.quarantined) == (2, 1)
    assert written == [call_sid(0), call_sid(2)], "oldest first, the bad one set aside"
    [kept] = alive.failed_path.read_text().splitlines()
    assert json.loads(kept)["params"]["CallSid"] == call_sid(1)
    assert other.quarantined_count() == 1 and not other.segments()
    # What was set aside holds callers' numbers: phoneapp's user alone may read it, as with the segments.
    assert stat.S_IMODE(alive.failed_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(alive.failed_path.parent.stat().st_mode) & 0o077 == 0


def test_a_line_cut_short_by_a_crash_is_not_written(tmp_path):
    log = WebhookLog(tmp_path / "log")
    log.append({"kind": "call_status", "params": {"CallSid": call_sid(1)}, "received_at": "2026-11-24T10:00:00"})
    [segment] = log.segments()
    log.close()
    with open(segment, "ab") as handle:
        handle.write(b'{"kind":"call_status","params":{"CallSid":"CA')
    written = []
    result = WebhookLog(tmp_path / "log").write_orphans(lambda events: written.extend(events))
    assert (result.written, result.quarantined, len(written)) == (1, 0, 1)


def test_after_one_failure_calls_are_routed_without_waiting_on_the_database(tmp_path, migrated_postgres):
    setup_routing(make_app(tmp_path))
    down = down_app(tmp_path)
    with down.app_context():
        post_signed(down, "/twilio/voice", voice_params(call_sid=call_sid(1)))
        attempts = []
        sa.event.listen(db.engine, "do_connect", lambda *args: attempts.append(1))
        for n in range(2, 12):
            post_signed(down, "/twilio/voice", voice_params(call_sid=call_sid(n)))
        assert attempts == [], "calls within the pause go straight to the routing cache"
        assert webhook_log().waiting()[0] == 11


@pytest.mark.parametrize("path, params", [
    ("/twilio/fallback", voice_params()),
    ("/twilio/dial-events", {"CallSid": "CB" + "3" * 32, "ParentCallSid": "CA" + "1" * 32, "CallStatus": "ringing"}),
    ("/twilio/recording?kind=voicemail", {"CallSid": "CA" + "1" * 32, "RecordingUrl": "https://api.twilio.com/r/RE1",
                                          "RecordingSid": "RE" + "1" * 32, "RecordingStatus": "completed",
                                          "RecordingDuration": "9"}),
])
def test_every_writing_webhook_logs_what_it_cannot_write(tmp_path, migrated_postgres, path, params):
    setup_routing(make_app(tmp_path))
    down = down_app(tmp_path)
    with down.app_context():
        response = post_signed(down, path, params)
        assert response.status_code == 200
        assert ET.fromstring(response.data).tag == "Response"
        assert webhook_log().waiting()[0] == 1
    # Running already when the web process stopped (a worker, another web process): it writes the log.
    up = up_app(tmp_path)
    stop_process(down)
    with up.app_context():
        assert write_orphaned_webhooks().written == 1
        [record] = records()
        assert record.twilio_call_sid == "CA" + "1" * 32


def test_a_server_writes_webhooks_behind_its_answers(tmp_path, migrated_postgres):
    """Outside tests the answer goes out first and the process's writer follows within moments."""
    setup_routing(make_app(tmp_path))
    app = up_app(tmp_path, WEBHOOK_WRITES_INLINE=False)
    with app.app_context():
        for n in range(20):
            answer_and_finish(app, call_sid(n))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(r.status == "completed" for r in records()) < 20:
            time.sleep(0.05)
        assert [(r.status, r.duration) for r in records()] == [("completed", 42)] * 20
        assert webhook_log().waiting()[0] == 0


def test_health_says_how_many_webhooks_wait_for_the_database(tmp_path, migrated_postgres):
    setup_routing(make_app(tmp_path))
    down = down_app(tmp_path)
    with down.app_context():
        answer_and_finish(down, call_sid(3))
        response = down.test_client().get("/api/health")
        assert response.status_code == 503
        database = response.get_json()["components"][0]
        assert database["component"] == "database" and not database["ok"]
        assert "3 webhook(s) waiting on this server" in database["detail"]
        assert "written when it returns" in database["detail"]
    stop_process(down)
    up = up_app(tmp_path)
    with up.app_context():
        write_orphaned_webhooks()
        database = current_health()[0]
        assert database.ok and "waiting" not in database.detail


def test_a_batch_of_failed_forwards_raises_one_alert_and_an_answer_resolves_it(tmp_path, migrated_postgres):
    from phoneapp.models import Alert, PhoneAssignment

    setup_routing(make_app(tmp_path))
    down = down_app(tmp_path)
    with down.app_context():
        for n, dial_status in enumerate(["busy", "no-answer", "failed"]):
            post_signed(down, "/twilio/voice", voice_params(call_sid=call_sid(n)))
            post_signed(down, "/twilio/dial-status", {"CallSid": call_sid(n), "DialCallStatus": dial_status})
    # Running already when the web process stopped (a worker, another web process): it writes the log.
    up = up_app(tmp_path)
    stop_process(down)
    with up.app_context():
        assert write_orphaned_webhooks().written == 6, "one batch"
        [alert] = db.session.scalars(sa.select(Alert).where(Alert.kind == "failed_forwards")).all()
        assert alert.resolved_at is None and alert.severity == "error"
        number = db.session.scalars(sa.select(PhoneAssignment)).one()
        assert number.failed_forward_streak == 3 and number.last_call_at is not None
        post_signed(up, "/twilio/voice", voice_params(call_sid=call_sid(9)))
        post_signed(up, "/twilio/dial-status", {"CallSid": call_sid(9), "DialCallStatus": "completed"})
        db.session.expire_all()
        assert db.session.get(Alert, alert.id).resolved_at is not None
        assert db.session.get(PhoneAssignment, number.id).failed_forward_streak == 0


# -- start-up: what stopped processes left is written without waiting for a webhook --------------------

def leave_calls_behind(tmp_path, count=3):
    """Web processes that answered `count` whole calls while the database was down, then stopped."""
    setup_routing(make_app(tmp_path))
    down = down_app(tmp_path)
    with down.app_context():
        for n in range(count):
            answer_and_finish(down, call_sid(n))
        assert webhook_log().waiting()[0] == 3 * count
    stop_process(down)


def test_logs_left_by_stopped_processes_are_written_when_the_app_starts(tmp_path, migrated_postgres):
    leave_calls_behind(tmp_path)

    up = up_app(tmp_path)

    # No webhook has come, no writer or worker has run: the app's start-up wrote them.
    assert "phoneapp.webhook_writer" not in up.extensions
    with up.app_context():
        assert [(r.twilio_call_sid, r.status, r.duration) for r in records()] == [
            (call_sid(n), "completed", 42) for n in range(3)]
        assert webhook_log().waiting()[0] == 0 and not webhook_log().segments()
        assert webhook_log().quarantined_count() == 0


def test_an_app_started_without_its_database_leaves_the_logs_for_later(tmp_path, migrated_postgres):
    leave_calls_behind(tmp_path)

    started = time.monotonic()
    down = down_app(tmp_path)

    assert time.monotonic() - started < 10
    with down.app_context():
        assert webhook_log().waiting()[0] == 9 and webhook_log().quarantined_count() == 0
    with up_app(tmp_path).app_context():
        assert len(records()) == 3 and not webhook_log().segments()


def test_an_app_started_before_its_database_is_migrated_leaves_the_logs_alone(tmp_path, migrated_postgres):
    """`flask db upgrade` builds the app first: on a new database (or an older schema) nothing may be written,
    and above all nothing set aside as unwritable because a table is not there yet."""
    leave_calls_behind(tmp_path, count=1)
    if migrated_postgres:
        # A schema of its own, empty, for the database not migrated yet.
        engine = sa.create_engine(migrated_postgres.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA IF EXISTS not_migrated CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA not_migrated"))
        engine.dispose()
        empty = migrated_postgres + "?options=-csearch_path%3Dnot_migrated"
    else:
        empty = f"sqlite:///{tmp_path / 'not-migrated.db'}"

    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance")},
                     environ=base_environ(tmp_path, DATABASE_URL=empty))

    with app.app_context():
        assert webhook_log().waiting()[0] == 3 and webhook_log().quarantined_count() == 0
        db.engine.dispose()
    with up_app(tmp_path).app_context():
        assert len(records()) == 1 and not webhook_log().segments()


def test_concurrent_appends_while_writing_and_rotating_are_written_exactly_once(tmp_path, monkeypatch):
    import threading

    from phoneapp.services import webhook_log as log_module

    # Small segments, so the writer rotates many times under the appending threads.
    monkeypatch.setattr(log_module, "ROTATE_BYTES", 2048)
    log = WebhookLog(tmp_path / "log")
    written, done = [], threading.Event()

    def append_many(thread):
        for n in range(300):
            log.append({"kind": "call_status", "params": {"CallSid": f"CA{thread:02d}{n:030d}"},
                        "received_at": "2026-11-24T10:00:00"})

    def write_continuously():
        while not done.is_set():
            log.write_own(lambda events: written.extend(e["params"]["CallSid"] for e in events))

    writer = threading.Thread(target=write_continuously)
    writer.start()
    appenders = [threading.Thread(target=append_many, args=(t,)) for t in range(8)]
    for thread in appenders:
        thread.start()
    for thread in appenders:
        thread.join()
    done.set()
    writer.join()
    log.write_own(lambda events: written.extend(e["params"]["CallSid"] for e in events))
    assert len(written) == 2400 and len(set(written)) == 2400
    assert len(log.segments()) <= 1, "fully written segments are rotated away"
