"""Call records written from Twilio's webhooks: idempotent by CallSid, never moving backwards.

Twilio's requests about one call arrive late, twice, in any order, and some never: each writer adds what its
request knows and keeps what is known already, so a call ends as the same record whichever of them came, in
whichever order (each time is the earliest of its estimates; a field set by the inbound call's own requests
wins over one guessed from the forwarded leg's).
"""
from __future__ import annotations

import logging

import sqlalchemy as sa

from phoneapp.domain.call_plan import attempt_of_rule
from phoneapp.domain.call_status import (
    ANSWERED_DIAL_STATUSES,
    TERMINAL_STATUSES,
    advance_status,
    caller_left_first,
    dial_result_status,
    forward_verdict,
    offers_voicemail,
)
from phoneapp.domain.call_times import (
    ENDED_BY_STATUS_CALLBACK,
    ENDED_BY_TIMEOUT,
    earliest,
    end_from_call_flow,
    place_start,
    seconds_before,
    settle_times,
    twilio_timestamp,
)
from phoneapp.domain.recordings import is_twilio_recording_url, keep_voicemail
from phoneapp.extensions import db
from phoneapp.models import CallRecord, PhoneAssignment, utcnow
from phoneapp.services import call_tests
from phoneapp.services.call_batch import (
    call_record_for,
    commit_unless_batched,
    judge_first_call,
    note_called,
    note_forward,
)
from phoneapp.services.call_params import (
    NUMBER_LENGTH,
    call_label,
    caller_fields,
    fitted_count,
    fitted_sid,
    fitted_text,
    usable_call_sid,
)
from phoneapp.services.monitor_alerts import raise_fallback_alert

log = logging.getLogger(__name__)

# -- what every request of the inbound call tells -------------------------------------------------------

def _inbound_call_record(params, call_sid, at, **defaults):
    """The record of the inbound call a request of its own is about, with what every such request knows."""
    fields = caller_fields(params, call_sid)
    record = call_record_for(call_sid, started_at=at, **{"status": "ringing", **fields, **defaults})
    # The inbound call's own requests name its caller and its number; a leg's callback may have guessed first.
    for column, value in fields.items():
        if value and getattr(record, column) != value:
            setattr(record, column, value)
    _estimate_start(record, at)
    return record


def _estimate_start(record, *moments):
    """Until the voice webhook is heard of, the call began no later than anything else heard of it.

    The voice webhook is asked for as the call begins, so its arrival, once known, is the start itself.
    """
    if record.routed_by is None:
        place_start(record, *moments)


def _tie_to_number(record):
    """A call whose route is not known belongs to the number it called, and to that number's client.

    Returns whether it was tied just now.
    """
    if record.phone_assignment_id is not None or not record.to_number:
        return False
    row = db.session.execute(
        sa.select(PhoneAssignment.id, PhoneAssignment.client_id, PhoneAssignment.is_active)
        .where(PhoneAssignment.phone_number == record.to_number).limit(1)).first()
    if row is None:
        return False
    record.phone_assignment_id = row.id
    record.client_id = row.client_id if row.is_active else None
    return True


def _tie_callback_to_number(record, at):
    """A call heard of only through its callbacks (its voice webhook lost) is still a call to its number."""
    if record.routed_by is None and _tie_to_number(record) and not record.is_test:
        note_called(record.phone_assignment_id, at, reached=False)
        judge_first_call(record)


def _note_forward(record):
    """Feed the number's failed-forward streak with what this call says of its target, if anything."""
    verdict = forward_verdict(record.dial_status, record.dial_leg_status, record.caller_hung_up,
                              _person_unconfirmed(record), accepted=record.requires_accept and bool(record.accepted_by))
    if record.phone_assignment_id is not None and not record.is_test and verdict is not None:
        note_forward(record.phone_assignment_id, verdict)


def _person_unconfirmed(record):
    return record.requires_accept and record.accepted_by is None


def _finish(record):
    if record.requires_accept:
        # Whoever picked up took the call only by pressing 1: the answer is the acceptance, whichever came first.
        record.answered_by, record.answered_at = record.accepted_by, record.accepted_at
    settle_times(record, start_observed=record.routed_by is not None)
    if record.requires_accept and record.accepted_at != record.answered_at:
        record.accepted_at = record.answered_at  # within the call's times, as settled
    if record.is_test:
        call_tests.follow_inbound_call(record)
    commit_unless_batched()


