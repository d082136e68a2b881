"""A call's outcome, told once it is final: the client's notices and the outbound webhooks it owes (SPEC §10).

Every worker runs settle_calls() about once a second, all at once: a call is claimed by setting its
settled_at where it is still empty, in the same transaction that queues what it owes, so whichever worker
settles it, it is settled once and what it owes is queued once.
"""
from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from phoneapp.domain.call_status import TERMINAL_STATUSES, outcome_is_final, outcome_of
from phoneapp.extensions import db
from phoneapp.models import CallRecord, utcnow
from phoneapp.services.call_notices import queue_call_notices
from phoneapp.services.outbound_webhooks import queue_call_events

log = logging.getLogger(__name__)

# How long a call over but missed waits for its voicemail (or an answered one for its recording) to be told
# anyway: Twilio's recording callback usually follows the call's end within seconds.
SETTLE_WAIT = timedelta(seconds=90)
BATCH = 200


def settle_calls(now=None) -> int:
    """Settle every call whose outcome is final; returns how many this worker settled."""
    now = now or utcnow()
    # One query for the batch: calls waiting for a late voicemail are looked at every second until they settle.
    candidates = db.session.scalars(
        sa.select(CallRecord).where(CallRecord.settled_at.is_(None), CallRecord.status.in_(TERMINAL_STATUSES))
        .order_by(CallRecord.id).limit(BATCH)).all()
    final = [record.id for record in candidates if _final(record, now)]
    db.session.rollback()
    settled = 0
    for call_id in final:
        record = db.session.get(CallRecord, call_id)
        if record is None or record.settled_at is not None:
            continue
        if _claim(record.id, now):
            db.session.refresh(record)
            if not record.is_test:  # a test call is kept out of what staff and clients are told
                outcome = outcome_of(record)
                queue_call_events(record, outcome)
                queue_call_notices(record, outcome)
            db.session.commit()
            settled += 1
        else:
            db.session.rollback()
    return settled


def _final(record, now):
    ended = record.ended_at or record.updated_at or record.started_at
    return outcome_is_final(
        outcome_of(record), record.status,
        recording_expected=bool(current_app.config["RECORD_CALLS"]),
        has_recording=bool(record.recording_url),
        waited_enough=ended is not None and now - ended >= SETTLE_WAIT)


def _claim(call_id, now) -> bool:
    return db.session.execute(
        sa.update(CallRecord).where(CallRecord.id == call_id, CallRecord.settled_at.is_(None))
        .values(settled_at=now).execution_options(synchronize_session=False)).rowcount == 1
