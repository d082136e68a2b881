"""What a Twilio webhook writes, as an event that is written now or held until the database returns (SPEC §8).

The webhook routes turn each request into an event (plain JSON: the form Twilio sent, what routing decided,
when it arrived) and hand it to `write_or_hold`. Held events are replayed through the same `apply_event`,
with the time they arrived, so a call written late reads exactly as one written on time.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import asdict, replace
from datetime import datetime

from flask import current_app
from sqlalchemy import exc as sa_exc

from phoneapp.extensions import db
from phoneapp.models import Client, PhoneAssignment, utcnow
from phoneapp.phones import display_phone
from phoneapp.routing import RouteEntry, RoutingDecision
from phoneapp.services import calls, test_calls
from phoneapp.services.alerts import raise_alert

log = logging.getLogger(__name__)

# The database is unreachable or went away mid-transaction: try again later, keep the event.
DATABASE_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
                        sa_exc.TimeoutError)


def held_webhooks():
    return current_app.extensions["phoneapp.held_webhooks"]


def database_outage():
    return current_app.extensions["phoneapp.database_outage"]


def database_unreachable(error) -> bool:
    return isinstance(error, DATABASE_UNAVAILABLE)


def rollback_quietly():
    try:
        db.session.rollback()
    except sa_exc.SQLAlchemyError:
        # The connection is already gone; the session is reset either way.
        db.session.close()


def note_database_failure(error, doing):
    """Skip the database for a moment if it is unreachable; say so once per outage, not once per call."""
    outage = database_outage()
    if database_unreachable(error):
        if not outage.database_skipped():
            log.error("database unreachable while %s (%s); answering from the routing cache and holding webhooks",
                      doing, type(error).__name__)
        outage.note_failure()
    else:
        log.error("database refused a write while %s", doing, exc_info=error)


def webhook_event(kind, params, **details):
    """The JSON-ready event for one webhook request."""
    return {"kind": kind, "params": dict(params), "received_at": utcnow().isoformat(), **details}


def inbound_call_event(params, decision: RoutingDecision, entry: RouteEntry | None):
    return webhook_event("call", params, decision=asdict(decision),
                         entry=asdict(entry) if entry is not None else None)


def write_or_hold(event) -> bool:
    """Write `event` now if the database takes it, else hold it on disk. True when written now."""
    outage = database_outage()
    if not outage.database_skipped():
        try:
            apply_event(event)
            return True
        except sa_exc.SQLAlchemyError as error:
            rollback_quietly()
            note_database_failure(error, f"writing a {event['kind']} webhook")
    hold(event)
    return False


def hold(event):
    try:
        held_webhooks().hold(event)
    except OSError:
        # Neither the database nor the disk took it: the one case where a webhook is lost, so shout.
        log.critical("could not hold a %s webhook for CallSid %s on disk: it is lost", event["kind"],
                     event["params"].get("CallSid"), exc_info=True)


def apply_event(event):
    """Write one webhook event to the database; safe to repeat (every writer is idempotent by CallSid)."""
    kind, params = event["kind"], event["params"]
    at = datetime.fromisoformat(event["received_at"])
    if kind == "call":
        entry = RouteEntry(**event["entry"]) if event.get("entry") else None
        if entry is not None and "held_at" in event:
            entry = _still_existing(entry)
        decision = RoutingDecision(**event["decision"])
        calls.record_inbound_call(params, decision, entry, at=at)
        if decision.reason is not None:
            alert_unrouted(params.get("To", ""), decision, entry.assignment_id if entry is not None else None)
    elif kind == "call_status":
        calls.record_call_status(params, at=at)
    elif kind == "dial_result":
        calls.record_dial_result(params, at=at)
    elif kind == "dial_event":
        calls.record_dial_event(params, at=at)
    elif kind == "recording":
        calls.record_recording(params, event["recording_kind"])
    elif kind == "test_caller_status":
        test_calls.record_test_caller_status(event["test_call_id"], params)
    else:
        raise ValueError(f"unknown webhook event kind {kind!r}")


def _still_existing(entry):
    """The cached route of a held call, minus a number or client deleted while it waited."""
    assignment_id = entry.assignment_id
    if assignment_id is not None and db.session.get(PhoneAssignment, assignment_id) is None:
        assignment_id = None
    client_id = entry.client_id
    if client_id is not None and db.session.get(Client, client_id) is None:
        client_id = None
    return replace(entry, assignment_id=assignment_id, client_id=client_id)


def alert_unrouted(to_number, decision, assignment_id):
    shown = display_phone(to_number, current_app.config["PHONE_REGION"])
    if decision.forwards:
        message = f"Calls to {shown} go to the default number: {decision.reason}"
        severity = "warning"
    else:
        message = f"Calls to {shown} reach nobody, the caller hears a message: {decision.reason}"
        severity = "error"
    raise_alert("unrouted_call", to_number, message, severity=severity, phone_assignment_id=assignment_id)
    db.session.commit()


def _apply_held(event):
    try:
        apply_event(event)
    except sa_exc.SQLAlchemyError:
        rollback_quietly()
        raise


def replay_held_webhooks(limit=None):
    """Write the held webhooks, oldest first, while the database takes them. Returns the ReplayResult."""
    result = held_webhooks().replay(_apply_held, retry_later=DATABASE_UNAVAILABLE, limit=limit)
    if result.written:
        database_outage().note_success()
        log.info("wrote %d held webhook(s); %d still waiting", result.written, result.remaining)
    return result


def start_replayer(app):
    """In this process, a daemon thread that writes held webhooks once the database is back.

    Each web process runs one, so held webhooks are written after a restart even if no call comes in; the
    directory lock lets only one of them (or a worker) replay at a time.
    """
    state = app.extensions.setdefault("phoneapp.held_replayer", {})
    # Threads do not survive fork: a server that forked this app after starting one needs its own.
    if state.get("pid") == os.getpid():
        return
    state["pid"] = os.getpid()
    thread = threading.Thread(target=_replay_forever, args=(app,), name="held-webhooks-replayer", daemon=True)
    thread.start()


def _replay_forever(app):
    held = app.extensions["phoneapp.held_webhooks"]
    interval = app.config["HELD_WEBHOOKS_RETRY_INTERVAL"]
    stop = threading.Event()
    while not stop.wait(interval):
        if not held.pending():
            continue
        try:
            with app.app_context():
                replay_held_webhooks()
                db.session.remove()
        except Exception:
            log.exception("replaying held webhooks failed; trying again in %s s", interval)
