"""Call records written from Twilio's webhooks: idempotent by CallSid, never moving backwards."""
from __future__ import annotations

import logging

import sqlalchemy as sa

from phoneapp.domain.call_status import TERMINAL_STATUSES, advance_status, is_failed_forward
from phoneapp.domain.fitting import fit_count, fit_sid, fit_text
from phoneapp.domain.number_status import FAILING_STREAK
from phoneapp.domain.recordings import is_twilio_recording_url
from phoneapp.extensions import db
from phoneapp.models import Alert, CallRecord, PhoneAssignment, utcnow
from phoneapp.services import call_tests
from phoneapp.services.alerts import raise_alert, resolve_alerts
from phoneapp.services.db_utils import insert_for
from phoneapp.services.monitor_alerts import ALERT_KIND as WEBHOOK_ERROR_ALERT

log = logging.getLogger(__name__)


# -- what Twilio sent, made to fit its column ------------------------------------------------------------
# A value that does not fit is dropped or cut with a warning; an error would set the whole event aside.

def _shown(value, limit=80):
    """`value` short enough for a log line."""
    return value[:limit] + "…" if isinstance(value, str) and len(value) > limit else value


def _fitted(fitted, field, raw, call_sid):
    if fitted.problem is not None:
        log.warning("call %s: %s %r does not fit; %s", call_sid, field, _shown(raw), fitted.problem)
    return fitted.value


def fitted_count(params, field, call_sid):
    """params[field] as a whole number in 0..2**31-1 (a duration in seconds), else None."""
    return _fitted(fit_count(params.get(field)), field, params.get(field), call_sid)


def fitted_text(params, field, length, call_sid):
    """params[field] without control characters, cut to `length`; None when absent."""
    return _fitted(fit_text(params.get(field), length), field, params.get(field), call_sid)


def fitted_sid(params, field, call_sid):
    """params[field] if it can be a SID (it fits String(34), no spaces or controls), else None."""
    return _fitted(fit_sid(params.get(field)), field, params.get(field), call_sid)


def usable_call_sid(params, field="CallSid"):
    """The call's key, or None when there is none or Twilio sent one that cannot be (with a warning): the event is
    then not recorded, as one without a CallSid never was; Twilio has been answered all the same."""
    fitted = fit_sid(params.get(field))
    if fitted.problem is not None:
        log.warning("call ?: %s %r does not fit; %s, the event is not recorded", field, _shown(params.get(field)),
                    fitted.problem)
    return fitted.value


def _call_label(*sids):
    """The first of `sids` that can be a SID, to name the call in a warning; "?" when none can."""
    return next((sid for sid in sids if fit_sid(sid).value), "?")


def called_number(params):
    """The To of a call as stored (no controls, at most 32 characters): the key of its number's alerts."""
    return fit_text(params.get("To") or "", 32).value


def _fill(record, column, value):
    """Set an empty column to what fitted of Twilio's value, if anything did."""
    if value is not None:
        setattr(record, column, value)


def _caller_fields(params, call_sid):
    return {
        "from_number": fitted_text(params, "From", 32, call_sid) or "",
        "to_number": fitted_text(params, "To", 32, call_sid) or "",
        "caller_city": fitted_text(params, "FromCity", 100, call_sid) or None,
        "caller_state": fitted_text(params, "FromState", 100, call_sid) or None,
        "caller_zip": fitted_text(params, "FromZip", 20, call_sid) or None,
        "caller_country": fitted_text(params, "FromCountry", 10, call_sid) or None,
    }


