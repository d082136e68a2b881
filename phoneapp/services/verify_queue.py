"""Queueing configuration checks: a page or the API asks, a worker checks (and fixes) off the request."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.jobs import enqueue
from phoneapp.models import PhoneAssignment, utcnow

# A check queued this long ago and never done lost its worker; asking again is better than waiting.
REQUEUE_AFTER = timedelta(minutes=10)


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
