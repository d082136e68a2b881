"""Health: each component checked and shown with a word and a reason; /api/health answers 503 when one is down."""
import os
import threading
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from phoneapp import create_app
from phoneapp.extensions import db
from phoneapp.jobs import tasks
from phoneapp.jobs.runs import new_run, run_job
from phoneapp.models import HEALTH_COMPONENTS, Alert, HealthCheck, JobRun, WorkerHeartbeat, utcnow
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.sandbox.rest import make_rest_app
from phoneapp.services import users
from phoneapp.services.alerts import raise_alert, resolve_alerts
from phoneapp.services.assignments import sync_numbers
from phoneapp.services.health import current_health, run_health_checks
from phoneapp.twilio.gateway import TwilioError
from tests.support.api import ApiClient
from tests.support.apps import make_app
from tests.support.pages import HX, STAFF, login, soup, text_of
from tests.support.ports import free_port


def worker_seen(seconds_ago=0, name="host:1234"):
    db.session.add(WorkerHeartbeat(name=name, mode="db", last_seen_at=utcnow() - timedelta(seconds=seconds_ago)))
    db.session.commit()


def by_component(body):
    return {item["component"]: item for item in body["components"]}


def component_alert(component):
    """The open component_down alert of `component`, or None."""
    return db.session.scalars(sa.select(Alert).where(
        Alert.kind == "component_down", Alert.subject == f"component:{component}", Alert.resolved_at.is_(None))
    ).first()


def health_rows(page):
    """{component: (state word, detail, checked text)} as the page's table shows them."""
    rows = {}
    for row in soup(page).select("#health-live tr[data-component]"):
        cells = row.find_all("td")
        rows[row["data-component"]] = (text_of(row.select_one(".status-label")), text_of(cells[2]),
                                       text_of(cells[3]))
    return rows


# -- the API ------------------------------------------------------------------------------------

def test_all_ok_answers_200_with_every_component(api):
    worker_seen(seconds_ago=3)
    run_health_checks()

    response = api.get("/api/health")

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["ok"] is True
    assert [item["component"] for item in body["components"]] == list(HEALTH_COMPONENTS)
    components = by_component(body)
    assert all(item["ok"] for item in components.values())
    assert components["redis"]["detail"] == "not used: jobs run from the database queue"
    assert components["worker"]["detail"] == "1 worker, last seen 3 s ago"
    assert components["database"]["latency_ms"] is not None
    assert components["twilio_api"]["latency_ms"] is not None
    assert "account active" in components["twilio_api"]["detail"]
    assert components["webhooks"]["checked_at"].endswith("Z")
    assert response.headers["Cache-Control"] == "no-store"


def test_no_worker_heartbeat_answers_503_with_the_worker_down(api):
    run_health_checks()

    response = api.get("/api/health")

    assert response.status_code == 503
    body = response.get_json()
    assert body["ok"] is False
    worker = by_component(body)["worker"]
    assert worker["ok"] is False
    assert "no worker has ever reported" in worker["detail"] and "python worker.py" in worker["detail"]
    assert [c for c, item in by_component(body).items() if not item["ok"]] == ["worker"]
    assert component_alert("worker").severity == "error"


def test_a_silent_worker_is_down_and_its_return_resolves_the_alert(app):
    worker_seen(seconds_ago=300, name="old:1")
    run_health_checks()
    worker = {c.component: c for c in current_health()}["worker"]
    assert not worker.ok
    assert worker.detail == "no worker has reported for 5 min — is the worker (python worker.py) running?"
    assert component_alert("worker") is not None

    worker_seen(seconds_ago=1, name="new:2")
    worker_seen(seconds_ago=20, name="new:3")
    run_health_checks()
    worker = {c.component: c for c in current_health()}["worker"]
    assert worker.ok and worker.detail == "2 workers, last seen 1 s ago"
    assert component_alert("worker") is None
    assert db.session.scalar(sa.select(Alert.resolved_at).where(Alert.subject == "component:worker"))


def test_the_worker_readings_of_twilio_and_webhooks_count_as_down_when_missing_or_stale(app):
    worker_seen()
    components = {c.component: c for c in current_health()}
    assert not components["twilio_api"].ok and not components["webhooks"].ok
    assert components["twilio_api"].detail.startswith("not checked yet: the worker checks this every 60 s")
    assert components["twilio_api"].checked_at is None

    run_health_checks()
    long_ago = utcnow() - timedelta(minutes=10)
    db.session.execute(sa.update(HealthCheck).where(HealthCheck.component == "webhooks").values(checked_at=long_ago))
    db.session.commit()
    components = {c.component: c for c in current_health()}
    assert components["twilio_api"].ok
    webhooks = components["webhooks"]
    assert not webhooks.ok
    assert webhooks.detail.startswith("last checked 10 min ago (then ok: no number has a webhook problem)")
    assert "python worker.py" in webhooks.detail


