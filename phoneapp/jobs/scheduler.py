"""The periodic schedule, kept by every worker at once without running anything twice.

Time is cut into periods of each job's interval. Every worker tries to claim the current period
of each job; the database's unique (name, period) key lets exactly one succeed, so N workers run
each job once per period, not N times, and a worker that dies hands the next period to the others.
"""
from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.jobs.queues import submit
from phoneapp.jobs.registry import PERIODIC
from phoneapp.jobs.runs import claim_period, fail_stalled_runs, run_job
from phoneapp.models import WorkerHeartbeat, utcnow
from phoneapp.services.call_notices import send_due_call_notices
from phoneapp.services.call_settlement import settle_calls
from phoneapp.services.call_tests import expire_overdue_test_calls
from phoneapp.services.health import WORKER_STOPPED
from phoneapp.services.notifications import send_pending_notifications
from phoneapp.services.outbound_webhooks import announce_number_statuses
from phoneapp.services.webhook_delivery import deliver_due_webhooks
from phoneapp.services.webhook_events import write_orphaned_webhooks

log = logging.getLogger(__name__)
HEARTBEAT_EVERY = 10.0
# Comparing every number's status is a few queries; a change told within seconds is soon enough.
ANNOUNCE_EVERY = 10.0
TICK = 1.0


def period_of(now, interval_seconds) -> int:
    return int(now.timestamp() // interval_seconds)


class Scheduler:
    """One worker's share of the schedule; call tick() about once a second."""

    def __init__(self, app, worker, mode):
        self.app, self.worker, self.mode = app, worker, mode
        self.tried = {}  # job -> the period this worker last tried to claim
        self.last_beat = 0.0
        self.last_announced = 0.0

    def tick(self, now=None):
        now = now or utcnow()
        self._guarded("heartbeat", self.beat)
        for periodic in PERIODIC:
            key = period_of(now, periodic.interval_seconds(self.app.config))
            if self.tried.get(periodic.job) == key:
                continue
            self.tried[periodic.job] = key
            self._guarded(periodic.job, self.claim_and_start, periodic, key)
        self._guarded("housekeeping", self.housekeeping)

    def claim_and_start(self, periodic, key):
        run = claim_period(periodic.job, key)
        if run is None:
            return
        log.info("scheduler: %s for period %s claimed by %s", periodic.job, key, self.worker)
        if periodic.inline:
            try:
                run_job(run.id, self.worker)
            except Exception:
                log.exception("periodic job %s failed", periodic.job)
        else:
            submit(run)

    def beat(self, force=False):
        if not force and time.monotonic() - self.last_beat < HEARTBEAT_EVERY:
            return
        now = utcnow()
        updated = db.session.execute(
            sa.update(WorkerHeartbeat).where(WorkerHeartbeat.name == self.worker).values(last_seen_at=now)
        ).rowcount
        if not updated:
            db.session.add(WorkerHeartbeat(name=self.worker, mode=self.mode, started_at=now, last_seen_at=now))
        db.session.commit()
        self.last_beat = time.monotonic()

    def housekeeping(self):
        """Idempotent chores every worker may do at once.

        Webhooks that stopped web processes logged, alert notices, overdue test calls, dead runs,
        settled calls and their notices, outbound webhooks and the number statuses they announce.
        """
        for chore in (write_orphaned_webhooks, send_pending_notifications, expire_overdue_test_calls,
                      fail_stalled_runs, settle_calls, send_due_call_notices):
            self._guarded(chore.__name__, chore)
        if time.monotonic() - self.last_announced >= ANNOUNCE_EVERY:
            self.last_announced = time.monotonic()
            self._guarded("announce_number_statuses", announce_number_statuses)
        self._guarded("deliver_due_webhooks", deliver_due_webhooks, None, self.worker)

    def run(self, stop: threading.Event, *, while_alive=lambda: True):
        """Tick until `stop` is set (or `while_alive` says the process that owns this one is gone), then sign off."""
        while not stop.is_set() and while_alive():
            self.tick()
            db.session.remove()
            stop.wait(TICK)
        self.sign_off()
        db.session.remove()

    def sign_off(self):
        """Say this worker stopped: it no longer counts as alive, and the health page can say when it stopped."""
        self._guarded("sign off", lambda: (db.session.execute(
            sa.update(WorkerHeartbeat).where(WorkerHeartbeat.name == self.worker)
            .values(mode=WORKER_STOPPED, last_seen_at=utcnow())), db.session.commit()))

    def _guarded(self, what, function, *args):
        # The schedule must outlive a failing chore or a database hiccup; the next tick tries again.
        try:
            function(*args)
        except Exception:
            db.session.rollback()
            log.exception("scheduler: %s failed", what)
