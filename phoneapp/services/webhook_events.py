"""What a Twilio webhook writes, as an event: logged on disk first, then written to the database (SPEC §8).

The webhook routes turn each request into an event (plain JSON: the form Twilio sent, what routing decided,
when it arrived) and `record_webhook` appends it to this process's webhook log before Twilio is answered. A
writer thread per process copies the log into the database in batches, one transaction each, through the
same `apply_event` whatever the delay, with the time each webhook arrived. While the database is down the log
keeps growing and the writer retries; another process, or a worker, writes the log of one that stopped.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa
from flask import current_app, has_request_context, request
from sqlalchemy import exc as sa_exc

from phoneapp.domain.fitting import INT4_MAX
from phoneapp.domain.routing import RouteEntry, RoutingDecision, plain_fields
from phoneapp.extensions import db
from phoneapp.models import SCHEMA_REVISION, Client, PhoneAssignment, utcnow
from phoneapp.services import call_tests, calls
from phoneapp.services.alerts import raise_alert
from phoneapp.services.call_batch import CallBatch
from phoneapp.services.call_events import keep_call_events
from phoneapp.services.call_params import called_number, fitted_text, usable_call_sid
from phoneapp.services.database_outages import (
    DATABASE_UNAVAILABLE,
    database_outage,
    rollback_quietly,
)
from phoneapp.services.process_threads import started_for_this_process
from phoneapp.services.routing_table import (
    LOOP_REFUSAL,
    UNROUTED_ALERT,
    unrouted_alert_text,
)
from phoneapp.services.webhook_log import WriteResult

log = logging.getLogger(__name__)

ORPHANS_EVERY = 5.0
WRITE_LINGER_SECONDS = 0.05


def webhook_log():
    return current_app.extensions["phoneapp.webhook_log"]


def webhook_event(kind, params, **details):
    """The JSON-ready event for one webhook request, with the route it came by (voice, fallback…)."""
    route = request.endpoint.rpartition(".")[2] if has_request_context() and request.endpoint else kind
    return {"kind": kind, "route": route, "params": dict(params), "received_at": utcnow().isoformat(), **details}


def inbound_call_event(params, decision: RoutingDecision, entry: RouteEntry | None, *, from_cache=False):
    """`from_cache`: routed from the routing cache, whose numbers and clients may be gone when it is written."""
    return webhook_event("call", params, decision=plain_fields(decision), from_cache=from_cache,
                         entry=plain_fields(entry) if entry is not None else None)


def record_webhook(event):
    """Log `event` durably, then have it written: at once in tests, by this process's writer otherwise."""
    try:
        webhook_log().append(event)
    except OSError:
        # The disk refused it: write it straight away, the one chance left not to lose it.
        log.critical("could not log a %s webhook for CallSid %s; writing it directly", event["kind"],
                     event["params"].get("CallSid"), exc_info=True)
        try:
            write_batch([event])
        except sa_exc.SQLAlchemyError:
            rollback_quietly()
            log.critical("a %s webhook for CallSid %s is lost: neither the disk nor the database took it",
                         event["kind"], event["params"].get("CallSid"), exc_info=True)
        return
    if current_app.config["WEBHOOK_WRITES_INLINE"]:
        write_logged_webhooks()
    else:
        start_writer(current_app._get_current_object()).wake()


# -- writing the log into the database ------------------------------------------------------------------


def write_batch(events):
    """Write `events` in one transaction; safe to repeat (every writer is idempotent by CallSid)."""
    with CallBatch(events) as batch:
        keep_call_events([event for event in events if event["kind"] != "test_caller_status"])
        existing = _still_existing_rows(events)
        for event in events:
            apply_event(event, batch, existing)
        batch.finish()


