"""Writing many webhook events of calls in one transaction, and the per-number work they leave to its end.

The writers in services.calls work the same inside a batch as alone: inside one, records are read once and
the commit, each number's last call and its failed-forward streak wait for `CallBatch.finish`.
"""
from __future__ import annotations

import sqlalchemy as sa

from phoneapp.domain.fitting import fit_sid
from phoneapp.extensions import db
from phoneapp.models import CallRecord, PhoneAssignment
from phoneapp.services.alerts import resolve_alerts_of
from phoneapp.services.db_utils import insert_for
from phoneapp.services.first_callers import first_time_caller, first_time_callers
from phoneapp.services.forward_streaks import update_failed_forwards_alert
from phoneapp.services.monitor_alerts import ALERT_KIND as WEBHOOK_ERROR_ALERT


class CallBatch:
    """Many webhook events in one transaction: their records read at once, per-number work done once.

    Written from the webhook log, a batch holds every event a process logged since the last one; the
    functions below work the same inside one as alone, but leave the commit (and the work that only needs
    doing once per number) to `finish`.
    """

    def __init__(self, events):
        # Only SIDs that can be keys: one with a NUL in it would fail the query, and the batch with it.
        self.call_sids = sorted({sid for sid in (_call_sid_of(event) for event in events) if fit_sid(sid).value})
        # The voice webhooks' calls, most of them new: created bare in one statement, then given their fields by
        # whichever writer of the batch comes to them first, as its own insert would have.
        self.inbound_sids = sorted({sid for sid in (_call_sid_of(event) for event in events if event["kind"] == "call")
                                    if fit_sid(sid).value})
        self.fresh = set()
        self.records = {}
        self.first_call_checks = {}  # call SID -> record whose caller is judged first-time or not at the end
        self.alerts_to_resolve = {}  # alert kind -> subjects whose last word in this batch was "resolved"
        self.called_numbers = {}  # number id -> when it was last called, in this batch
        self.reached_numbers = set()  # numbers whose voice URL answered a call: Twilio reached them
        self.forwarded_numbers = {}  # number id -> its last forward's verdict, in this batch

    def __enter__(self):
        db.session.info["call_batch"] = self
        if self.inbound_sids:
            self.fresh = set(db.session.scalars(
                insert_for(CallRecord).on_conflict_do_nothing(index_elements=["twilio_call_sid"])
                .returning(CallRecord.twilio_call_sid), [{"twilio_call_sid": sid} for sid in self.inbound_sids]))
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

    def judge_first_call(self, record):
        self.first_call_checks[record.twilio_call_sid] = record

    def resolve_alert(self, kind, subject):
        self.alerts_to_resolve.setdefault(kind, set()).add(subject)

    def alert_raised(self, kind, subject):
        self.alerts_to_resolve.get(kind, set()).discard(subject)

    def finish(self):
        if self.called_numbers:
            _note_numbers_called(self.called_numbers, self.reached_numbers)
        for kind, subjects in sorted(self.alerts_to_resolve.items()):
            resolve_alerts_of(kind, sorted(subjects))
        db.session.flush()
        if self.first_call_checks:
            # Once every call of the batch is in the database, so a caller's two calls in one batch see each other.
            verdicts = first_time_callers(self.first_call_checks.values())
            for record in self.first_call_checks.values():
                record.first_time_caller = verdicts[record.id]
        if self.forwarded_numbers:
            streaks = dict(db.session.execute(
                sa.select(PhoneAssignment.id, PhoneAssignment.failed_forward_streak)
                .where(PhoneAssignment.id.in_(self.forwarded_numbers))).all())
            for phone_assignment_id, verdict in sorted(self.forwarded_numbers.items()):
                # An answered forward on a number with no failures changes neither its streak nor its alerts.
                if streaks.get(phone_assignment_id) or verdict == "failed":
                    update_failed_forwards_alert(phone_assignment_id)
        db.session.commit()


def _call_sid_of(event):
    if event["kind"] in ("dial_event", "whisper", "accept"):
        return event["params"].get("ParentCallSid")
    if event["kind"] in ("call", "call_status", "dial_result", "recording"):
        return event["params"].get("CallSid")
    return None


def current_batch():
    return db.session.info.get("call_batch")


def commit_unless_batched():
    if current_batch() is None:
        db.session.commit()


def call_record_for(call_sid, **defaults):
    """The record for `call_sid`, created with `defaults` if this is the first word of it, locked."""
    batch = current_batch()
    if batch is not None and call_sid in batch.records:
        record = batch.records[call_sid]
        if call_sid in batch.fresh:
            batch.fresh.discard(call_sid)
            for column, value in defaults.items():
                setattr(record, column, value)
        return record
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


_numbers = PhoneAssignment.__table__
_called_at = sa.bindparam("at", type_=_numbers.c.last_call_at.type)
# Built once, run once per batch: building it cost more than running it.
_NOTE_LAST_CALL = (
    sa.update(_numbers).where(_numbers.c.id == sa.bindparam("number_id"))
    .values(last_call_at=sa.func.coalesce(sa.case((_numbers.c.last_call_at > _called_at, _numbers.c.last_call_at)),
                                          _called_at)))


def _note_numbers_called(called, reached):
    """{number id: call time}: each number's last call; for those Twilio `reached`, the end of its reports of
    failing to reach them (a call answered by the fallback URL says the opposite)."""
    db.session.connection().execute(
        _NOTE_LAST_CALL, [{"number_id": number_id, "at": when} for number_id, when in sorted(called.items())])
    resolve_alerts_of(WEBHOOK_ERROR_ALERT, [f"number:{number_id}" for number_id in sorted(reached)])


def judge_first_call(record):
    """Set whether `record`'s caller calls for the first time: now, or at the end of the batch it is written in."""
    batch = current_batch()
    if batch is None:
        record.first_time_caller = first_time_caller(record)
    else:
        batch.judge_first_call(record)


def note_forward(phone_assignment_id, verdict):
    """Feed the number's failed-forward streak with a forward's verdict: now, or once at the end of the batch."""
    batch = current_batch()
    if batch is None:
        update_failed_forwards_alert(phone_assignment_id)
    else:
        batch.forwarded_numbers[phone_assignment_id] = verdict


def note_called(phone_assignment_id, at, *, reached):
    batch = current_batch()
    if batch is None:
        _note_numbers_called({phone_assignment_id: at}, {phone_assignment_id} if reached else set())
        return
    batch.called_numbers[phone_assignment_id] = max(at, batch.called_numbers.get(phone_assignment_id, at))
    if reached:
        batch.reached_numbers.add(phone_assignment_id)
