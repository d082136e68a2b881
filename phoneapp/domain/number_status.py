"""The status dot of a tracking number (SPEC §4), decided in this one place."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from phoneapp.domain.phones import display_phone, is_dialable

# This many forwarded calls failing in a row, most recent first, turns a number red.
FAILING_STREAK = 3


# The colour's word in URLs and the API, in the order pages list them.
STATUS_KEYS = ("forwarding", "pending", "error", "inactive")
# A filter over several keys: the numbers the dashboard says need attention, red before yellow.
STATUS_GROUPS = {"attention": ("error", "pending")}


@dataclass(frozen=True)
class NumberStatus:
    colour: str  # green, yellow, red, grey
    label: str
    reason: str
    # A test call under way: said beside the dot, never a colour of its own (SPEC §4).
    testing: bool = False

    @property
    def key(self):
        return {"green": "forwarding", "yellow": "pending", "red": "error", "grey": "inactive"}[self.colour]


def number_status(number, *, now, verify_max_age, open_error=None, recent_failed_streak=0, region="US",
                  testing=False, target_is_tracking=False):
    """Colour, label and one-line reason for `number` (a PhoneAssignment or anything shaped like it)."""
    status = _status_of(number, now=now, verify_max_age=verify_max_age, open_error=open_error,
                        recent_failed_streak=recent_failed_streak, region=region,
                        target_is_tracking=target_is_tracking)
    return replace(status, testing=True) if testing else status


def _status_of(number, *, now, verify_max_age, open_error, recent_failed_streak, region, target_is_tracking):
    if not number.is_active:
        return NumberStatus("grey", "Inactive", "Switched off by staff")
    target = number.target_number
    if number.config_state == "missing":
        return NumberStatus("red", "Error", "Number is gone from the Twilio account")
    if number.config_state in ("drift", "error"):
        return NumberStatus("red", "Error", number.config_detail or "Twilio's configuration differs from phoneapp's")
    if target and not is_dialable(target):
        return NumberStatus("red", "Error", f"Forward target {target} is not a valid phone number")
    if target and target_is_tracking:
        return NumberStatus("red", "Error", f"Forward target {display_phone(target, region)} is a tracking number: "
                                            "callers hear a message instead of looping back in")
    if open_error:
        return NumberStatus("red", "Error", open_error)
    if recent_failed_streak >= FAILING_STREAK:
        return NumberStatus("red", "Error", f"The last {recent_failed_streak} forwarded calls were not answered")
    if number.client_id is None and not number.forward_to_number:
        return NumberStatus("yellow", "Pending setup", "Not assigned to a client yet")
    if not target:
        return NumberStatus("yellow", "Pending setup", "No forward target")
    if number.config_state == "verifying" or getattr(number, "verify_queued_at", None) is not None:
        return NumberStatus("yellow", "Pending setup", "Verifying Twilio's configuration…")
    if number.last_verified_at is None or number.config_state == "unverified":
        return NumberStatus("yellow", "Pending setup", "Twilio's configuration not verified yet")
    if now - number.last_verified_at > timedelta(seconds=verify_max_age):
        return NumberStatus("yellow", "Pending setup", "Twilio's configuration due for a new check")
    return NumberStatus("green", "Forwarding", f"Forwarding to {display_phone(target, region)}")


def count_by_colour(statuses):
    """{colour: how many} of NumberStatus values, every colour present."""
    counts = dict.fromkeys(("green", "yellow", "red", "grey"), 0)
    for status in statuses:
        counts[status.colour] += 1
    return counts