def test_webhooks_component_counts_the_numbers_with_open_problems(app, make_number):
    first, second, third = make_number(), make_number(), make_number()
    worker_seen()
    raise_alert("webhook_drift", f"number:{first.id}", "differs", phone_assignment_id=first.id)
    raise_alert("webhook_drift", f"number:{second.id}", "differs", phone_assignment_id=second.id)
    # Two error codes on one number are still one number with webhook errors.
    raise_alert("twilio_webhook_error", f"number:{third.id}:11200", "11200", phone_assignment_id=third.id)
    raise_alert("twilio_webhook_error", f"number:{third.id}:11205", "11205", phone_assignment_id=third.id)
    raise_alert("failed_forwards", f"number:{first.id}", "not a webhook problem", phone_assignment_id=first.id)
    db.session.commit()

    run_health_checks()
    webhooks = {c.component: c for c in current_health()}["webhooks"]
    assert not webhooks.ok
    assert webhooks.detail == ("2 numbers differ from phoneapp's configuration; "
                               "1 number had Twilio webhook errors")
    # Each number's own alert notifies; the component adds no second alert about the same numbers.
    assert component_alert("webhooks") is None

    for number in (first, second):
        resolve_alerts("webhook_drift", f"number:{number.id}")
    for code in ("11200", "11205"):
        resolve_alerts("twilio_webhook_error", f"number:{third.id}:{code}")
    raise_alert("number_missing", f"number:{first.id}", "gone", phone_assignment_id=first.id)
    db.session.commit()
    run_health_checks()
    assert {c.component: c for c in current_health()}["webhooks"].detail == \
        "1 number is gone from the Twilio account"

    resolve_alerts("number_missing", f"number:{first.id}")
    db.session.commit()
    run_health_checks()
    webhooks = {c.component: c for c in current_health()}["webhooks"]
    assert webhooks.ok and webhooks.detail == "no number has a webhook problem"
    assert component_alert("webhooks") is None


def test_health_api_needs_a_login(app):
    assert ApiClient(app.test_client()).get("/api/health").status_code == 401


# -- the page -----------------------------------------------------------------------------------

def test_health_page_shows_each_component_with_a_word_and_a_reason(staff_client):
    worker_seen(seconds_ago=2)
    run_health_checks()
    db.session.execute(sa.delete(WorkerHeartbeat))
    db.session.commit()

    page = staff_client.get("/health")

    assert page.status_code == 200
    html = soup(page)
    assert text_of(html.select_one("nav.mainnav a.active")) == "Health"
    rows = health_rows(page)
    assert list(rows) == list(HEALTH_COMPONENTS)
    assert rows["worker"][0] == "down"
    assert "python worker.py" in rows["worker"][1]
    for component in ("database", "redis", "twilio_api", "webhooks"):
        assert rows[component][0] == "ok", rows[component]
        assert rows[component][1]
    assert rows["twilio_api"][2] == "checked just now"
    assert html.select_one("#component-worker .status-red .dot") is not None
    assert html.select_one("#component-database .status-green .dot") is not None
    assert text_of(html.select_one(".health-summary")) == "1 of 6 components down: Worker."
    live = html.select_one("#health-live")
    assert live["hx-get"] == "/partials/health" and live["hx-trigger"] == "every 10s"

    for headers in (HX, {}):
        fragment = staff_client.get("/partials/health", headers=headers)
        assert fragment.status_code == 200
        assert "<html" not in fragment.get_data(as_text=True)
        shown = health_rows(fragment)
        assert {c: row[0] for c, row in shown.items()} == {c: row[0] for c, row in rows.items()}
        # The database and Redis are checked anew on each request; the rest reads the same rows.
        assert [shown[c][1] for c in ("worker", "twilio_api", "webhooks")] == \
            [rows[c][1] for c in ("worker", "twilio_api", "webhooks")]


def test_health_page_needs_a_login(client):
    assert client.get("/health").status_code == 302
    assert client.get("/partials/health", headers=HX).status_code == 401


