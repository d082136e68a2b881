"""Whether a call is its caller's first to the client it called (or to its number, when it has no client)."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from phoneapp.domain.phones import is_dialable
from phoneapp.extensions import db
from phoneapp.models import CallRecord


def _earlier_call_statement(same_line):
    """Of the calls given as `ids`, those whose caller called the same line before them (same_line(earlier))."""
    earlier = aliased(CallRecord)
    before = sa.or_(earlier.started_at < CallRecord.started_at,
                    sa.and_(earlier.started_at == CallRecord.started_at, earlier.id < CallRecord.id))
    return sa.select(CallRecord.id).where(
        CallRecord.id.in_(sa.bindparam("ids", expanding=True)),
        sa.exists().where(same_line(earlier), earlier.from_number == CallRecord.from_number,
                          earlier.is_test.is_(False), earlier.id != CallRecord.id, before))


# What counts as calling the same line as a call: its client's calls, else its number's, else its called number's.
# The statements are built once: building one costs more than running it.
_LINES = (
    ("client", lambda record: record.client_id is not None,
     _earlier_call_statement(lambda earlier: earlier.client_id == CallRecord.client_id)),
    ("number", lambda record: record.phone_assignment_id is not None,
     _earlier_call_statement(lambda earlier: earlier.phone_assignment_id == CallRecord.phone_assignment_id)),
    ("called", lambda record: bool(record.to_number),
     _earlier_call_statement(lambda earlier: earlier.to_number == CallRecord.to_number)),
)


def first_time_caller(record):
    """True when no earlier non-test call came from this caller to the same client (or number); None when that
    cannot be said: a test call, or a caller who withheld their number.

    "Earlier" is by start, so a call written late (a webhook log replayed after an outage) is judged by when it
    rang, not by when it was written.
    """
    return first_time_callers([record])[record.id]


def first_time_callers(records):
    """{record id: first_time_caller} for `records`, each as the database holds it: one query per kind of line."""
    verdicts, lines = {}, {}
    for record in records:
        line = next((name for name, applies, _ in _LINES if applies(record)), None)
        if record.is_test or line is None or not is_dialable(record.from_number):
            verdicts[record.id] = None
        else:
            lines.setdefault(line, []).append(record.id)
    for name, _, called_before_statement in _LINES:
        if name in lines:
            called_before = set(db.session.scalars(called_before_statement, {"ids": lines[name]}))
            verdicts.update((record_id, record_id not in called_before) for record_id in lines[name])
    return verdicts
