"""Where a live test call stands (SPEC §7), read from what Twilio reported of it. No Flask here.

The steps run queued → checking → calling → webhook reached → forwarding → one of FINAL_STEPS;
"checked" ends a test that stopped after its dry check on purpose.
"""
from __future__ import annotations

from dataclasses import dataclass

from phoneapp.domain.call_status import TERMINAL_STATUSES

PROGRESS_STEPS = ("queued", "checking", "calling", "webhook reached", "forwarding")
FINAL_STEPS = ("answered", "voicemail", "no-answer", "busy", "failed", "timed out", "checked")
STEP_ORDER = {step: rank for rank, step in enumerate(PROGRESS_STEPS)}
# Twilio's call status words as a test's steps say them.
CALL_STATUS_WORDS = {"queued": "queued", "initiated": "dialling", "ringing": "ringing", "in-progress": "in progress",
                     "completed": "completed", "busy": "busy", "no-answer": "no answer", "failed": "failed",
                     "canceled": "cancelled"}


def call_status_in_words(status) -> str:
    """A Twilio call status ("in-progress") as words ("in progress")."""
    return CALL_STATUS_WORDS.get(status) or (status or "unknown").replace("-", " ")


@dataclass(frozen=True)
class StepReached:
    step: str
    final: bool
    ok: bool | None
    detail: str


def step_of_inbound_call(*, status, routed_by, forwarded_to, dial_leg_status, dial_status, rule=None,
                         answered_by=None, rings_left=False, requires_accept=False) -> StepReached:
    """The step the tracking number's side of the test call has reached, and which of the client's rules decided.

    `forwarded_to`: the target rung (the last one, for a plan that rang several); `answered_by`: who took the call;
    `rings_left`: the plan still has a target to ring in turn after this one; `requires_accept`: only the person
    who presses 1 takes the call (then `answered_by` is who pressed it).
    """
    by_rule = f" (rule: {rule})" if rule else ""
    if rule == "after-hours" and routed_by == "assignment" and forwarded_to is None:
        return StepReached("voicemail", True, True,
                           f"After hours: phoneapp sent the call straight to voicemail with the greeting{by_rule}")
    if dial_status in ("busy", "no-answer", "failed") and rings_left:
        ended = _dial_ended(dial_status, forwarded_to).detail
        return StepReached("forwarding", False, None, f"{ended}; ringing the next number{by_rule}")
    pressed = " pressed 1 and" if requires_accept else ""
    if dial_status in ("completed", "answered", "in-progress") or (requires_accept and answered_by):
        who = answered_by or forwarded_to or "The target"
        return StepReached("answered", True, True, f"{who}{pressed} answered the forwarded call{by_rule}")
    if dial_status:
        ended = _dial_ended(dial_status, forwarded_to)
        return StepReached(ended.step, True, False, f"{ended.detail}{by_rule}")
    if dial_leg_status in ("in-progress", "completed") and requires_accept and answered_by is None:
        return StepReached("forwarding", False, None, f"{forwarded_to or 'The target'} picked up; waiting for 1")
    if dial_leg_status in ("in-progress", "completed"):
        return StepReached("answered", True, True,
                           f"{answered_by or forwarded_to or 'The target'} answered the forwarded call{by_rule}")
    if dial_leg_status in TERMINAL_STATUSES:
        return _dial_ended(dial_leg_status, forwarded_to)
    if dial_leg_status in ("queued", "initiated", "ringing"):
        return StepReached("forwarding", False, None, f"Ringing {forwarded_to}" if forwarded_to else "Forwarding")
    if routed_by == "message":
        return StepReached("failed", True, False, "phoneapp had nowhere to forward the call and played its message")
    if status in TERMINAL_STATUSES:
        return StepReached("failed", True, False, f"The call ended ({status}) before it was forwarded")
    target = f" and forwards it to {forwarded_to}" if forwarded_to else ""
    return StepReached("webhook reached", False, True, f"Twilio reached phoneapp{target}")


def _dial_ended(dial_status, forwarded_to):
    who = forwarded_to or "the target"
    if dial_status in ("completed", "answered", "in-progress"):
        return StepReached("answered", True, True, f"{who} answered the forwarded call")
    if dial_status == "busy":
        return StepReached("busy", True, False, f"{who} was busy")
    if dial_status == "no-answer":
        return StepReached("no-answer", True, False, f"{who} did not answer")
    return StepReached("failed", True, False, f"Twilio could not connect the forwarded call to {who} ({dial_status})")


def step_of_test_caller(call_status, error_code=None) -> StepReached | None:
    """What the test caller's own call status says, when it says anything the inbound side will not."""
    if call_status in ("queued", "initiated", "ringing", "in-progress"):
        return StepReached("calling", False, None, f"Test call {call_status_in_words(call_status)}")
    if call_status in ("busy", "no-answer", "failed", "canceled"):
        code = f" (Twilio error {error_code})" if error_code else ""
        return StepReached("failed", True, False,
                           f"The test call to the number ended: {call_status_in_words(call_status)}{code}")
    return None


def timed_out_detail(step, limit_seconds) -> str:
    """Why a test that heard nothing more within its time limit stopped where it did."""
    waited = f"within {limit_seconds} s"
    if step == "queued":
        return f"No worker picked the test up {waited}; is `python worker.py` running?"
    if step == "checking":
        return f"The dry check did not finish {waited}"
    if step == "calling":
        return f"Twilio did not reach phoneapp's webhook {waited}"
    return f"The forwarded call reported no result {waited}"


def is_later(step, than) -> bool:
    """True when `step` is further along than `than`; a late callback never moves a test back."""
    if than in FINAL_STEPS:
        return False
    if step in FINAL_STEPS:
        return True
    return STEP_ORDER.get(step, -1) > STEP_ORDER.get(than, -1)