def test_job_runs_show_on_the_page(staff_client):
    now = utcnow()
    db.session.add_all([
        JobRun(name="sync_numbers", status="succeeded", attempts=1, summary="4 numbers, 1 new",
               enqueued_at=now - timedelta(seconds=30), started_at=now - timedelta(seconds=20),
               finished_at=now - timedelta(seconds=17)),
        JobRun(name="verify_numbers", status="failed", attempts=3, max_attempts=3,
               error="TwilioError: could not reach Twilio\nsecond line", enqueued_at=now - timedelta(minutes=5),
               started_at=now - timedelta(minutes=4), finished_at=now - timedelta(minutes=4)),
        JobRun(name="verify_some_numbers", status="failed", attempts=1, error="LookupError: number 12 is gone",
               enqueued_at=now - timedelta(minutes=2), finished_at=now - timedelta(minutes=2)),
        JobRun(name="run_test_call", status="queued", enqueued_at=now),
        JobRun(name="verify_some_numbers", status="queued", enqueued_at=now),
        JobRun(name="check_health", status="running", attempts=1, enqueued_at=now, started_at=now),
        JobRun(name="verify_some_numbers", status="retrying", attempts=1, error="TimeoutError", enqueued_at=now),
    ])
    db.session.commit()

    html = soup(staff_client.get("/health"))

    sync = html.select_one("#job-sync_numbers")
    assert "succeeded" in text_of(sync) and "4 numbers, 1 new" in text_of(sync) and "3.0 s" in text_of(sync)
    verify = text_of(html.select_one("#job-verify_numbers"))
    assert "failed" in verify and "attempt 3 of 3" in verify and "could not reach Twilio" in verify
    assert "second line" not in verify
    assert "running" in text_of(html.select_one("#job-check_health"))
    assert "never run" in text_of(html.select_one("#job-import_monitor_alerts"))
    failures = [text_of(row) for row in html.select("table.failed-runs tbody tr")]
    assert len(failures) == 2
    assert failures[0].startswith("verify_some_numbers 1 of 1 LookupError: number 12 is gone")
    assert failures[1].startswith("verify_numbers 3 of 3 TwilioError: could not reach Twilio")
    assert text_of(html.select_one(".job-counts")) == "2 queued · 1 waiting to retry · 1 running"


def test_no_failed_jobs_says_so(staff_client):
    html = soup(staff_client.get("/partials/health", headers=HX))
    assert html.select_one("table.failed-runs") is None
    assert "No failed jobs" in text_of(html.select_one("#background-jobs").find_parent("section"))


# -- outages ------------------------------------------------------------------------------------

@pytest.fixture
def make_health_app(tmp_path, migrated_postgres):
    """An app of its own (settings given), its context pushed, and a logged-in staff client."""
    apps = []

    def build(**environ):
        app = make_app(tmp_path, **environ)
        context = app.app_context()
        context.push()
        apps.append(context)
        users.create_user(*STAFF, role="staff", name="Sam Staff")
        client = app.test_client()
        assert login(client, *STAFF).status_code == 303
        return app, client

    yield build
    for context in apps:
        db.session.remove()
        db.engine.dispose()
        context.pop()


