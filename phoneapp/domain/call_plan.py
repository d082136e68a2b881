"""The plan for one inbound call (SPEC §3a): block list, business hours, targets and failover, whisper and accept.

One plain function decides it from the number, its client's rules, the caller and the time; everything it needs
is passed in (loaded once and held in memory by the caller), so no query hides inside the decision.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from phoneapp.domain.block_list import blocking_entry
from phoneapp.domain.business_hours import Schedule, is_open, parse_closed_dates, parse_hours, parse_zone
from phoneapp.domain.routing import RoutingDecision, route_call

# The client fields the plan reads.
RULE_FIELDS = ("timezone", "business_hours", "closed_dates", "after_hours", "after_hours_number",
               "failover_numbers", "ring_mode", "ring_seconds", "whisper", "require_accept", "greeting")
RING_MODES = ("sequential", "simultaneous")
AFTER_HOURS_ACTIONS = ("voicemail", "forward")
MAX_FAILOVER_NUMBERS = 5


@dataclass(frozen=True)
class ClientRules:
    """A client's routing rules as §2 names them; the defaults are a client with none set."""

    schedule: Schedule | None = None
    after_hours: str = "voicemail"
    after_hours_number: str | None = None
    failover_numbers: tuple[str, ...] = ()
    ring_mode: str = "sequential"
    ring_seconds: int | None = None
    whisper: bool = False
    require_accept: bool = False
    greeting: str | None = None


def client_rules(fields, default_zone) -> ClientRules:
    """A client's rule fields as the database keeps them (RULE_FIELDS; validated when saved) as ClientRules."""
    zone = parse_zone(fields.get("timezone") or default_zone)[0] or parse_zone(default_zone)[0]
    hours = parse_hours(fields.get("business_hours"))[0]
    closed = parse_closed_dates(fields.get("closed_dates"))[0]
    return ClientRules(
        schedule=Schedule(zone, hours, closed) if any(hours.values()) or closed else None,
        after_hours=fields.get("after_hours") or "voicemail",
        after_hours_number=fields.get("after_hours_number") or None,
        failover_numbers=tuple(fields.get("failover_numbers") or ()),
        ring_mode=fields.get("ring_mode") or "sequential",
        ring_seconds=fields.get("ring_seconds") or None,
        whisper=bool(fields.get("whisper")),
        require_accept=bool(fields.get("require_accept")),
        greeting=fields.get("greeting") or None,
    )


@dataclass(frozen=True)
class CallPlan:
    """What to do with the call: `action` reject, dial, voicemail or message; `rule` is kept on its record."""

    action: str
    rule: str
    targets: tuple[str, ...] = ()
    ring_mode: str = "sequential"
    ring_seconds: int = 20
    whisper: bool = False
    require_accept: bool = False
    greeting: str | None = None
    # Why the call does not reach its client as usual (unrouted, blocked, after hours); None when it does.
    reason: str | None = None
    # Targets left out because they are tracking numbers: the call would loop back in.
    skipped: tuple[str, ...] = field(default=())
    # Every target of the client's rules that is a tracking number, whichever rule this call took (an alert).
    loops: tuple[str, ...] = field(default=())


def plan_call(entry, rules, blocked, caller, now: datetime, *, default_number=None, default_is_tracking=False,
              dial_timeout=20, tracking_numbers=frozenset()) -> CallPlan:
    """Decide the plan for a call from `caller` at `now` to the number `entry` (a routing.RouteEntry or None).

    `rules`: its client's ClientRules, or None; `blocked`: the BlockEntry list; `tracking_numbers`: every number
    phoneapp answers, which no target may be.
    """
    client_id = entry.client_id if entry is not None else None
    blocker = blocking_entry(caller, client_id, blocked)
    if blocker is not None:
        whose = "for every client" if blocker.client_id is None else "for this client"
        return CallPlan("reject", "blocked", reason=f"the caller is on the block list {whose} ({blocker.number})")
    decision = route_call(entry, default_number, default_is_tracking=default_is_tracking)
    if not decision.forwards:
        return CallPlan("message", "message", reason=decision.reason)
    if decision.routed_by == "default_number":
        return CallPlan("dial", "default", (decision.target,), ring_seconds=dial_timeout, reason=decision.reason)
    rules = rules or ClientRules()
    loops = tuple(number for number in (rules.after_hours_number, *rules.failover_numbers[:MAX_FAILOVER_NUMBERS])
                  if number and number in tracking_numbers)
    return replace(_client_plan(decision, rules, now, dial_timeout, tracking_numbers), loops=loops)


def _client_plan(decision, rules, now, dial_timeout, tracking_numbers) -> CallPlan:
    """The plan of a call its client takes: business hours, then the targets in the ring mode."""
    ring_seconds = rules.ring_seconds or dial_timeout
    if rules.schedule is not None and not is_open(rules.schedule, now):
        if rules.after_hours == "forward" and rules.after_hours_number:
            if rules.after_hours_number in tracking_numbers:
                return CallPlan("voicemail", "after-hours", greeting=rules.greeting, reason="after hours",
                                skipped=(rules.after_hours_number,))
            return CallPlan("dial", "after-hours", (rules.after_hours_number,), ring_seconds=ring_seconds,
                            whisper=rules.whisper, require_accept=rules.require_accept, greeting=rules.greeting,
                            reason="after hours")
        return CallPlan("voicemail", "after-hours", greeting=rules.greeting, reason="after hours")
    targets, skipped = [], []
    for number in (decision.target, *rules.failover_numbers[:MAX_FAILOVER_NUMBERS]):
        if number in tracking_numbers:
            skipped.append(number)
        elif number and number not in targets:
            targets.append(number)
    if not targets:
        return CallPlan("voicemail", "open", greeting=rules.greeting, skipped=tuple(skipped),
                        reason="every target is a tracking number, so the call would loop back")
    return CallPlan("dial", "open", tuple(targets), ring_mode=rules.ring_mode, ring_seconds=ring_seconds,
                    whisper=rules.whisper, require_accept=rules.require_accept, greeting=rules.greeting,
                    skipped=tuple(skipped))


def targets_to_ring(plan: CallPlan, attempt: int) -> tuple[str, ...]:
    """The numbers to ring on `attempt` (0 first): all at once when simultaneous, else the next one in turn."""
    if plan.action != "dial":
        return ()
    if plan.ring_mode == "simultaneous":
        return plan.targets if attempt == 0 else ()
    return plan.targets[attempt:attempt + 1]


def attempt_of_rule(rule) -> int:
    """Which ring of a plan in turn a call's rule names: "failover N" is ring N - 1; any other rule ring 0."""
    words = (rule or "").split()
    return int(words[1]) - 1 if len(words) == 2 and words[0] == "failover" and words[1].isdigit() else 0


_ROUTED_BY = {"blocked": "blocked", "message": "message", "default": "default_number"}


def decision_of(plan: CallPlan) -> RoutingDecision:
    """The plan as the call's record keeps it: how it was routed, to whom first, and why it reached nobody of the
    client's when it did not (only then does the number get an unrouted-call alert)."""
    return RoutingDecision(
        action="forward" if plan.action == "dial" else plan.action,
        target=plan.targets[0] if plan.targets else None,
        routed_by=_ROUTED_BY.get(plan.rule, "assignment"),
        reason=plan.reason if plan.rule in ("message", "default") else None,
        rule=plan.rule,
        requires_accept=plan.action == "dial" and plan.require_accept,
        loops=plan.loops,
    )