# -- the writers, one per kind of request ---------------------------------------------------------------

def record_inbound_call(params, decision, entry, *, is_test=False, at=None):
    """Store the call that the voice (or fallback) webhook is answering, with the routing decided for it.

    `at` is when the webhook arrived, which is later than now for one held during a database outage.
    """
    call_sid = usable_call_sid(params)
    if call_sid is None:
        return None
    at = at or utcnow()
    phone_assignment_id = entry.assignment_id if entry is not None else None
    # A blocked caller called the client's number too: the call is in its history, counted nowhere.
    client_id = entry.client_id if entry is not None and decision.routed_by in ("assignment", "blocked") else None
    status = params.get("CallStatus") if params.get("CallStatus") in ("queued", "ringing", "in-progress") else "ringing"
    is_test = is_test or call_tests.claim_inbound_call(params, phone_assignment_id) is not None
    record = _inbound_call_record(params, call_sid, at, status=status, phone_assignment_id=phone_assignment_id,
                                  client_id=client_id, is_test=is_test)
    # A retried voice webhook must not rewrite a call that has moved on; it fills only what is missing.
    if record.routed_by is None:
        record.started_at = at  # when the call began: the estimates of the callbacks heard before it give way
        record.routed_by = decision.routed_by
        # A later ring's result may have come first and named its failover.
        record.route_rule = record.route_rule or decision.rule
        record.requires_accept = decision.requires_accept
        record.forwarded_to = decision.target
        record.phone_assignment_id = phone_assignment_id
        record.client_id = client_id
        # Routed without knowing the number (the fallback's cache did not have it): it is still its call.
        _tie_to_number(record)
        if record.first_time_caller is None:
            judge_first_call(record)
    else:
        place_start(record, at)  # the same webhook again (Twilio retried it): the first one began the call
    # Twilio tells the fallback URL why the voice URL failed: that is an error of the number's configuration.
    fallback_error = params.get("ErrorCode") or params.get("ErrorUrl")
    if fallback_error and record.error_code is None and record.error_url is None:
        record.error_code = fitted_text(params, "ErrorCode", 10, call_sid) or None
        record.error_url = fitted_text(params, "ErrorUrl", 500, call_sid) or None
        if record.phone_assignment_id is not None and not record.is_test:
            raise_fallback_alert(record.phone_assignment_id, record.error_code, record.error_url)
    if record.phone_assignment_id is not None and not record.is_test:
        note_called(record.phone_assignment_id, at, reached=not fallback_error)
    _finish(record)
    return record


def record_call_status(params, *, at=None):
    """The inbound call's own status callback; its final one has Twilio's exact end and duration."""
    call_sid = usable_call_sid(params)
    if call_sid is None:
        return None
    at = at or utcnow()
    when = twilio_timestamp(params.get("Timestamp"), at) or at
    record = _inbound_call_record(params, call_sid, when)
    _tie_callback_to_number(record, when)
    reported = params.get("CallStatus")
    record.status = advance_status(record.status, reported)
    if reported in TERMINAL_STATUSES and record.status in TERMINAL_STATUSES:
        duration = fitted_count(params, "CallDuration", call_sid)
        if record.ended_by != ENDED_BY_STATUS_CALLBACK or record.duration is None:
            record.ended_at, record.ended_by = when, ENDED_BY_STATUS_CALLBACK
            record.duration = duration
        _estimate_start(record, seconds_before(when, duration))
    _finish(record)
    return record


