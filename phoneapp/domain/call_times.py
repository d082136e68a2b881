"""When a call started, was answered and ended, from what Twilio said and when it said it.

Callbacks arrive late, twice and in any order, so every time is the earliest of its estimates: the result is
the same whichever order they came in.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from phoneapp.domain.call_status import advance_status

# Twilio retries a callback for hours at most; a Timestamp further than this from its arrival is not believed.
TIMESTAMP_TRUST = timedelta(days=2)


def twilio_timestamp(value, received_at: datetime) -> datetime | None:
    """Twilio's `Timestamp` (RFC 2822) as naive UTC, or None when absent, unreadable or far from its arrival."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    if abs(moment - received_at) > TIMESTAMP_TRUST:
        return None
    return moment


def earliest(*moments):
    """The earliest of the moments that are known."""
    known = [moment for moment in moments if moment is not None]
    return min(known) if known else None


def seconds_before(moment: datetime | None, seconds: int | None) -> datetime | None:
    """`seconds` before `moment`: where a callback carrying a duration places the start of what it timed."""
    if moment is None or seconds is None:
        return None
    return moment - timedelta(seconds=seconds)


def seconds_between(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, round((end - start).total_seconds()))


# -- a call record's times, for anything with its fields (a CallRecord) ---------------------------------

# What said a call was over: Twilio's final status callback (exact), the call's own flow, or a long silence.
ENDED_BY_STATUS_CALLBACK = "status-callback"
ENDED_BY_CALL_FLOW = "call-flow"
ENDED_BY_TIMEOUT = "timeout"


def place_start(record, *moments):
    """The call started no later than any of `moments`."""
    started = earliest(record.started_at, *moments)
    if started is not None and started != record.started_at:
        record.started_at = started


def end_from_call_flow(record, at):
    """The call's own flow says it is over at `at` (our answer hangs up, or Twilio says the caller has gone).

    Twilio's final status callback, when it comes, has the exact end and wins; until then the first such
    signal is the best known end.
    """
    if record.ended_by == ENDED_BY_STATUS_CALLBACK:
        return
    record.status = advance_status(record.status, "completed")
    ended = earliest(record.ended_at, at)
    if ended != record.ended_at:
        record.ended_at = ended
    if record.ended_by is None:
        record.ended_by = ENDED_BY_CALL_FLOW


def settle_times(record, start_observed):
    """Keep start <= answer <= end whatever estimate came first, and a duration for a call Twilio never timed.

    `start_observed`: the voice webhook's arrival is known, and it is the start; an estimate of the answer or
    the end before it is the estimate's error. Without it, the call began no later than anything heard of it.
    """
    if start_observed:
        for column in ("answered_at", "ended_at"):
            moment = getattr(record, column)
            if moment is not None and moment < record.started_at:
                setattr(record, column, record.started_at)
    else:
        place_start(record, record.answered_at, record.ended_at)
    if record.answered_at is not None and record.ended_at is not None and record.answered_at > record.ended_at:
        record.answered_at = record.ended_at
    if record.ended_by != ENDED_BY_STATUS_CALLBACK and record.ended_at is not None:
        derived = seconds_between(record.started_at, record.ended_at)
        if record.duration != derived:
            record.duration = derived
