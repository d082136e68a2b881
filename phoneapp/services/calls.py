"""Call records written from Twilio's webhooks: idempotent by CallSid, never moving backwards."""
from __future__ import annotations

import logging

import sqlalchemy as sa

from phoneapp.domain.call_status import TERMINAL_STATUSES, advance_status, is_failed_forward
from phoneapp.domain.number_status import FAILING_STREAK
from phoneapp.domain.recordings import is_twilio_recording_url
from phoneapp.extensions import db
from phoneapp.models import Alert, CallRecord, PhoneAssignment, utcnow
from phoneapp.services import call_tests
from phoneapp.services.alerts import raise_alert, resolve_alerts
from phoneapp.services.db_utils import insert_for
from phoneapp.services.monitor_alerts import ALERT_KIND as WEBHOOK_ERROR_ALERT

log = logging.getLogger(__name__)


def _as_int(value):
    """A duration Twilio reported, or None when it is not a whole number of seconds (none is negative)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _caller_fields(params):
    return {
        "from_number": (params.get("From") or "")[:32],
        "to_number": (params.get("To") or "")[:32],
        "caller_city": params.get("FromCity") or None,
        "caller_state": params.get("FromState") or None,
        "caller_zip": params.get("FromZip") or None,
        "caller_country": params.get("FromCountry") or None,
    }


class CallBatch:
    """Many webhook events in one transaction: their records read at once, per-number work done once.

    Written from the webhook log, a batch holds every event a process logged since the last one; the
    functions below work the same inside one as alone, but leave the commit (and the work that only needs
    doing once per number) to `finish`.
    """

    def __init__(self, events):
        self.call_sids = sorted({sid for sid in (_call_sid_of(event) for event in events) if sid})
        self.records = {}
        self.called_numbers = {}  # number id -> when it was last called, in this batch
        self.dialled_numbers = {}  # number id -> its last forward's DialCallStatus, in this batch

    def __enter__(self):
        db.session.info["call_batch"] = self
        if self.call_sids:
            # One query instead of one per event; locked in a fixed order so two writers cannot deadlock on them.
            for record in db.session.scalars(
                    sa.select(CallRecord).where(CallRecord.twilio_call_sid.in_(self.call_sids))
                    .order_by(CallRecord.twilio_call_sid).with_for_update()
                    .execution_options(populate_existing=True)):
                self.records[record.twilio_call_sid] = record
        return self

    def __exit__(self, *exc_info):
        db.session.info.pop("call_batch", None)

    def finish(self):
        if self.called_numbers:
            _note_numbers_called(self.called_numbers)
        db.session.flush()
        if self.dialled_numbers:
            streaks = dict(db.session.execute(
                sa.select(PhoneAssignment.id, PhoneAssignment.failed_forward_streak)
                .where(PhoneAssignment.id.in_(self.dialled_numbers))).all())
            for phone_assignment_id, last_dial_status in sorted(self.dialled_numbers.items()):
                # An answered forward on a number with no failures changes neither its streak nor its alerts.
                if streaks.get(phone_assignment_id) or is_failed_forward(last_dial_status):
                    _update_failed_forwards_alert(phone_assignment_id)
        db.session.commit()


def _call_sid_of(event):
    if event["kind"] == "dial_event":
        return event["params"].get("ParentCallSid")
    if event["kind"] in ("call", "call_status", "dial_result", "recording"):
        return event["params"].get("CallSid")
    return None


def _batch():
    return db.session.info.get("call_batch")


def _commit():
    if _batch() is None:
        db.session.commit()


def call_record_for(call_sid, **defaults):
    """The record for `call_sid`, created with `defaults` if this is the first word of it, locked."""
    batch = _batch()
    if batch is not None and call_sid in batch.records:
        return batch.records[call_sid]
    statement = (insert_for(CallRecord)
                 .values(twilio_call_sid=call_sid, **defaults)
                 .on_conflict_do_nothing(index_elements=["twilio_call_sid"]))
    db.session.execute(statement)
    # The row lock serialises concurrent callbacks of one call on PostgreSQL; SQLite's write lock does it there.
    record = db.session.scalars(
        sa.select(CallRecord).where(CallRecord.twilio_call_sid == call_sid)
        .with_for_update().execution_options(populate_existing=True)
    ).one()
    if batch is not None:
        batch.records[call_sid] = record
    return record


def _note_numbers_called(called):
    """{number id: call time}: each number's last call, and the end of Twilio's reports of failing to reach it."""
    at = sa.bindparam("at", type_=PhoneAssignment.last_call_at.type)
    db.session.connection().execute(
        sa.update(PhoneAssignment.__table__).where(PhoneAssignment.__table__.c.id == sa.bindparam("number_id"))
        .values(last_call_at=sa.func.coalesce(
            sa.case((PhoneAssignment.__table__.c.last_call_at > at, PhoneAssignment.__table__.c.last_call_at)), at)),
        [{"number_id": number_id, "at": when} for number_id, when in sorted(called.items())])
    db.session.execute(
        sa.update(Alert).where(Alert.kind == WEBHOOK_ERROR_ALERT, Alert.resolved_at.is_(None),
                               Alert.subject.in_([f"number:{number_id}" for number_id in called]))
        .values(resolved_at=utcnow()).execution_options(synchronize_session=False))


def record_inbound_call(params, decision, entry, *, is_test=False, at=None):
    """Store the call that the voice webhook is answering, with the routing decided for it.

    `at` is when the webhook arrived, which is later than now for one held during a database outage.
    """
    at = at or utcnow()
    phone_assignment_id = entry.assignment_id if entry is not None else None
    client_id = entry.client_id if entry is not None and decision.routed_by == "assignment" else None
    status = params.get("CallStatus") if params.get("CallStatus") in ("queued", "ringing", "in-progress") else "ringing"
    is_test = is_test or call_tests.claim_inbound_call(params, phone_assignment_id) is not None
    record = call_record_for(
        params["CallSid"], status=status, phone_assignment_id=phone_assignment_id, client_id=client_id,
        is_test=is_test, started_at=at, **_caller_fields(params),
    )
    # A callback replayed before its voice webhook opened the record at its own, later, time.
    if record.started_at is None or record.started_at > at:
        record.started_at = at
    # A retried voice webhook must not rewrite a call that has moved on; it fills only what is missing.
    if record.routed_by is None:
        record.routed_by = decision.routed_by
        record.forwarded_to = decision.target
        record.phone_assignment_id = phone_assignment_id
        record.client_id = client_id
    if record.is_test:
        call_tests.follow_inbound_call(record)
    elif phone_assignment_id is not None:
        batch = _batch()
        if batch is None:
            _note_numbers_called({phone_assignment_id: at})
        else:
            batch.called_numbers[phone_assignment_id] = max(at, batch.called_numbers.get(phone_assignment_id, at))
    _commit()
    return record


def _follow_test(record):
    if record.is_test:
        call_tests.follow_inbound_call(record)


def record_call_status(params, *, at=None):
    """The inbound call's own status callback."""
    at = at or utcnow()
    record = call_record_for(params["CallSid"], status="ringing", started_at=at, **_caller_fields(params))
    _advance(record, params.get("CallStatus"), params.get("CallDuration"), at)
    _follow_test(record)
    _commit()
    return record


