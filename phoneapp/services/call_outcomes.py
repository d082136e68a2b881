"""A call's outcome as SQL: call_status.call_outcome's words, so lists filter and count on what staff see."""
import sqlalchemy as sa

from phoneapp.domain.call_status import (
    ANSWERED_DIAL_STATUSES,
    ANSWERED_LEG_STATUSES,
    FAILED_DIAL_STATUSES,
    TERMINAL_STATUSES,
)
from phoneapp.models import CallRecord


def person_unconfirmed():
    """Acceptance was required and nobody is known to have pressed 1 (call_status.call_outcome's flag), as SQL."""
    return sa.and_(CallRecord.requires_accept.is_(True), CallRecord.accepted_by.is_(None))


def person_accepted():
    """Acceptance was required and somebody pressed 1 (call_status.call_outcome's `accepted`), as SQL."""
    return sa.and_(CallRecord.requires_accept.is_(True), CallRecord.accepted_by.is_not(None))


def outcome_expression():
    """call_status.call_outcome as SQL, so lists filter and figures count on what staff see in the badge."""
    failed = CallRecord.dial_status.in_(FAILED_DIAL_STATUSES)
    has_voicemail = sa.and_(CallRecord.voicemail_url.is_not(None), CallRecord.voicemail_url != "")
    leg_answered = sa.and_(sa.or_(CallRecord.dial_status.is_(None), CallRecord.dial_status != "canceled"),
                           CallRecord.dial_leg_status.in_(ANSWERED_LEG_STATUSES), sa.not_(person_unconfirmed()))
    accepted = person_accepted()
    return sa.case(
        (CallRecord.routed_by == "blocked", "blocked"),
        (CallRecord.dial_status.in_(ANSWERED_DIAL_STATUSES), "answered"),
        (CallRecord.routed_by == "message", "unrouted"),
        (sa.and_(CallRecord.status.not_in(TERMINAL_STATUSES), has_voicemail), "voicemail"),
        (CallRecord.status.not_in(TERMINAL_STATUSES), "in progress"),
        (accepted, "answered"),
        (sa.and_(failed, has_voicemail), "voicemail"),
        (failed, "missed"),
        (leg_answered, "answered"),
        (has_voicemail, "voicemail"),
        else_="missed",
    )
