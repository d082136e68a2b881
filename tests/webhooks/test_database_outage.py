"""A real database outage: a private PostgreSQL stopped under a live app, and a web process killed meanwhile.

Never the shared server: each test starts its own on its own port and stops it (SPEC §3 case 3, §8).
"""
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest
import sqlalchemy as sa

from phoneapp import create_app
from phoneapp.extensions import db
from phoneapp.models import CallRecord
from phoneapp.services.webhook_events import webhook_log, write_logged_webhooks
from tests.support.apps import PUBLIC_BASE_URL, base_environ
from tests.support.not_run import note_not_run
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.private_postgres import PostgresServer, postgres_bin_dir
from tests.support.webhooks import post_signed, setup_routing, sign, voice_params

CLIENT_PHONE = "+14155550187"


@pytest.fixture
def private_postgres():
    if postgres_bin_dir() is None:
        note_not_run("database outage tests", "PostgreSQL's server programs (initdb, pg_ctl) are not installed",
                     service=True)
        pytest.skip("PostgreSQL's server programs are not installed")
    server = PostgresServer()
    server.start()
    yield server
    server.destroy()


def app_on(server, tmp_path, **overrides):
    return create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), **overrides},
                      environ=base_environ(tmp_path, DATABASE_URL=server.url))


def migrated_app(server, tmp_path):
    from flask_migrate import upgrade

    app = app_on(server, tmp_path)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    assert setup_routing(app).target == CLIENT_PHONE
    return app


def call_sid(n):
    return f"CA{n:032d}"


def whole_call(app, sid):
    """Voice webhook, dial result and completed callback of one call; returns the voice answer and its time."""
    started = time.monotonic()
    answer = post_signed(app, "/twilio/voice", voice_params(call_sid=sid))
    took = time.monotonic() - started
    post_signed(app, "/twilio/dial-status", {"CallSid": sid, "DialCallStatus": "completed", "DialCallDuration": "30"})
    post_signed(app, "/twilio/status", {"CallSid": sid, "CallStatus": "completed", "CallDuration": "33"})
    return answer, took


def stored_calls(url):
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            return connection.execute(sa.select(CallRecord.twilio_call_sid, CallRecord.status, CallRecord.duration)
                                      .order_by(CallRecord.twilio_call_sid)).all()
    finally:
        engine.dispose()


def test_database_stopped_mid_traffic_loses_no_call_and_writes_each_once(private_postgres, tmp_path):
    app = migrated_app(private_postgres, tmp_path)
    with app.app_context():
        for n in range(3):
            whole_call(app, call_sid(n))
        assert webhook_log().waiting()[0] == 0, "written at once while the database is up"

        private_postgres.stop()
        answer_times = []
        for n in range(3, 23):
            answer, took = whole_call(app, call_sid(n))
            assert answer.status_code == 200
            assert ET.fromstring(answer.data).find("Dial/Number").text == CLIENT_PHONE
            answer_times.append(took)
        assert max(answer_times) < 1.0, f"slowest answer during the outage took {max(answer_times):.2f} s"
        assert webhook_log().waiting()[0] == 60, "every webhook of the outage kept on disk"
        time.sleep(app.config["DATABASE_RETRY_PAUSE"])
        assert write_logged_webhooks().remaining == 60, "nothing is written while the database is down"

        private_postgres.start()
        time.sleep(app.config["DATABASE_RETRY_PAUSE"])
        result = write_logged_webhooks()
        assert (result.written, result.remaining, result.quarantined) == (60, 0, 0)
        # Back to normal: the next call is written at once.
        whole_call(app, call_sid(23))
        assert webhook_log().waiting()[0] == 0
        db.session.remove()
        db.engine.dispose()

    calls = stored_calls(private_postgres.url)
    assert [sid for sid, _, _ in calls] == [call_sid(n) for n in range(24)], "every call once, none twice"
    assert {(status, duration) for _, status, duration in calls} == {("completed", 33)}


def gunicorn(environ, port, log_path):
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "2", "--threads", "4", "--no-control-socket",
         "-b", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT, env=environ, stdout=open(log_path, "a"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_http(port, process, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the web server exited at start"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/static/app.css", timeout=1).read()
            return
        except OSError:  # refused, or accepted by a server whose workers are still booting
            time.sleep(0.1)
    raise AssertionError("the web server did not answer")


def post_to_server(app, port, path, params):
    """A Twilio request as it reaches a server behind the proxy: signed for PUBLIC_BASE_URL + path."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": sign(app, PUBLIC_BASE_URL + path, params)})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read()


def test_web_process_killed_during_an_outage_writes_its_logged_webhooks_after_restart(private_postgres, tmp_path):
    app = migrated_app(private_postgres, tmp_path)
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("TWILIO_", "REDIS_"))}
    environ.update({key: value for key, value in base_environ(tmp_path, DATABASE_URL=private_postgres.url).items()})
    environ.update({"INSTANCE_PATH": app.instance_path, "PYTHONPATH": str(ROOT)})
    port, log_path = free_port(), tmp_path / "web.log"

    private_postgres.stop()
    server = gunicorn(environ, port, log_path)
    try:
        wait_for_http(port, server)
        for n in range(10):
            status, body = post_to_server(app, port, "/twilio/voice", voice_params(call_sid=call_sid(n)))
            assert status == 200 and ET.fromstring(body).find("Dial/Number").text == CLIENT_PHONE
            status, _ = post_to_server(app, port, "/twilio/status",
                                       {"CallSid": call_sid(n), "CallStatus": "completed", "CallDuration": "12"})
            assert status == 200
    finally:
        # Killed, not stopped: no chance to flush anything it kept in memory.
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    with app.app_context():
        assert webhook_log().waiting()[0] == 20, "the killed server left every webhook it answered on disk"

    private_postgres.start()
    restarted = gunicorn(environ, port, log_path)
    try:
        wait_for_http(port, restarted)
        # No call comes in: the restarted server writes what its predecessor held on its own.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(stored_calls(private_postgres.url)) < 10:
            time.sleep(0.2)
        time.sleep(1)
        calls = stored_calls(private_postgres.url)
    finally:
        os.killpg(restarted.pid, signal.SIGTERM)
        restarted.wait(timeout=20)
    assert [sid for sid, _, _ in calls] == [call_sid(n) for n in range(10)], log_path.read_text()[-3000:]
    assert {(status, duration) for _, status, duration in calls} == {("completed", 12)}
    with app.app_context():
        assert webhook_log().waiting()[0] == 0