def _advance(record, reported, duration, at):
    new_status = advance_status(record.status, reported)
    if new_status != record.status:
        record.status = new_status
    if reported in TERMINAL_STATUSES and record.status in TERMINAL_STATUSES:
        if record.ended_at is None:
            record.ended_at = at
        if record.duration is None and _as_int(duration) is not None:
            record.duration = _as_int(duration)


def record_dial_result(params, *, at=None):
    """The <Dial action>: how the forwarded leg ended. Returns the record."""
    at = at or utcnow()
    record = call_record_for(params["CallSid"], status="in-progress", started_at=at, **_caller_fields(params))
    record.status = advance_status(record.status, "in-progress")
    dial_status = params.get("DialCallStatus")
    if dial_status and record.dial_status is None:
        record.dial_status = dial_status
        record.dial_leg_status = advance_status(record.dial_leg_status, _leg_status(dial_status))
    if params.get("DialCallSid") and record.dial_call_sid is None:
        record.dial_call_sid = params["DialCallSid"]
    if record.dial_duration is None and _as_int(params.get("DialCallDuration")) is not None:
        record.dial_duration = _as_int(params.get("DialCallDuration"))
    _follow_test(record)
    _commit()
    if record.phone_assignment_id is not None and dial_status and not record.is_test:
        batch = _batch()
        if batch is None:
            _update_failed_forwards_alert(record.phone_assignment_id)
        else:
            batch.dialled_numbers[record.phone_assignment_id] = dial_status
    return record


