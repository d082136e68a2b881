"""Test calls (SPEC §7): queued from a card, run by a worker, followed through Twilio's callbacks.

The worker does the dry check and places the call; from then on the tracking number's own webhooks
move the test along (webhook reached, forwarding, the result), because that is where Twilio reports
it. A test that hears nothing more before its deadline ends "timed out", by whoever notices first:
the worker waiting on it, any worker's housekeeping, or a page or API request reading it.
"""
from __future__ import annotations

import time

import sqlalchemy as sa
from flask import current_app

from phoneapp.domain.call_plan import attempt_of_rule
from phoneapp.domain.call_test_steps import (
    FINAL_STEPS,
    call_status_in_words,
    is_later,
    step_of_inbound_call,
    step_of_test_caller,
    timed_out_detail,
)
from phoneapp.domain.phones import display_phone
from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment, TestCall, utcnow
from phoneapp.services.call_context import plan_for
from phoneapp.services.dry_check import dry_check
from phoneapp.services.twilio_account import twilio
from phoneapp.twilio.gateway import TwilioError
from phoneapp.twilio.public_urls import public_url
from phoneapp.twilio.twiml import listen_twiml

STEP_LABELS = {"queued": "Queued", "checking": "Dry check", "calling": "Calling the number",
               "webhook reached": "Webhook reached", "forwarding": "Forwarding", "answered": "Answered",
               "voicemail": "Voicemail",
               "no-answer": "No answer", "busy": "Busy", "failed": "Failed", "timed out": "Timed out",
               "checked": "Checked"}
CALLER_EVENTS = ("initiated", "ringing", "answered", "completed")
POLL_SECONDS = 0.5


def _shown(e164):
    return display_phone(e164, current_app.config["PHONE_REGION"]) if e164 else ""


def step_entry(step, ok, detail, label=None):
    return {"step": step, "label": label or STEP_LABELS.get(step, step), "ok": ok, "detail": detail,
            "at": utcnow().isoformat(timespec="seconds") + "Z"}


def advance(test, step, ok, detail, *, label=None) -> bool:
    """Record that `test` reached `step`; a step it has passed, or any step after the end, changes nothing."""
    if test.finished_at is not None:
        return False
    if step == test.step and step not in FINAL_STEPS and label is None:
        # More news of the same step (the test phone ringing, then connected) rewrites its line.
        steps = list(test.steps or [])
        if not steps or steps[-1].get("detail") == detail:
            return False
        steps[-1] = {**steps[-1], "detail": detail}
        test.steps, test.detail = steps, detail[:500]
        return True
    if not is_later(step, test.step):
        return False
    # A new list, so the JSON column sees the change.
    test.steps = [*(test.steps or []), step_entry(step, ok, detail, label)]
    test.step, test.detail = step, detail[:500]
    if step in FINAL_STEPS:
        test.result = "passed" if ok else "failed"
        test.finished_at = utcnow()
    return True


def running_test_ids(number_ids=None) -> set[int]:
    """Numbers with a test under way (their card says "testing…"; the dot stays what it was)."""
    query = sa.select(TestCall.phone_assignment_id).where(TestCall.finished_at.is_(None),
                                                          TestCall.deadline_at > utcnow())
    if number_ids is not None:
        query = query.where(TestCall.phone_assignment_id.in_(list(number_ids)))
    return set(db.session.scalars(query).all())


def running_tests_by_number(number_ids) -> dict[int, TestCall]:
    """{number id: its newest test under way}, one query: a card shows it, however the page was reached."""
    if not number_ids:
        return {}
    tests = db.session.scalars(
        sa.select(TestCall).where(TestCall.phone_assignment_id.in_(list(number_ids)), TestCall.finished_at.is_(None),
                                  TestCall.deadline_at > utcnow())
        .order_by(TestCall.id.desc())
    ).all()
    running = {}
    for test in tests:
        running.setdefault(test.phone_assignment_id, test)
    return running


def latest_tests(number_id, limit=5) -> list[TestCall]:
    return db.session.scalars(sa.select(TestCall).where(TestCall.phone_assignment_id == number_id)
                              .order_by(TestCall.id.desc()).limit(limit)).all()


def run_test_call(test_call_id) -> str:
    """The worker's half: dry check, then the live call, then wait for its result or the deadline."""
    test = db.session.get(TestCall, test_call_id)
    if test is None or test.finished_at is not None or expire_if_overdue(test):
        return "nothing to do"
    number = db.session.get(PhoneAssignment, test.phone_assignment_id)
    advance(test, "checking", None, "Checking Twilio's configuration and phoneapp's answer")
    db.session.commit()
    checks = dry_check(number)
    test = db.session.get(TestCall, test_call_id)
    test.steps = [*test.steps, *(step_entry("checking", step.passed, step.detail, label=step.name) for step in checks)]
    failed = [step for step in checks if not step.passed]
    if failed:
        advance(test, "failed", False, f"Dry check failed: {failed[0].detail}")
    elif not test.live:
        advance(test, "checked", True, "Dry check passed; no live call was asked for")
    elif not current_app.config["TEST_CALLER_ID"]:
        advance(test, "checked", True, "Dry check passed; set TEST_CALLER_ID to a number of the Twilio account "
                                       "to place live test calls")
    db.session.commit()
    if test.finished_at is not None:
        return test.step
    return _place_and_follow(test, number, twilio())