@contextmanager
def serving_twilio(account, port):
    """The sandbox account served as Twilio's REST API on a fixed port, so it can go away and come back."""
    server = make_server("127.0.0.1", port, make_rest_app(account), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_twilio_api_down_raises_an_error_alert_resolved_on_recovery(tmp_path, make_health_app):
    account = SandboxAccount.open(tmp_path / "twilio-account.json")
    port = free_port()
    app, client = make_health_app(TWILIO_ACCOUNT_SID=account.account_sid, TWILIO_AUTH_TOKEN=account.auth_token,
                                  TWILIO_API_BASE_URL=f"http://127.0.0.1:{port}")
    api = ApiClient(client)
    worker_seen()
    with serving_twilio(account, port):
        run_health_checks()
    assert api.get("/api/health").status_code == 200

    run_health_checks()
    run_health_checks()

    response = api.get("/api/health")
    assert response.status_code == 503
    twilio_api = by_component(response.get_json())["twilio_api"]
    assert twilio_api["ok"] is False
    assert twilio_api["detail"].startswith("fetching the account failed after")
    assert "could not reach Twilio" in twilio_api["detail"]
    assert account.auth_token not in twilio_api["detail"]
    alerts = db.session.scalars(sa.select(Alert).where(Alert.subject == "component:twilio_api")).all()
    assert len(alerts) == 1
    assert (alerts[0].severity, alerts[0].occurrences, alerts[0].resolved_at) == ("error", 2, None)
    assert alerts[0].message.startswith("Twilio API is down: fetching the account failed")
    assert health_rows(client.get("/health"))["twilio_api"][0] == "down"

    with serving_twilio(account, port):
        run_health_checks()
    assert api.get("/api/health").status_code == 200
    assert component_alert("twilio_api") is None
    db.session.refresh(alerts[0])
    assert alerts[0].resolved_at is not None


def test_database_down_is_said_plainly_not_a_500(tmp_path):
    # Nothing listens on this port: every database request fails as it would with the server down.
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance")}, environ={
        "SECRET_KEY": "x", "PUBLIC_BASE_URL": "https://calls.example.test",
        "DATABASE_URL": f"postgresql://phoneapp@127.0.0.1:{free_port()}/phoneapp"})
    client = app.test_client()

    response = ApiClient(client, "pa_any-token").get("/api/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["ok"] is False
    database = by_component(body)["database"]
    assert database["ok"] is False and "the database did not answer" in database["detail"]
    assert all(not item["ok"] and item["detail"].startswith("not shown") for item in body["components"][1:])

    page = client.get("/health")
    assert page.status_code == 503
    assert health_rows(page)["database"][0] == "down"
    assert "Job runs are kept in the database" in page.get_data(as_text=True)
    assert soup(page).select_one("nav.mainnav") is None
    fragment = client.get("/partials/health", headers=HX)
    assert fragment.status_code == 503 and health_rows(fragment)["database"][0] == "down"

    with app.app_context():
        components = {c.component: c for c in current_health()}
        assert not components["database"].ok
        assert components["worker"].detail == "unknown: the database cannot be read, so this cannot be checked"
        with pytest.raises(RuntimeError, match="health checks not recorded"):
            run_health_checks()


# -- Redis going away and coming back ----------------------------------------------------------

def test_a_redis_outage_is_reported_and_its_recovery_resolves_the_alert(private_redis, make_health_app):
    app, client = make_health_app(REDIS_URL=private_redis.url)
    api = ApiClient(client)
    worker_seen()
    run_health_checks()
    response = api.get("/api/health")
    assert response.status_code == 200, response.get_json()
    assert by_component(response.get_json())["redis"]["detail"].startswith(
        f"Redis at 127.0.0.1:{private_redis.port}/0 answered PING in")

    private_redis.stop()

    response = api.get("/api/health")
    assert response.status_code == 503
    redis_health = by_component(response.get_json())["redis"]
    assert redis_health["ok"] is False
    assert redis_health["detail"].startswith(f"Redis at 127.0.0.1:{private_redis.port}/0 is down:")
    assert [c for c, item in by_component(response.get_json()).items() if not item["ok"]] == ["redis"]
    page = client.get("/health")
    rows = health_rows(page)
    assert rows["redis"][0] == "down" and "is down" in rows["redis"][1]
    assert text_of(soup(page).select_one(".health-summary")) == "1 of 6 components down: Redis."

    run_health_checks()
    run_health_checks()
    alerts = db.session.scalars(sa.select(Alert).where(Alert.subject == "component:redis")).all()
    assert len(alerts) == 1
    assert (alerts[0].kind, alerts[0].severity, alerts[0].occurrences) == ("component_down", "error", 2)
    assert alerts[0].message.startswith("Redis is down:")

    private_redis.start()

    assert api.get("/api/health").status_code == 200
    run_health_checks()
    db.session.refresh(alerts[0])
    assert alerts[0].resolved_at is not None
    assert component_alert("redis") is None


# -- what the verification job's run says -------------------------------------------------------

def run_verify_job():
    """One run of the periodic verify job, as a worker runs it."""
    run = new_run("verify_numbers")
    db.session.add(run)
    db.session.commit()
    return run_job(run.id, "test-worker")


def verify_row(client):
    """(the run's badge word, the badge's classes, the result or error shown) of the verify job on the page."""
    row = soup(client.get("/health")).select_one("#job-verify_numbers")
    badge = row.select_one(".badge")
    return text_of(badge), badge["class"], text_of(row.select_one(".job-result"))


def test_a_first_verification_that_sets_the_webhooks_reads_as_good_news(staff_client):
    # A fresh install: the account's numbers do not point at phoneapp yet, so the first run sets all of them.
    sync_numbers()
    assert run_verify_job() == "succeeded"

    word, classes, result = verify_row(staff_client)
    assert (word, "badge-ok") == ("succeeded", classes[-1])
    assert result == "4 numbers checked: webhooks set to phoneapp on all 4"
    for alarming in ("0 ok", "could not", "differ", "gone", "fixed"):
        assert alarming not in result

    assert run_verify_job() == "succeeded"
    assert verify_row(staff_client)[2] == "4 numbers checked: all 4 already right"


def test_a_verification_that_finds_problems_or_fails_still_reads_as_one(app, staff_client, monkeypatch):
    sync_numbers()
    account = SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])
    gone = account.numbers()[0]["sid"]
    account.remove_number(gone)
    app.config["AUTO_FIX_WEBHOOKS"] = False
    assert run_verify_job() == "succeeded"
    assert verify_row(staff_client)[2] == ("4 numbers checked: 3 differ from phoneapp's configuration and were "
                                           "left as they are (auto-fix is off); 1 is gone from the Twilio account")

    app.config["AUTO_FIX_WEBHOOKS"] = True
    assert run_verify_job() == "succeeded"
    assert verify_row(staff_client)[2] == ("4 numbers checked: 1 is gone from the Twilio account; "
                                           "webhooks set to phoneapp on 3")

    def twilio_unreachable(*args, **kwargs):
        raise TwilioError("could not reach Twilio")

    monkeypatch.setattr(tasks.verification, "verify_numbers", twilio_unreachable)
    app.config["JOB_RETRY_DELAYS"] = []
    with pytest.raises(TwilioError):
        run_verify_job()
    word, classes, error = verify_row(staff_client)
    assert (word, classes[-1]) == ("failed", "severity-error")
    assert "could not reach Twilio" in error


