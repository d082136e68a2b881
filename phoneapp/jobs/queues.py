"""Handing runs to a queue: the database queue needs nothing more; RQ carries a JobRun's id to a worker."""
from __future__ import annotations

import logging

from flask import current_app
from redis import Redis
from rq import Callback, Queue, Retry

from phoneapp.extensions import db
from phoneapp.jobs.runs import new_run, record_failure, run_job, worker_name
from phoneapp.models import JobRun, utcnow

log = logging.getLogger(__name__)
# A web request that queues a job must not hang on a Redis that is down: fail fast and say so.
CONNECT_TIMEOUT = 2
SOCKET_TIMEOUT = 5


class QueueUnavailable(RuntimeError):
    """The job could not be handed to the queue (Redis down); the run is recorded as failed."""


def enqueue(name, *args) -> JobRun:
    """Queue job `name` for a worker; raises QueueUnavailable (with the run recorded as failed) if Redis is down."""
    run = new_run(name, args)
    db.session.add(run)
    db.session.commit()
    submit(run)
    return run


def submit(run: JobRun) -> None:
    """Hand a committed run to Redis; a database-queue run needs nothing more, a worker claims it."""
    if run.queue != "rq":
        return
    try:
        send_to_rq(run)
    except Exception as exc:  # redis errors of every kind: connection, timeout, read-only replica
        run.status, run.finished_at = "failed", utcnow()
        run.error = f"Could not queue the job: Redis is unreachable ({exc})"[:2000]
        db.session.commit()
        raise QueueUnavailable(run.error) from exc


def redis_connection(url=None) -> Redis:
    """A Redis client for the app's REDIS_URL, one per app."""
    app = current_app._get_current_object()
    url = url or app.config["REDIS_URL"]
    key = f"phoneapp.redis:{url}"
    connection = app.extensions.get(key)
    if connection is None:
        connection = Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT,
                                    health_check_interval=30)
        app.extensions[key] = connection
    return connection


def rq_queue() -> Queue:
    return Queue(current_app.config["RQ_QUEUE"], connection=redis_connection())


def send_to_rq(run) -> None:
    """Enqueue `run` on RQ with its time limit and retries; raises redis errors."""
    delays = current_app.config["JOB_RETRY_DELAYS"]
    retries = run.max_attempts - 1
    rq_queue().enqueue(
        "phoneapp.jobs.queues.perform", run.id,
        job_id=f"{current_app.config['RQ_QUEUE']}-run-{run.id}",
        description=f"{run.name}{tuple(run.args or ())}",
        job_timeout=run.timeout_seconds,
        retry=Retry(max=retries, interval=delays) if retries else None,
        on_failure=Callback(on_rq_failure, timeout=30),
        result_ttl=3600, failure_ttl=7 * 24 * 3600,
    )


def perform(run_id):
    """What RQ calls in the work horse: run the JobRun in the app context the worker pushed before forking."""
    app = current_app._get_current_object()
    with app.app_context():
        try:
            return run_job(run_id, worker_name())
        finally:
            db.session.remove()


def on_rq_failure(job, connection, exc_type, exc_value, tb):
    """RQ gave up on a job our own code could not record: a killed work horse, an abandoned job."""
    run_id = job.args[0] if job.args else None
    app = current_app._get_current_object()
    with app.app_context():
        run = db.session.get(JobRun, run_id)
        if run is not None and run.status == "running":
            record_failure(run.id, run.attempts, f"{exc_type.__name__}: {exc_value}" if exc_type else "failed")
        db.session.remove()