def _place_and_follow(test, number, gateway) -> str:
    config = current_app.config
    caller = config["TEST_CALLER_ID"]
    test_id = test.id
    advance(test, "calling", None, f"Calling {_shown(number.phone_number)} from {_shown(caller)}")
    db.session.commit()
    try:
        call_sid = gateway.create_call(
            to=number.phone_number, from_=caller, twiml=listen_twiml(config["DIAL_TIMEOUT"] + 30),
            status_callback=public_url("webhooks.test_call_status", test_call=test_id),
            status_callback_events=list(CALLER_EVENTS), timeout=30)
    except TwilioError as exc:
        test = db.session.get(TestCall, test_id)
        advance(test, "failed", False, f"Twilio did not place the test call: {exc.message}")
        db.session.commit()
        return test.step
    db.session.execute(sa.update(TestCall).where(TestCall.id == test_id, TestCall.call_sid.is_(None))
                       .values(call_sid=call_sid))
    db.session.commit()
    test = _wait_for_result(test_id)
    try:
        # The result is in (or will never come): the test phone need not listen on at the account's cost.
        gateway.end_call(call_sid)
    except TwilioError:
        pass
    return test.step


def _wait_for_result(test_id) -> TestCall:
    while True:
        db.session.expire_all()
        test = db.session.get(TestCall, test_id)
        if test.finished_at is not None or expire_if_overdue(test):
            return test
        db.session.rollback()  # end the read transaction, so the next look sees the webhooks' commits
        time.sleep(POLL_SECONDS)


def expire_if_overdue(test) -> bool:
    """End `test` as timed out if its deadline passed; True if it did (committed)."""
    if test.finished_at is not None or test.deadline_at > utcnow():
        return False
    advance(test, "timed out", False, timed_out_detail(test.step, current_app.config["TEST_CALL_TIMEOUT"]))
    db.session.commit()
    return True


def expire_overdue_test_calls() -> int:
    """Time out every test past its deadline: none stays pending, whatever happened to its worker."""
    overdue = db.session.scalars(sa.select(TestCall).where(TestCall.finished_at.is_(None),
                                                           TestCall.deadline_at <= utcnow())).all()
    return sum(expire_if_overdue(test) for test in overdue)


# -- called from the webhooks ------------------------------------------------------------------


def claim_inbound_call(params, phone_assignment_id) -> TestCall | None:
    """The live test this inbound call is, if it comes from the test phone to a number under test."""
    caller = current_app.config["TEST_CALLER_ID"]
    if not caller or params.get("From") != caller or phone_assignment_id is None:
        return None
    test = db.session.scalars(
        sa.select(TestCall).where(TestCall.phone_assignment_id == phone_assignment_id, TestCall.live.is_(True),
                                  TestCall.step == "calling", TestCall.finished_at.is_(None),
                                  TestCall.inbound_call_sid.is_(None))
        .order_by(TestCall.id.desc()).with_for_update()
    ).first()
    if test is not None:
        test.inbound_call_sid = params.get("CallSid")
    return test


def follow_inbound_call(record) -> None:
    """Move the test along with its inbound call; the caller commits."""
    test = db.session.scalars(sa.select(TestCall).where(TestCall.inbound_call_sid == record.twilio_call_sid)
                              ).first()
    if test is None or test.finished_at is not None:
        return
    # The plan as the rules stand now says whom each ring of a plan in turn rang, and whether one is left.
    plan = plan_for(record.to_number, record.from_number)[0] if record.routed_by == "assignment" else None
    reached = step_of_inbound_call(status=record.status, routed_by=record.routed_by,
                                   forwarded_to=_shown(_last_rung(record, plan)) or None,
                                   dial_leg_status=record.dial_leg_status, dial_status=record.dial_status,
                                   rule=record.route_rule, answered_by=_shown(record.answered_by) or None,
                                   rings_left=_rings_left(record, plan), requires_accept=record.requires_accept)
    advance(test, reached.step, reached.ok, reached.detail)


def _last_rung(record, plan):
    """The number the latest ring rang: the plan's target of that ring, else the first target recorded."""
    targets = plan.targets if plan is not None and plan.action == "dial" else ()
    attempt = attempt_of_rule(record.route_rule)
    return targets[attempt] if attempt < len(targets) else record.forwarded_to


def _rings_left(record, plan):
    if not record.dial_status or plan is None or plan.action != "dial" or plan.ring_mode != "sequential":
        return False
    return attempt_of_rule(record.route_rule) < len(plan.targets) - 1


def record_test_caller_status(test_call_id, params) -> None:
    """A status callback of the test phone's own call."""
    test = db.session.get(TestCall, test_call_id)
    if test is None or test.finished_at is not None:
        return
    call_sid = params.get("CallSid")
    if test.call_sid is None:
        test.call_sid = call_sid
    elif call_sid != test.call_sid:
        return
    reached = step_of_test_caller(params.get("CallStatus"), params.get("ErrorCode"))
    if reached is None:
        pass
    elif reached.final:
        # Once phoneapp has the call, its own callbacks tell the result better than the caller's side.
        if test.step in ("queued", "checking", "calling"):
            advance(test, reached.step, reached.ok, reached.detail)
    elif test.step == "calling":
        advance(test, "calling", None, f"Calling {_shown(params.get('To'))} from {_shown(params.get('From'))}: "
                                       f"{call_status_in_words(params.get('CallStatus'))}")
    # Written from the webhook log, the batch it belongs to commits it with the rest.
    if "call_batch" not in db.session.info:
        db.session.commit()