# -- the disk -----------------------------------------------------------------------------------

@contextmanager
def unwritable(folder):
    """`folder` refuses new files for whoever runs the tests.

    Permission bits stop any user but root, who writes through them (as on the machines the suite runs on in
    CI), so for root the folder is moved away and a plain file takes its name, which nobody can create files in.
    """
    folder = Path(folder)
    if os.geteuid() != 0:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(mode)
        return
    kept = folder.with_name(folder.name + ".kept")
    folder.rename(kept)
    folder.write_text("not a folder")
    try:
        yield
    finally:
        folder.unlink()
        kept.rename(folder)


def test_the_disk_is_on_the_page_and_in_the_api(staff_client, app):
    worker_seen()
    run_health_checks()

    body = ApiClient(staff_client).get("/api/health").get_json()
    disk = by_component(body)["disk"]
    assert disk["ok"] is True
    assert disk["detail"].startswith(f"the instance folder {app.instance_path} can be written; ")
    assert disk["detail"].endswith(" free")
    row = health_rows(staff_client.get("/health"))["disk"]
    assert row[0] == "ok" and "can be written" in row[1]
    assert db.session.scalar(sa.select(HealthCheck.ok).where(HealthCheck.component == "disk"))


def test_an_instance_folder_that_cannot_be_written_is_down(tmp_path, make_health_app):
    # The sandbox account kept beside it: for root the folder's files are out of reach while it is replaced.
    app, staff_client = make_health_app(overrides={"SANDBOX_STATE_PATH": str(tmp_path / "sandbox-account.json")})
    worker_seen()
    run_health_checks()
    with unwritable(app.instance_path):
        probe = Path(app.instance_path) / "probe"
        with pytest.raises(OSError):
            probe.write_text("the folder really refuses files")
        response = ApiClient(staff_client).get("/api/health")
        page = staff_client.get("/health")
        run_health_checks()

    assert response.status_code == 503
    disk = by_component(response.get_json())["disk"]
    assert disk["ok"] is False
    assert disk["detail"].startswith(f"the instance folder {app.instance_path} cannot be written")
    assert "webhooks cannot be logged" in disk["detail"]
    assert [c for c, item in by_component(response.get_json()).items() if not item["ok"]] == ["disk"]
    assert health_rows(page)["disk"][0] == "down"
    assert component_alert("disk").message.startswith("Disk is down: the instance folder")

    run_health_checks()
    assert component_alert("disk") is None


def test_an_instance_folder_short_of_space_is_down(staff_client, app):
    worker_seen()
    run_health_checks()
    # No disk has this much room, so whatever this one has free is below it.
    app.config["DISK_MIN_FREE_MB"] = 2**40

    response = ApiClient(staff_client).get("/api/health")

    assert response.status_code == 503
    disk = by_component(response.get_json())["disk"]
    assert disk["ok"] is False
    assert " free in the instance folder " in disk["detail"]
    assert "below the 1099511627776 MB phoneapp needs" in disk["detail"]

    app.config["DISK_MIN_FREE_MB"] = 1
    assert ApiClient(staff_client).get("/api/health").status_code == 200