def apply_event(event, batch, existing):
    kind, params = event["kind"], event["params"]
    at = datetime.fromisoformat(event["received_at"])
    if kind == "call":
        entry = RouteEntry(**event["entry"]) if event.get("entry") else None
        if entry is not None and event.get("from_cache"):
            entry = _still_existing(entry, existing)
        decision = RoutingDecision(**event["decision"])
        record = calls.record_inbound_call(params, decision, entry, at=at)
        if record is None:
            return  # no CallSid it can be keyed by: nothing is recorded of it, as of a call without one
        # The number as stored on the call: an alert keyed by a To that does not fit would set the call aside.
        to_number = called_number(params)
        if decision.reason is not None:
            # On the number the call was to, even when the routing cache that answered did not know it.
            alert_unrouted(to_number, decision, record.phone_assignment_id)
            batch.alert_raised(UNROUTED_ALERT, to_number)
        elif decision.routed_by == "assignment":
            # Routed to its client: whatever kept this number's calls from anyone has ended.
            batch.resolve_alert(UNROUTED_ALERT, to_number)
        if decision.routed_by == "assignment":
            alert_looping_targets(to_number, decision.loops, record.phone_assignment_id, batch)
    elif kind == "call_status":
        calls.record_call_status(params, at=at)
    elif kind == "dial_result":
        calls.record_dial_result(params, at=at, attempt=event.get("attempt") or 0, target=event.get("target"))
    elif kind == "dial_event":
        calls.record_dial_event(params, at=at)
    elif kind == "whisper":
        pass  # kept as the call's event: the person who picked up heard who is calling
    elif kind == "accept":
        if event.get("accepted"):
            calls.record_acceptance(params, at=at, target=event.get("target"), attempt=event.get("attempt") or 0)
    elif kind == "recording":
        calls.record_recording(params, event["recording_kind"], at=at)
    elif kind == "test_caller_status":
        _record_test_caller_status(event["test_call_id"], params)
    else:
        raise ValueError(f"unknown webhook event kind {kind!r}")


def _record_test_caller_status(test_call_id, params):
    """The test phone's callback, with what Twilio sent made to fit (its SID and the words of its detail)."""
    call_sid = usable_call_sid(params)
    if call_sid is None:
        return
    if not 0 < test_call_id <= INT4_MAX:
        log.warning("call %s: test_call %r does not fit; no test call has that id, not recorded", call_sid,
                    test_call_id)
        return
    fitted = {field: fitted_text(params, field, 500, call_sid)
              for field in ("To", "From", "CallStatus", "ErrorCode") if field in params}
    call_tests.record_test_caller_status(test_call_id, {**params, **fitted, "CallSid": call_sid})


def _still_existing_rows(events):
    """(number ids, client ids) of those named by the batch's calls routed from the cache that still exist.

    Routed from memory, every call is routed from the cache: two queries for the batch, not two per call.
    """
    entries = [event["entry"] for event in events
               if event["kind"] == "call" and event.get("from_cache") and event.get("entry")]
    numbers = {entry["assignment_id"] for entry in entries if entry.get("assignment_id") is not None}
    clients = {entry["client_id"] for entry in entries if entry.get("client_id") is not None}
    return (set(db.session.scalars(sa.select(PhoneAssignment.id).where(PhoneAssignment.id.in_(numbers))))
            if numbers else set(),
            set(db.session.scalars(sa.select(Client.id).where(Client.id.in_(clients)))) if clients else set())


def _still_existing(entry, existing):
    """A call routed from the cache, minus a number or client deleted since it was loaded."""
    numbers, clients = existing
    assignment_id = entry.assignment_id if entry.assignment_id in numbers else None
    client_id = entry.client_id if entry.client_id in clients else None
    if (assignment_id, client_id) == (entry.assignment_id, entry.client_id):
        return entry
    return replace(entry, assignment_id=assignment_id, client_id=client_id)


def alert_unrouted(to_number, decision, assignment_id):
    message, severity = unrouted_alert_text(to_number, decision)
    raise_alert(UNROUTED_ALERT, to_number, message, severity=severity, phone_assignment_id=assignment_id)


# A target of a client's rules that is one of the account's tracking numbers; keyed by the called number.
LOOPING_TARGET_ALERT = "looping_target"


def alert_looping_targets(to_number, loops, assignment_id, batch):
    """Say which of the rules' targets calls to `to_number` skip, or close the alert once none is skipped."""
    if not loops:
        batch.resolve_alert(LOOPING_TARGET_ALERT, to_number)
        return
    numbers = ", ".join(loops)
    raise_alert(LOOPING_TARGET_ALERT, to_number,
                f"Calls to {to_number} skip {numbers}: {LOOP_REFUSAL}. Change the client's routing rules.",
                phone_assignment_id=assignment_id)
    batch.alert_raised(LOOPING_TARGET_ALERT, to_number)


