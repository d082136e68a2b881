"""A number whose forwards keep failing: its streak of failed forwards, and the alert that goes with it."""
from __future__ import annotations

import sqlalchemy as sa

from phoneapp.domain.call_status import (
    ANSWERED_DIAL_STATUSES,
    ANSWERED_LEG_STATUSES,
    FAILED_DIAL_STATUSES,
    forward_verdict,
)
from phoneapp.domain.number_status import FAILING_STREAK
from phoneapp.extensions import db
from phoneapp.models import CallRecord, PhoneAssignment
from phoneapp.services.alerts import raise_alert, resolve_alerts
from phoneapp.services.call_outcomes import person_accepted, person_unconfirmed


def _says_something_of_the_target():
    """call_status.forward_verdict is not None, as SQL: the calls a streak is made of."""
    return sa.or_(
        CallRecord.dial_status.in_(ANSWERED_DIAL_STATUSES), person_accepted(),
        sa.and_(CallRecord.caller_hung_up.is_(False), sa.or_(
            CallRecord.dial_status.in_(FAILED_DIAL_STATUSES),
            sa.and_(CallRecord.dial_status.is_(None), CallRecord.dial_leg_status.in_(FAILED_DIAL_STATUSES)),
            sa.and_(CallRecord.dial_status.is_(None), CallRecord.dial_leg_status.in_(ANSWERED_LEG_STATUSES),
                    sa.not_(person_unconfirmed())))))


def failed_forward_streak(phone_assignment_id, limit=FAILING_STREAK):
    """How many of the number's latest forwards failed in a row (at most `limit`), hang-ups left out."""
    latest = db.session.execute(
        sa.select(CallRecord.dial_status, CallRecord.dial_leg_status, CallRecord.caller_hung_up,
                  person_unconfirmed(), person_accepted())
        .where(CallRecord.phone_assignment_id == phone_assignment_id, CallRecord.is_test.is_(False),
               _says_something_of_the_target())
        .order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
        .limit(limit)
    ).all()
    streak = 0
    for dial_status, dial_leg_status, caller_hung_up, unconfirmed, accepted in latest:
        if forward_verdict(dial_status, dial_leg_status, caller_hung_up, bool(unconfirmed),
                           accepted=bool(accepted)) != "failed":
            break
        streak += 1
    return streak


def update_failed_forwards_alert(phone_assignment_id):
    """Bring the number's streak and its alert up to date; the caller commits."""
    subject = f"number:{phone_assignment_id}"
    streak = failed_forward_streak(phone_assignment_id)
    number = db.session.get(PhoneAssignment, phone_assignment_id)
    if number is not None and number.failed_forward_streak != streak:
        number.failed_forward_streak = streak
    if streak >= FAILING_STREAK:
        raise_alert("failed_forwards", subject,
                    f"The last {streak} calls to {number.phone_number} forwarded to nobody who answered",
                    severity="error", phone_assignment_id=phone_assignment_id)
    elif streak == 0:
        resolve_alerts("failed_forwards", subject)
