"""A worker without Redis: it claims queued runs from the database and runs them on threads.

This is the embedded default (SPEC §9). Threads cannot be killed, so a run past its time limit is
recorded as timed out and its thread left to finish on its own; whatever it returns then is ignored.
"""
from __future__ import annotations

import logging
import threading
import time

from phoneapp.extensions import db
from phoneapp.jobs.runs import claim_next_queued, record_failure, run_job
from phoneapp.jobs.scheduler import TICK, Scheduler
from phoneapp.models import JobRun

log = logging.getLogger(__name__)


class DatabaseQueueWorker:
    def __init__(self, app, worker, threads=None):
        self.app, self.worker = app, worker
        self.threads = threads or app.config["WORKER_THREADS"]
        self.running = {}  # run id -> (thread, deadline on the monotonic clock)
        self.stop = threading.Event()

    def work(self, *, burst=False, schedule=True):
        """Run queued jobs (and keep the schedule) until stopped; in burst mode, until nothing is left."""
        with self.app.app_context():
            scheduler = Scheduler(self.app, self.worker, "db") if schedule else None
            try:
                while not self.stop.is_set():
                    if scheduler is not None:
                        scheduler.tick()
                    self._end_overdue()
                    started = self._start_due()
                    db.session.remove()
                    if burst and not started and not self.running:
                        break
                    if not started:
                        self.stop.wait(TICK / 4 if burst else TICK)
            finally:
                if scheduler is not None:
                    scheduler.sign_off()
                db.session.remove()
        for thread, _ in list(self.running.values()):
            thread.join(timeout=5)

    def _start_due(self) -> int:
        started = 0
        while len(self.running) < self.threads:
            run_id = claim_next_queued(self.worker)
            if run_id is None:
                break
            timeout = db.session.get(JobRun, run_id).timeout_seconds
            thread = threading.Thread(target=self._execute, args=(run_id,), name=f"job-run-{run_id}", daemon=True)
            self.running[run_id] = (thread, time.monotonic() + timeout)
            thread.start()
            started += 1
        return started

    def _execute(self, run_id):
        with self.app.app_context():
            try:
                run_job(run_id, self.worker)
            except Exception:
                log.exception("job run %s failed", run_id)
            finally:
                db.session.remove()

    def _end_overdue(self):
        for run_id, (thread, deadline) in list(self.running.items()):
            if not thread.is_alive():
                del self.running[run_id]
            elif time.monotonic() > deadline:
                del self.running[run_id]
                run = db.session.get(JobRun, run_id)
                if run is not None and run.status == "running":
                    record_failure(run_id, run.attempts, f"Timed out after {run.timeout_seconds} s")
