"""Running the real worker in tests: in this process (database queue) or as `python worker.py`."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.jobs.embedded import DatabaseQueueWorker
from phoneapp.models import JobRun
from tests.support.apps import PUBLIC_BASE_URL, TEST_DATABASE_URL
from tests.support.paths import ROOT


def always_fails():
    """A job that always fails (registered by the worker tests as `tests.support.jobs:always_fails`)."""
    raise RuntimeError("the upstream service said no")


def sleeps_past_its_limit():
    """A job that outlives its one-second limit."""
    time.sleep(30)


def run_queued_jobs(app, threads=2):
    """Run every queued database-queue job to the end, as `python worker.py --burst` would."""
    DatabaseQueueWorker(app, "test-worker", threads=threads).work(burst=True, schedule=False)
    db.session.expire_all()


def job_runs(name=None):
    query = sa.select(JobRun).order_by(JobRun.id)
    if name is not None:
        query = query.where(JobRun.name == name)
    return db.session.scalars(query).all()


def worker_environ(app, tmp_path, **extra):
    """The environment of a worker process sharing `app`'s database, instance folder and sandbox."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("TWILIO_", "REDIS_"))}
    environ.update({
        "SECRET_KEY": "tests-only-session-key-5c0e8a2f9b7d4163e8a1c6f0",
        "DATABASE_URL": TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'test.db'}",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "INSTANCE_PATH": app.instance_path,
        "SANDBOX_CALL_PACE": "0",
        "JOB_RETRY_DELAYS": "0",
        "PYTHONPATH": str(ROOT),
    })
    environ.update({key: str(value) for key, value in extra.items() if value is not None})
    return environ


def run_worker(environ, *args, timeout=120):
    """`python worker.py ARGS` to completion; returns the finished process."""
    return subprocess.run([sys.executable, str(ROOT / "worker.py"), *args], env=environ, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def start_worker(environ, *args, log_path=None):
    """`python worker.py ARGS` in the background, in its own process group (it forks work horses)."""
    output = open(log_path, "w") if log_path else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py"), *args], env=environ, cwd=ROOT,
                            stdout=output, stderr=subprocess.STDOUT, start_new_session=True)


def descendants(pid):
    """Every process below `pid`; an RQ work horse leaves its parent's process group, so killpg misses it."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_worker(process, sig=signal.SIGTERM, timeout=20):
    """Stop a worker started by start_worker; whatever it leaves behind is killed too."""
    below = descendants(process.pid)
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return process.returncode


def wait_until(predicate, timeout=30, interval=0.2, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        db.session.rollback()
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {message}")
