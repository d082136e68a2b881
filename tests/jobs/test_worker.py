"""The worker for real (SPEC §6): `python worker.py` with Redis and without, retries, time limits, the schedule."""
import secrets
import time

import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Worker

from phoneapp.extensions import db
from phoneapp.jobs import enqueue
from phoneapp.jobs.registry import JOBS, Job, register
from phoneapp.jobs.scheduler import period_of
from phoneapp.models import JobRun, PhoneAssignment, TestCall, WorkerHeartbeat, utcnow
from phoneapp.services import assignments, users
from phoneapp.services.health import WORKER_STOPPED, check_worker
from tests.support.api import ApiClient
from tests.support.apps import TEST_REDIS_URL, make_app
from tests.support.jobs import (
    job_runs,
    run_queued_jobs,
    run_worker,
    start_worker,
    stop_worker,
    wait_until,
    worker_environ,
)
from tests.support.not_run import note_not_run

PERIODIC_NAMES = ("sync_numbers", "verify_numbers", "check_health", "import_monitor_alerts")


@pytest.fixture
def test_jobs():
    added = [register(Job("test_always_fails", "tests.support.jobs:always_fails", timeout=10)),
             register(Job("test_sleeps", "tests.support.jobs:sleeps_past_its_limit", timeout=1))]
    yield
    for job in added:
        JOBS.pop(job.name, None)


def redis_or_skip():
    if not TEST_REDIS_URL:
        note_not_run("worker tests against Redis", "TEST_REDIS_URL is unset", service=True)
        pytest.skip("TEST_REDIS_URL is unset")
    return TEST_REDIS_URL


@pytest.fixture(params=["database queue", "redis"])
def queue_mode(request, tmp_path, migrated_postgres):
    """An app queueing to the database, or to a private RQ queue on the test Redis."""
    environ = {"JOB_RETRY_DELAYS": "0,0"}
    if request.param == "redis":
        environ.update(REDIS_URL=redis_or_skip(), RQ_QUEUE=f"phoneapp-test-{secrets.token_hex(4)}")
    app = make_app(tmp_path, **environ)
    with app.app_context():
        yield request.param, app, environ
        if request.param == "redis":
            Redis.from_url(environ["REDIS_URL"]).flushdb()
        db.session.remove()
        db.engine.dispose()


def api_for(app):
    staff = users.create_user("staff@example.test", "staple paper clip", role="staff")
    return ApiClient(app.test_client(), users.issue_token(staff))


def test_a_job_queued_through_the_api_is_run_by_a_python_worker_process(queue_mode, tmp_path):
    mode, app, environ = queue_mode
    assignments.sync_numbers()
    # A fresh sandbox number points nowhere: the queued check finds that and, with auto-fix on, fixes it.
    number = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).first()

    response = api_for(app).post(f"/api/phone-assignments/{number.id}/verify")
    assert response.status_code == 202, response.json
    job = response.json["job"]
    assert job["status"] == "queued" and job["name"] == "verify_some_numbers"
    assert db.session.get(PhoneAssignment, number.id).verify_queued_at is not None
    assert db.session.get(JobRun, job["id"]).queue == ("rq" if mode == "redis" else "db")

    finished = run_worker(worker_environ(app, tmp_path, **environ), "--burst")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    db.session.expire_all()
    run = db.session.get(JobRun, job["id"])
    assert (run.status, run.attempts) == ("succeeded", 1), run.error
    assert run.summary == "1 number checked: webhooks set to phoneapp"
    checked = db.session.get(PhoneAssignment, number.id)
    assert checked.verify_queued_at is None and checked.last_verified_at is not None
    assert checked.config_state == "ok" and checked.webhook_url == "https://calls.example.test/twilio/voice"
    assert api_for_reader(app, job["id"])["status"] == "succeeded"


def api_for_reader(app, job_id):
    reader = users.create_user("reader@example.test", "staple paper clip", role="staff")
    return ApiClient(app.test_client(), users.issue_token(reader)).get(f"/api/jobs/{job_id}").json


def run_rq_burst(app):
    """An RQ worker in this process (it forks a work horse per job, as `python worker.py` does)."""
    from phoneapp.jobs.queues import redis_connection

    Worker([app.config["RQ_QUEUE"]], connection=redis_connection()).work(burst=True, with_scheduler=False)
    db.session.expire_all()


def run_queue(mode, app):
    if mode == "redis":
        run_rq_burst(app)
    else:
        run_queued_jobs(app)


def test_a_failing_job_is_retried_a_bounded_number_of_times_then_shows_failed(queue_mode, test_jobs):
    mode, app, _ = queue_mode
    run = enqueue("test_always_fails")
    assert run.max_attempts == 3
    run_queue(mode, app)
    run = db.session.get(JobRun, run.id)
    assert (run.status, run.attempts) == ("failed", 3)
    assert "the upstream service said no" in run.error and run.finished_at is not None


