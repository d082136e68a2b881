"""JobRun rows: a new run, claiming it, running it and recording how it ended.

Both queues share this code: with Redis, RQ carries the run's id to a worker; without it, a worker
claims queued rows from the table. Either way the row says what happened, for the health page.
"""
from __future__ import annotations

import logging
import os
import socket
import traceback
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from phoneapp.extensions import db
from phoneapp.jobs.registry import JOBS
from phoneapp.models import JobRun, utcnow

log = logging.getLogger(__name__)
FINAL = ("succeeded", "failed")
# A run still "running" this long after its time limit lost its worker (killed, machine gone).
STALL_GRACE = timedelta(seconds=60)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def new_run(name, args=(), *, period_key=None) -> JobRun:
    """A JobRun for `name`, not yet committed; its queue follows the app's REDIS_URL."""
    config = current_app.config
    job = JOBS[name]
    retries = len(config["JOB_RETRY_DELAYS"]) if job.retries else 0
    return JobRun(name=name, args=list(args), queue="rq" if config["REDIS_URL"] else "db", period_key=period_key,
                  status="queued", attempts=0, max_attempts=1 + retries,
                  timeout_seconds=job.timeout_seconds(config), run_after=utcnow(), enqueued_at=utcnow())


def claim_period(name, period_key) -> JobRun | None:
    """This worker's run of `name` for period `period_key`, or None when another worker claimed it first."""
    run = new_run(name, period_key=period_key)
    db.session.add(run)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return run


def claim_next_queued(worker) -> int | None:
    """Claim the oldest due run of the database queue; None when there is nothing to do."""
    now = utcnow()
    candidates = db.session.scalars(
        sa.select(JobRun.id)
        .where(JobRun.queue == "db", JobRun.status.in_(("queued", "retrying")), JobRun.run_after <= now)
        .order_by(JobRun.run_after, JobRun.id).limit(5)
    ).all()
    for run_id in candidates:
        # The status in the WHERE makes the claim atomic: of two workers, one updates the row.
        claimed = db.session.execute(
            sa.update(JobRun).where(JobRun.id == run_id, JobRun.status.in_(("queued", "retrying")))
            .values(status="running", worker=worker, started_at=now)
        ).rowcount
        db.session.commit()
        if claimed:
            return run_id
    return None


def run_job(run_id, worker) -> str:
    """Run JobRun `run_id` here and now; returns its status. Exceptions propagate so RQ can retry."""
    run = db.session.get(JobRun, run_id)
    if run is None or run.status in FINAL:
        # A late second delivery of a run that already ended does nothing.
        return run.status if run is not None else "missing"
    job = JOBS.get(run.name)
    run.status, run.worker, run.started_at, run.finished_at = "running", worker, utcnow(), None
    run.attempts += 1
    attempt, args = run.attempts, list(run.args or [])
    db.session.commit()
    try:
        if job is None:
            raise LookupError(f"no job is named {run.name!r}")
        summary = job.function()(*args)
    except BaseException as exc:
        db.session.rollback()
        record_failure(run_id, attempt, describe(exc))
        raise
    finished = db.session.execute(
        # Only the attempt that is still the run's current one may end it; a timed-out attempt is over.
        sa.update(JobRun).where(JobRun.id == run_id, JobRun.attempts == attempt, JobRun.status == "running")
        .values(status="succeeded", finished_at=utcnow(), error=None, summary=str(summary or "")[:500])
    ).rowcount
    db.session.commit()
    return "succeeded" if finished else db.session.get(JobRun, run_id).status


def record_failure(run_id, attempt, error) -> None:
    """End an attempt as failed: retried later while attempts remain, else failed for good."""
    run = db.session.get(JobRun, run_id)
    if run is None or run.attempts != attempt or run.status in FINAL:
        return
    delays = current_app.config["JOB_RETRY_DELAYS"]
    run.error = error[:4000]
    if run.attempts < run.max_attempts:
        run.status = "retrying"
        delay = delays[min(run.attempts - 1, len(delays) - 1)] if delays else 0
        run.run_after = utcnow() + timedelta(seconds=delay)
    else:
        run.status, run.finished_at = "failed", utcnow()
    db.session.commit()


def describe(exc) -> str:
    if type(exc).__name__ == "JobTimeoutException":
        return f"Timed out: {exc}"
    lines = traceback.format_exception_only(type(exc), exc)
    return "".join(lines).strip()


def fail_stalled_runs() -> int:
    """Runs whose worker died mid-run (killed, out of memory): ended, so no page waits on them forever."""
    now = utcnow()
    stalled = db.session.scalars(
        sa.select(JobRun).where(JobRun.status.in_(("running", "retrying")), JobRun.started_at.is_not(None))
    ).all()
    count = 0
    for run in stalled:
        limit = run.started_at + timedelta(seconds=run.timeout_seconds) + STALL_GRACE
        if run.status == "retrying":
            # The database queue picks retries up itself; RQ's retry should have started by now.
            if run.queue == "db" or limit + timedelta(seconds=max(current_app.config["JOB_RETRY_DELAYS"] or [0])) > now:
                continue
        elif limit >= now:
            continue
        if run.queue == "db":
            record_failure(run.id, run.attempts, "The worker running this job stopped before it finished")
        else:
            run.status, run.finished_at = "failed", now
            run.error = "The worker running this job stopped before it finished"
            db.session.commit()
        count += 1
    return count