def _leg_status(dial_status):
    # DialCallStatus "answered" is the conference flavour of "completed".
    return "completed" if dial_status == "answered" else dial_status


def record_dial_event(params, *, at=None):
    """A status callback of the forwarded (child) leg, tied back to its parent call."""
    at = at or utcnow()
    parent_sid = params.get("ParentCallSid")
    child_sid = params.get("CallSid")
    if parent_sid:
        record = call_record_for(parent_sid, status="in-progress", started_at=at)
    else:
        record = db.session.scalars(
            sa.select(CallRecord).where(CallRecord.dial_call_sid == child_sid).with_for_update()
        ).first()
        if record is None:
            return None
    record.status = advance_status(record.status, "in-progress")
    if record.dial_call_sid is None:
        record.dial_call_sid = child_sid
    reported = params.get("CallStatus")
    record.dial_leg_status = advance_status(record.dial_leg_status, reported)
    if reported == "in-progress" and record.answered_at is None:
        record.answered_at = at
    if reported in TERMINAL_STATUSES and record.dial_duration is None:
        record.dial_duration = _as_int(params.get("CallDuration"))
    _follow_test(record)
    _commit()
    return record


def record_recording(params, kind):
    """A recording of the forwarded call or a voicemail, linked to the parent call."""
    url = params.get("RecordingUrl")
    if not url or params.get("RecordingStatus") not in (None, "", "completed"):
        return None
    if not is_twilio_recording_url(url):
        # Only Twilio keeps our recordings; any other link would be shown to staff as one.
        log.warning("call %s: recording link %r is not Twilio's; not kept", params.get("CallSid"), url[:100])
        return None
    record = call_record_for(params["CallSid"], status="in-progress", **_caller_fields(params))
    duration = _as_int(params.get("RecordingDuration"))
    if kind == "voicemail":
        record.voicemail_url = record.voicemail_url or url
        record.voicemail_duration = record.voicemail_duration or duration
    else:
        record.recording_url = record.recording_url or url
        record.recording_sid = record.recording_sid or params.get("RecordingSid")
    _commit()
    return record


def failed_forward_streak(phone_assignment_id, limit=FAILING_STREAK):
    """How many of the number's latest finished forwards failed in a row (at most `limit`)."""
    latest = db.session.scalars(
        sa.select(CallRecord.dial_status)
        .where(CallRecord.phone_assignment_id == phone_assignment_id, CallRecord.dial_status.is_not(None),
               CallRecord.is_test.is_(False))
        .order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
        .limit(limit)
    ).all()
    streak = 0
    for dial_status in latest:
        if not is_failed_forward(dial_status):
            break
        streak += 1
    return streak


def _update_failed_forwards_alert(phone_assignment_id):
    subject = f"number:{phone_assignment_id}"
    streak = failed_forward_streak(phone_assignment_id)
    number = db.session.get(PhoneAssignment, phone_assignment_id)
    if number is not None and number.failed_forward_streak != streak:
        number.failed_forward_streak = streak
    if streak >= FAILING_STREAK:
        raise_alert("failed_forwards", subject,
                    f"The last {streak} calls to {number.phone_number} forwarded to nobody who answered",
                    severity="error", phone_assignment_id=phone_assignment_id)
    elif streak == 0:
        resolve_alerts("failed_forwards", subject)
    _commit()
