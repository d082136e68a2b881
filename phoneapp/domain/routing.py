"""Where an inbound call goes (SPEC §3): a plain decision, no Flask, no database."""
from __future__ import annotations

from dataclasses import dataclass, fields


# Slotted: a web process holds one per tracking number, tens of thousands of them.
@dataclass(frozen=True, slots=True)
class RouteEntry:
    """What routing needs to know of one tracking number, from the database or the cache."""

    phone_number: str
    assignment_id: int | None
    client_id: int | None
    is_active: bool
    target: str | None
    # The target is itself one of our tracking numbers: the call would come back in, and every leg is billed.
    target_is_tracking: bool = False
    # What the person who picks up a forward hears it called (SPEC §3a.4 whisper).
    friendly_name: str | None = None


@dataclass(frozen=True)
class RoutingDecision:
    """`action` is forward or message; `routed_by` and `reason` are kept on the call record."""

    action: str
    target: str | None
    routed_by: str
    reason: str | None = None
    # The routing rule that decided it (SPEC §3a): open, after-hours, blocked, default, message.
    rule: str | None = None
    # Only a person who presses 1 takes the call (SPEC §3a.4).
    requires_accept: bool = False
    # Targets of the client's rules that are tracking numbers, skipped whenever their rule applies.
    loops: tuple[str, ...] = ()

    @property
    def forwards(self):
        return self.action == "forward"


def plain_fields(value: RouteEntry | RoutingDecision) -> dict:
    """Its fields, for JSON: they are plain values, so the deep copy of dataclasses.asdict would cost for nothing."""
    return {field.name: getattr(value, field.name) for field in fields(value)}


def unroutable_reason(entry):
    """Why a number cannot forward to its own client, or None when it can."""
    if entry is None:
        return "unknown number"
    if not entry.is_active:
        return "number is inactive"
    if entry.client_id is None and not entry.target:
        return "number is not assigned to a client"
    if not entry.target:
        return "number has no forward target"
    if entry.target_is_tracking:
        return "its forward target is a tracking number, so the call would loop back"
    return None


def route_call(entry, default_forward_number=None, *, default_is_tracking=False):
    """Decide the target for a call to the tracking number described by `entry`.

    `default_is_tracking`: DEFAULT_FORWARD_NUMBER is itself a tracking number, so it is no way out either.
    """
    reason = unroutable_reason(entry)
    if reason is None:
        return RoutingDecision("forward", entry.target, "assignment")
    if default_forward_number and not default_is_tracking:
        return RoutingDecision("forward", default_forward_number, "default_number", reason)
    if default_forward_number:
        reason = f"{reason}, and the default number is a tracking number too"
    return RoutingDecision("message", None, "message", reason)