def record_dial_result(params, *, at=None, attempt=0, target=None):
    """The <Dial action>: how the forwarded leg ended. Returns the record (None for a call that cannot be keyed).

    `attempt` and `target`: which ring of a plan that rings its targets in turn this is (0 first), and whom it
    rang; a later ring's result replaces an earlier one's, whichever arrives first.
    """
    call_sid = usable_call_sid(params)
    if call_sid is None:
        return None
    at = at or utcnow()
    record = _inbound_call_record(params, call_sid, at, status="in-progress")
    _tie_callback_to_number(record, at)
    record.status = advance_status(record.status, "in-progress")
    dial_status = dial_result_status(fitted_text(params, "DialCallStatus", 20, call_sid), params.get("DialBridged"))
    call_status = params.get("CallStatus")
    dial_duration = fitted_count(params, "DialCallDuration", call_sid)
    later = bool(dial_status) and attempt > attempt_of_rule(record.route_rule)
    if later:
        record.route_rule = f"failover {attempt + 1}"
        record.dial_status, record.dial_leg_status = dial_status, _leg_status(dial_status)
        record.dial_call_sid = fitted_sid(params, "DialCallSid", call_sid)
        record.dial_duration = dial_duration
    elif dial_status and record.dial_status is None and attempt == attempt_of_rule(record.route_rule):
        record.dial_status = dial_status
        record.dial_leg_status = advance_status(record.dial_leg_status, _leg_status(dial_status))
    if dial_status and caller_left_first(dial_status, call_status) and not record.caller_hung_up:
        record.caller_hung_up = True
    if record.dial_call_sid is None:
        _fill(record, "dial_call_sid", fitted_sid(params, "DialCallSid", call_sid))
    if record.dial_duration is None:
        _fill(record, "dial_duration", dial_duration)
    if record.dial_status in ANSWERED_DIAL_STATUSES and dial_status == record.dial_status and \
            (target or record.forwarded_to) and (later or record.answered_by is None):
        record.answered_by = target or record.forwarded_to
    if record.dial_status in ANSWERED_DIAL_STATUSES and dial_status == record.dial_status and \
            (target or record.forwarded_to) and (later or record.accepted_by is None):
        # Connected to the caller: with acceptance required, only a leg whose person pressed 1 is.
        record.accepted_by = target or record.forwarded_to
    if dial_status in ANSWERED_DIAL_STATUSES and dial_duration:
        # The action comes as the forwarded leg ends, which it timed from its answer.
        answered = earliest(record.answered_at, seconds_before(at, dial_duration))
        if answered != record.answered_at:
            record.answered_at = answered
        accepted = earliest(record.accepted_at, seconds_before(at, dial_duration))
        if accepted != record.accepted_at:
            record.accepted_at = accepted
    if not offers_voicemail(dial_status, call_status):
        end_from_call_flow(record, at)
    _note_forward(record)
    _finish(record)
    return record


def _leg_status(dial_status):
    # DialCallStatus "answered" is the conference flavour of "completed".
    return "completed" if dial_status == "answered" else dial_status


def _fill(record, column, value):
    """Set an empty column to what fitted of Twilio's value, if anything did."""
    if value is not None:
        setattr(record, column, value)


def record_dial_event(params, *, at=None):
    """A status callback of the forwarded (child) leg, tied back to its parent call."""
    at = at or utcnow()
    named = call_label(params.get("ParentCallSid"), params.get("CallSid"))
    # A parent SID that cannot be a key is no parent SID: the leg is then found by its own SID, as without one.
    parent_sid = fitted_sid(params, "ParentCallSid", named)
    child_sid = fitted_sid(params, "CallSid", named)
    when = twilio_timestamp(params.get("Timestamp"), at) or at
    target = fitted_text(params, "To", NUMBER_LENGTH, named) or None
    if parent_sid:
        # The parent is built from what its leg knows until its own requests come: the leg's caller ID is the
        # caller (or the tracking number, for a withheld caller), its To the target rung.
        record = call_record_for(parent_sid, status="in-progress", started_at=when,
                                 from_number=fitted_text(params, "From", NUMBER_LENGTH, named) or "",
                                 forwarded_to=target)
    elif child_sid is None:
        # Neither SID: nothing to tie it to (asking for the record whose dial_call_sid IS NULL would pick any).
        log.warning("call ?: a dial event without a usable CallSid or ParentCallSid; not recorded")
        return None
    else:
        record = db.session.scalars(
            sa.select(CallRecord).where(CallRecord.dial_call_sid == child_sid).with_for_update()
        ).first()
        if record is None:
            return None
    _estimate_start(record, when)
    record.status = advance_status(record.status, "in-progress")
    if record.dial_call_sid is None:
        record.dial_call_sid = child_sid
    if record.forwarded_to is None and target:
        record.forwarded_to = target
    reported = params.get("CallStatus")
    record.dial_leg_status = advance_status(record.dial_leg_status, reported)
    leg_duration = fitted_count(params, "CallDuration", record.twilio_call_sid)
    answered = None
    if reported == "in-progress":
        answered = when
    elif reported == "completed" and leg_duration:
        answered = seconds_before(when, leg_duration)
    if answered is not None and earliest(record.answered_at, answered) != record.answered_at:
        record.answered_at = answered
    if answered is not None and target and record.answered_by != target:
        # The leg that was picked up names who took the call, over the target the call was first sent to.
        record.answered_by = target
    if reported in TERMINAL_STATUSES and record.dial_duration is None:
        _fill(record, "dial_duration", leg_duration)
    _note_forward(record)
    _finish(record)
    return record