def _write_batch_or_roll_back(events):
    try:
        write_batch(events)
    except Exception:
        rollback_quietly()
        raise


def write_logged_webhooks(include_orphans=False):
    """Write what this process logged (and, if asked, what stopped processes left); returns the WriteResult."""
    log_ = webhook_log()
    if database_outage().database_skipped():
        return WriteResult(remaining=log_.waiting()[0])
    result = log_.write_own(_write_batch_or_roll_back, retry_later=DATABASE_UNAVAILABLE)
    if include_orphans and not result.remaining:
        orphans = log_.write_orphans(_write_batch_or_roll_back, retry_later=DATABASE_UNAVAILABLE)
        result.written += orphans.written
        result.remaining += orphans.remaining
        result.quarantined += orphans.quarantined
    if result.remaining:
        database_outage().note_failure()
    elif result.written:
        database_outage().note_success()
    return result


def write_orphaned_webhooks():
    """Housekeeping for workers: write the logs of web processes that stopped."""
    return webhook_log().write_orphans(_write_batch_or_roll_back, retry_later=DATABASE_UNAVAILABLE)


def write_orphans_at_start_up(app) -> WriteResult | None:
    """As the app starts, write what web processes that stopped left in the webhook log; None if it was left.

    Otherwise it would wait for this process's first webhook (which starts its writer) or for a worker. It is
    left for them when the database cannot be reached, and when the database is not at the latest migration:
    `flask db upgrade` builds the app before it has created or changed the tables, and a webhook written then
    would fail on a missing table or column and be set aside as unwritable.
    """
    if not app.extensions["phoneapp.webhook_log"].segments():
        return None  # the usual start: nothing left behind, and no reason to touch the database
    with app.app_context():
        try:
            if not schema_is_current(app):
                log.warning("webhooks left by stopped processes wait: the database is not at the latest "
                            "migration (run `flask db upgrade`)")
                return None
            result = write_orphaned_webhooks()
        except sa_exc.SQLAlchemyError as error:
            rollback_quietly()
            log.warning("webhooks left by stopped processes wait for the database (%s)", type(error).__name__)
            return None
        finally:
            db.session.remove()
    if result.remaining:
        log.warning("%d webhook(s) left by stopped processes wait for the database", result.remaining)
    elif result.written:
        log.info("wrote %d webhook(s) left by stopped processes", result.written)
    return result


def schema_is_current(app) -> bool:
    """Whether the database is at the migration this code was written for.

    Read from Alembic's own table, without Alembic: a web process that imported it for this look would carry its
    10 MB for as long as it runs.
    """
    with db.engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return False
        return set(connection.scalars(sa.text("SELECT version_num FROM alembic_version"))) == {SCHEMA_REVISION}


class WebhookWriter:
    """This process's writer: wakes when a webhook is logged, writes in batches, retries while the database is down.

    Runs in each web process, so webhooks are written even if no more calls come, and writes the logs that
    stopped processes left behind (a web process restarted after being killed writes its predecessor's).
    """

    def __init__(self, app):
        self.app = app
        self._wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="webhook-writer", daemon=True)

    def wake(self):
        self._wake.set()

    def _run(self):
        pause = self.app.config["DATABASE_RETRY_PAUSE"]
        last_orphan_check = 0.0
        while True:
            if self._wake.wait(timeout=1.0):
                # Let the burst this webhook belongs to join it: a batch costs its transaction and a dozen
                # statements whatever its size, so one per webhook would cost each several times its own writes.
                time.sleep(WRITE_LINGER_SECONDS)
            self._wake.clear()
            check_orphans = time.monotonic() - last_orphan_check >= ORPHANS_EVERY
            try:
                with self.app.app_context():
                    result = write_logged_webhooks(include_orphans=check_orphans)
                    db.session.remove()
            except Exception:
                log.exception("writing logged webhooks failed; trying again")
                result = None
            if check_orphans:
                last_orphan_check = time.monotonic()
            if result is None or result.remaining:
                # The database is down: wait before knocking again, the log keeps everything meanwhile.
                time.sleep(pause)
                self._wake.set()


def start_writer(app) -> WebhookWriter:
    """This process's webhook writer, started on first use (threads do not survive a fork)."""
    return started_for_this_process(app, "phoneapp.webhook_writer", WebhookWriter)