def test_a_job_past_its_time_limit_is_stopped_and_recorded_timed_out(queue_mode, test_jobs):
    mode, app, _ = queue_mode
    started = time.monotonic()
    run = enqueue("test_sleeps")
    run_queue(mode, app)
    run = db.session.get(JobRun, run.id)
    assert (run.status, run.attempts) == ("failed", 3)
    assert "Timed out" in run.error
    assert time.monotonic() - started < 25  # three attempts of one second, not three of thirty


def test_a_late_second_delivery_of_a_finished_run_does_nothing(app):
    from phoneapp.jobs.runs import run_job

    run = enqueue("prune_history")
    run_queued_jobs(app)
    assert db.session.get(JobRun, run.id).status == "succeeded"
    assert run_job(run.id, "another-worker") == "succeeded"
    assert db.session.get(JobRun, run.id).attempts == 1


@pytest.mark.parametrize("mode", ["database queue", "redis"])
def test_two_workers_run_each_periodic_job_once_per_period(mode, tmp_path, migrated_postgres):
    environ = {name: "2" for name in ("SYNC_INTERVAL", "VERIFY_INTERVAL", "HEALTH_CHECK_INTERVAL",
                                      "MONITOR_ALERTS_INTERVAL")}
    if mode == "redis":
        environ.update(REDIS_URL=redis_or_skip(), RQ_QUEUE=f"phoneapp-test-{secrets.token_hex(4)}")
    app = make_app(tmp_path, **environ)
    with app.app_context():
        worker_env = worker_environ(app, tmp_path, **environ)
        workers = [start_worker(worker_env, log_path=tmp_path / f"worker-{i}.log") for i in range(2)]
        try:
            wait_until(lambda: db.session.scalar(sa.select(sa.func.count()).select_from(WorkerHeartbeat)) == 2,
                       timeout=30, message="both workers to report")
            first = period_of(utcnow(), 2) + 1
            periods = {first, first + 1, first + 2}
            # Wait out the three periods, then give the last period's runs time to finish.
            while period_of(utcnow(), 2) <= first + 2:
                time.sleep(0.2)
            wait_until(lambda: all(run.status == "succeeded" for run in job_runs() if run.period_key in periods),
                       timeout=30, message="the periods' runs to finish")
        finally:
            for worker in workers:
                stop_worker(worker)
        logs = "\n".join((tmp_path / f"worker-{i}.log").read_text()[-3000:] for i in range(2))
        for name in PERIODIC_NAMES:
            runs = [run for run in job_runs(name) if run.period_key in periods]
            assert sorted(run.period_key for run in runs) == sorted(periods), (name, logs)
            assert all(run.status == "succeeded" for run in runs), [(run.name, run.error) for run in runs]
        # Stopped workers sign off, so the health page does not count them as alive and says when they stopped.
        db.session.expire_all()
        assert set(db.session.scalars(sa.select(WorkerHeartbeat.mode))) == {WORKER_STOPPED}
        health = check_worker()
        assert not health.ok and health.detail.startswith("the last worker stopped ")
        if mode == "redis":
            Redis.from_url(environ["REDIS_URL"]).flushdb()
        db.session.remove()
        db.engine.dispose()


def test_a_test_call_whose_worker_is_killed_mid_call_ends_timed_out(app, tmp_path):
    import signal

    assignments.sync_numbers()
    number = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).first()
    from phoneapp.models import Client

    client = Client(name="Acme", phone="+14155550187")
    db.session.add(client)
    db.session.commit()
    number, _ = assignments.upsert_assignment({"twilio_sid": number.twilio_sid, "client_id": client.id})
    app.config["TEST_CALL_TIMEOUT"] = 8

    response = api_for(app).post(f"/api/phone-assignments/{number.id}/test-call", {"live": True})
    assert response.status_code == 202, response.json
    test_id = response.json["id"]
    # A slow sandbox call, so the worker can be killed while the call is under way.
    worker = start_worker(worker_environ(app, tmp_path, SANDBOX_CALL_PACE="3", TEST_CALL_TIMEOUT="8"),
                          "--no-schedule", log_path=tmp_path / "worker.log")
    try:
        wait_until(lambda: db.session.get(TestCall, test_id).step in ("webhook reached", "forwarding"),
                   timeout=30, message="the test call to reach phoneapp")
    finally:
        stop_worker(worker, sig=signal.SIGKILL)
    reached = db.session.get(TestCall, test_id).step
    assert db.session.get(TestCall, test_id).finished_at is None

    reader = api_for_reader_client(app)
    wait_until(lambda: reader.get(f"/api/test-calls/{test_id}").json["finished_at"], timeout=20,
               message="the test's deadline")
    body = reader.get(f"/api/test-calls/{test_id}").json
    assert (body["step"], body["result"]) == ("timed out", "failed")
    assert [step["step"] for step in body["steps"]][-2:] == [reached, "timed out"]
    assert "did not finish" in body["detail"] or "no result" in body["detail"]


def api_for_reader_client(app):
    reader = users.create_user("reader@example.test", "staple paper clip", role="staff")
    return ApiClient(app.test_client(), users.issue_token(reader))
