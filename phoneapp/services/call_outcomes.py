"""A call's outcome as SQL: call_status.call_outcome's words, so lists filter and count on what staff see."""
import sqlalchemy as sa

from phoneapp.domain.call_status import FAILED_DIAL_STATUSES, TERMINAL_STATUSES
from phoneapp.models import CallRecord


def outcome_expression():
    """call_status.call_outcome as SQL, so the call log can filter on what staff see in the badge."""
    failed = CallRecord.dial_status.in_(FAILED_DIAL_STATUSES)
    has_voicemail = sa.and_(CallRecord.voicemail_url.is_not(None), CallRecord.voicemail_url != "")
    ended = CallRecord.status.in_(TERMINAL_STATUSES)
    return sa.case(
        (sa.and_(failed, has_voicemail), "voicemail"),
        (failed, "missed"),
        (CallRecord.dial_status.in_(("completed", "answered")), "answered"),
        (CallRecord.routed_by == "message", "not forwarded"),
        (sa.and_(ended, sa.or_(CallRecord.status != "completed", CallRecord.dial_status == "canceled")), "missed"),
        (ended, "ended"),
        else_="in progress",
    )