class CallBatch:
    """Many webhook events in one transaction: their records read at once, per-number work done once.

    Written from the webhook log, a batch holds every event a process logged since the last one; the
    functions below work the same inside one as alone, but leave the commit (and the work that only needs
    doing once per number) to `finish`.
    """

    def __init__(self, events):
        # Only SIDs that can be keys: one with a NUL in it would fail the query, and the batch with it.
        self.call_sids = sorted({sid for sid in (_call_sid_of(event) for event in events) if fit_sid(sid).value})
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
    call_sid = usable_call_sid(params)
    if call_sid is None:
        return None
    at = at or utcnow()
    phone_assignment_id = entry.assignment_id if entry is not None else None
    client_id = entry.client_id if entry is not None and decision.routed_by == "assignment" else None
    status = params.get("CallStatus") if params.get("CallStatus") in ("queued", "ringing", "in-progress") else "ringing"
    is_test = is_test or call_tests.claim_inbound_call(params, phone_assignment_id) is not None
    record = call_record_for(
        call_sid, status=status, phone_assignment_id=phone_assignment_id, client_id=client_id,
        is_test=is_test, started_at=at, **_caller_fields(params, call_sid),
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
    call_sid = usable_call_sid(params)
    if call_sid is None:
        return None
    at = at or utcnow()
    record = call_record_for(call_sid, status="ringing", started_at=at, **_caller_fields(params, call_sid))
    _advance(record, params.get("CallStatus"), params, at)
    _follow_test(record)
    _commit()
    return record


def _advance(record, reported, params, at):
    new_status = advance_status(record.status, reported)
    if new_status != record.status:
        record.status = new_status
    if reported in TERMINAL_STATUSES and record.status in TERMINAL_STATUSES:
        if record.ended_at is None:
            record.ended_at = at
        if record.duration is None:
            _fill(record, "duration", fitted_count(params, "CallDuration", record.twilio_call_sid))


def record_dial_result(params, *, at=None):
    """The <Dial action>: how the forwarded leg ended. Returns the record (None for a call that cannot be keyed)."""
    call_sid = usable_call_sid(params)
    if call_sid is None:
        return None
    at = at or utcnow()
    record = call_record_for(call_sid, status="in-progress", started_at=at, **_caller_fields(params, call_sid))
    record.status = advance_status(record.status, "in-progress")
    dial_status = fitted_text(params, "DialCallStatus", 20, call_sid)
    if dial_status and record.dial_status is None:
        record.dial_status = dial_status
        record.dial_leg_status = advance_status(record.dial_leg_status, _leg_status(dial_status))
    if record.dial_call_sid is None:
        _fill(record, "dial_call_sid", fitted_sid(params, "DialCallSid", call_sid))
    if record.dial_duration is None:
        _fill(record, "dial_duration", fitted_count(params, "DialCallDuration", call_sid))
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
    named = _call_label(params.get("ParentCallSid"), params.get("CallSid"))
    # A parent SID that cannot be a key is no parent SID: the leg is then found by its own SID, as without one.
    parent_sid = fitted_sid(params, "ParentCallSid", named)
    child_sid = fitted_sid(params, "CallSid", named)
    if parent_sid:
        record = call_record_for(parent_sid, status="in-progress", started_at=at)
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
    record.status = advance_status(record.status, "in-progress")
    if record.dial_call_sid is None:
        record.dial_call_sid = child_sid
    reported = params.get("CallStatus")
    record.dial_leg_status = advance_status(record.dial_leg_status, reported)
    if reported == "in-progress" and record.answered_at is None:
        record.answered_at = at
    if reported in TERMINAL_STATUSES and record.dial_duration is None:
        _fill(record, "dial_duration", fitted_count(params, "CallDuration", record.twilio_call_sid))
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
        log.warning("call %s: recording link %r is not Twilio's; not kept", _call_label(params.get("CallSid")),
                    url[:100])
        return None
    call_sid = usable_call_sid(params)
    if call_sid is None:
        return None
    record = call_record_for(call_sid, status="in-progress", **_caller_fields(params, call_sid))
    if kind == "voicemail":
        record.voicemail_url = record.voicemail_url or url
        record.voicemail_duration = record.voicemail_duration or fitted_count(params, "RecordingDuration", call_sid)
    else:
        record.recording_url = record.recording_url or url
        record.recording_sid = record.recording_sid or fitted_sid(params, "RecordingSid", call_sid)
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