def record_acceptance(params, *, at=None, target=None, attempt=0):
    """The person who picked up a forward pressed 1 (SPEC §3a.4): they took the call, on ring `attempt` of a plan
    that rings its targets in turn (0 first), which names the rule that answered."""
    at = at or utcnow()
    named = call_label(params.get("ParentCallSid"), params.get("CallSid"))
    parent_sid = fitted_sid(params, "ParentCallSid", named)
    if parent_sid is None:
        log.warning("call %s: an acceptance without a usable ParentCallSid; not recorded", named)
        return None
    target = target or fitted_text(params, "To", NUMBER_LENGTH, named) or None
    record = call_record_for(parent_sid, status="in-progress", started_at=at,
                             from_number=fitted_text(params, "From", NUMBER_LENGTH, named) or "",
                             forwarded_to=target)
    _estimate_start(record, at)
    record.status = advance_status(record.status, "in-progress")
    # Only one person can take a call; Twilio's retry of the same key press names the same one.
    if record.accepted_by is None:
        record.accepted_by = target
    if attempt > attempt_of_rule(record.route_rule):
        # A later ring than any result heard of: what the earlier rings ended as is not this call's result.
        record.route_rule = f"failover {attempt + 1}"
        record.dial_status = record.dial_leg_status = record.dial_duration = None
        record.dial_call_sid = fitted_sid(params, "CallSid", named)
    accepted = earliest(record.accepted_at, at)
    if accepted != record.accepted_at:
        record.accepted_at = accepted
    _note_forward(record)
    _finish(record)
    return record


def record_recording(params, kind, *, at=None):
    """A recording of the forwarded call or a voicemail, linked to the parent call.

    A voicemail's <Record action> (which our answer hangs up) and its status callback both come here; an empty
    or absent recording is no voicemail, whichever of the two says so first.
    """
    call_sid = usable_call_sid(params)
    if call_sid is None:
        return None
    at = at or utcnow()
    status = params.get("RecordingStatus")
    url = params.get("RecordingUrl")
    seconds = fitted_count(params, "RecordingDuration", call_sid)
    gone = status in ("absent", "failed") or (kind == "voicemail" and seconds == 0)
    if not gone and (not url or status not in (None, "", "completed")):
        return None
    if url and not gone and not is_twilio_recording_url(url):
        # Only Twilio keeps our recordings; any other link would be shown to staff as one.
        log.warning("call %s: recording link %r is not Twilio's; not kept", call_label(params.get("CallSid")),
                    url[:100])
        return None
    record = _inbound_call_record(params, call_sid, at, status="in-progress")
    _tie_callback_to_number(record, at)
    if kind == "voicemail":
        keep_voicemail(record, None if gone else url, 0 if gone else seconds)
        if not status:
            end_from_call_flow(record, at)  # the <Record action>, which our answer hangs up
    elif gone:
        record.recording_url = None
    else:
        record.recording_url = record.recording_url or url
        record.recording_sid = record.recording_sid or fitted_sid(params, "RecordingSid", call_sid)
    _finish(record)
    return record


def end_silent_calls(older_than):
    """End the calls nothing was heard of since `older_than`: longer than any call can last, so they are over.

    Returns how many were ended. Their end is the last thing heard of them; what is known decides the outcome.
    """
    silent = db.session.scalars(
        sa.select(CallRecord).where(CallRecord.status.not_in(TERMINAL_STATUSES), CallRecord.updated_at < older_than)
        .with_for_update(skip_locked=True)).all()
    for record in silent:
        record.status = "completed"
        record.ended_by = ENDED_BY_TIMEOUT
        record.ended_at = max(moment for moment in (record.started_at, record.answered_at, record.updated_at)
                              if moment is not None)
        settle_times(record, start_observed=record.routed_by is not None)
        log.warning("call %s: nothing heard since %s; ended", record.twilio_call_sid, record.updated_at)
    db.session.commit()
    return len(silent)
