"""Call status ordering: Twilio delivers callbacks late, twice and out of order."""
from __future__ import annotations

# Twilio's own values are hyphenated; anything else is a bug in the caller, not a new status.
TERMINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
LIVE_STATUSES = ("queued", "initiated", "ringing", "in-progress")
KNOWN_STATUSES = frozenset(LIVE_STATUSES) | TERMINAL_STATUSES
FAILED_DIAL_STATUSES = frozenset({"busy", "no-answer", "failed"})
# The outcome words staff see on calls and filter on, in the order menus list them.
OUTCOMES = ("answered", "missed", "voicemail", "not forwarded", "ended", "in progress")

_RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3}
_TERMINAL_RANK = 4


def status_rank(status):
    """Position in a call's life; unknown values rank lowest so they never win."""
    if status in TERMINAL_STATUSES:
        return _TERMINAL_RANK
    return _RANK.get(status, -1)


def advance_status(current, reported):
    """The status a call has after `reported` arrives: never backwards, never past an end."""
    if reported not in KNOWN_STATUSES:
        return current
    if current is None:
        return reported
    if current in TERMINAL_STATUSES:
        return current
    return reported if status_rank(reported) > status_rank(current) else current


def is_failed_forward(dial_status):
    """A forwarded leg that nobody answered: it feeds voicemail and the failed-calls alert."""
    return dial_status in FAILED_DIAL_STATUSES


def call_outcome(status, dial_status, routed_by, has_voicemail):
    """One word for staff: how the call ended up, as shown in lists and filters."""
    if dial_status in FAILED_DIAL_STATUSES:
        return "voicemail" if has_voicemail else "missed"
    if dial_status in ("completed", "answered"):
        return "answered"
    if routed_by == "message":
        return "not forwarded"
    if status in TERMINAL_STATUSES:
        # The caller hung up before the forward was answered, or the leg never started.
        return "missed" if status != "completed" or dial_status == "canceled" else "ended"
    return "in progress"
