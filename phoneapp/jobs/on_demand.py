"""Work staff ask a worker for: a test of a number, a check of numbers whose configuration is out of date.

Each makes its record first (a TestCall, the numbers marked as being verified), then queues the job,
so a page or the API has something to show at once, even when the queue turns out to be down.
"""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from phoneapp.extensions import db
from phoneapp.jobs.queues import QueueUnavailable, enqueue
from phoneapp.models import PhoneAssignment, TestCall, utcnow
from phoneapp.services.call_tests import advance, running_tests_by_number, step_entry
from phoneapp.services.health import check_worker

NO_WORKER = "Waiting for a worker, but none is running: start one (python worker.py) and the test begins"
# A check queued this long ago and never done lost its worker; asking again is better than waiting.
REQUEUE_AFTER = timedelta(minutes=10)


class AlreadyTesting(Exception):
    """Test was asked for while a test of the same number is under way: none more is started."""

    def __init__(self, test):
        super().__init__("A test of this number is already running, so no second one was started")
        self.test = test


def start_test_call(number, user=None, *, live=True) -> TestCall:
    """Queue a test of `number`; the returned TestCall is what pages and the API poll.

    Raises AlreadyTesting, carrying the running test, when one is under way: two tests of a number at once
    would both be rung by the same test phone and each read the other's calls.
    """
    # Said at once rather than after the test's whole time limit: nothing will pick the test up.
    waiting = "Waiting for a worker" if check_worker().ok else NO_WORKER
    # The number's row is held until the new test is committed, so two presses at once start one test.
    db.session.execute(sa.select(PhoneAssignment.id).where(PhoneAssignment.id == number.id).with_for_update())
    running = running_tests_by_number([number.id]).get(number.id)
    if running is not None:
        db.session.rollback()
        raise AlreadyTesting(running)
    now = utcnow()
    test = TestCall(phone_assignment_id=number.id, requested_by_id=getattr(user, "id", None), live=live,
                    step="queued", detail=waiting, created_at=now,
                    deadline_at=now + timedelta(seconds=current_app.config["TEST_CALL_TIMEOUT"]),
                    steps=[step_entry("queued", None, waiting)])
    db.session.add(test)
    db.session.commit()
    try:
        enqueue("run_test_call", test.id)
    except QueueUnavailable as exc:
        advance(test, "failed", False, f"Could not start the test: {exc}")
        db.session.commit()
    return test


def due_for_verification(numbers, *, now, max_age_seconds):
    """The active numbers whose last check is missing or older than VERIFY_MAX_AGE and not already queued."""
    due = []
    for number in numbers:
        if not number.is_active:
            continue
        if number.verify_queued_at is not None and now - number.verify_queued_at < REQUEUE_AFTER:
            continue
        if number.last_verified_at is None or now - number.last_verified_at > timedelta(seconds=max_age_seconds):
            due.append(number)
    return due


def queue_verification(numbers):
    """Mark `numbers` as being verified and queue one job to check them; raises QueueUnavailable."""
    ids = [number.id for number in numbers]
    if not ids:
        return None
    now = utcnow()
    db.session.execute(sa.update(PhoneAssignment).where(PhoneAssignment.id.in_(ids)).values(verify_queued_at=now))
    db.session.commit()
    try:
        return enqueue("verify_some_numbers", ids)
    except Exception:
        db.session.execute(sa.update(PhoneAssignment).where(PhoneAssignment.id.in_(ids),
                                                            PhoneAssignment.verify_queued_at == now)
                           .values(verify_queued_at=None))
        db.session.commit()
        raise
