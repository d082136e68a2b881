"""Whether a call is its caller's first to the client it called (or to its number, when it has no client)."""
from __future__ import annotations

import sqlalchemy as sa

from phoneapp.domain.phones import is_dialable
from phoneapp.extensions import db
from phoneapp.models import CallRecord


def _same_line(record):
    """The calls that count as calling what `record` called: its client's, else its number's; None when unknown."""
    if record.client_id is not None:
        return CallRecord.client_id == record.client_id
    if record.phone_assignment_id is not None:
        return CallRecord.phone_assignment_id == record.phone_assignment_id
    if record.to_number:
        return CallRecord.to_number == record.to_number
    return None


def first_time_caller(record):
    """True when no earlier non-test call came from this caller to the same client (or number); None when that
    cannot be said: a test call, or a caller who withheld their number.

    "Earlier" is by start, so a call written late (a webhook log replayed after an outage) is judged by when it
    rang, not by when it was written.
    """
    same_line = _same_line(record)
    if record.is_test or same_line is None or not is_dialable(record.from_number):
        return None
    before = sa.or_(CallRecord.started_at < record.started_at,
                    sa.and_(CallRecord.started_at == record.started_at, CallRecord.id < record.id))
    earlier = db.session.scalar(
        sa.select(CallRecord.id)
        .where(same_line, CallRecord.from_number == record.from_number, CallRecord.is_test.is_(False),
               CallRecord.id != record.id, before)
        .limit(1))
    return earlier is None
