"""Outbound webhooks (SPEC §10): what happened, stored once as an event and owed to every endpoint that takes it.

Queueing runs inside the caller's transaction (a call being settled, a status change being claimed), so an
event and its deliveries are written together with the fact they tell, or not at all. Sending is
`webhook_delivery.deliver_due_webhooks`, in the background.
"""
from __future__ import annotations

import base64
import logging
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment, WebhookDelivery, WebhookEndpoint, WebhookEvent, utcnow
from phoneapp.services.db_utils import insert_for
from phoneapp.services.number_statuses import number_statuses
from phoneapp.services.serializers import assignment_json, call_record_json, iso

log = logging.getLogger(__name__)

EVENT_TYPES = ("call.completed", "call.missed", "voicemail.created", "number.status_changed")
# Told besides call.completed for a call that ended this way.
OUTCOME_EVENTS = {"missed": "call.missed", "voicemail": "voicemail.created"}
STATUS_LABELS = {"green": "Forwarding", "yellow": "Pending setup", "red": "Error", "grey": "Inactive"}
STATUS_CHANGED = "number.status_changed"


def create_endpoint_secret() -> str:
    """A new signing secret in the Standard Webhooks form: whsec_ and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def new_event_id() -> str:
    return "msg_" + secrets.token_hex(14)


def event_payload(event_type, data, moment=None) -> dict:
    """The body every receiver gets: the event's type, when it happened, and what it is about."""
    return {"type": event_type, "timestamp": iso(moment or utcnow()), "data": data}


def queue_event(event_type, payload, *, client_id, dedupe_key):
    """Store the event once per `dedupe_key` with a pending delivery per endpoint taking it; the new row's id or None.

    Does not commit: the caller's transaction decides whether the event happened.
    """
    event_id = db.session.execute(
        insert_for(WebhookEvent).values(event_id=new_event_id(), dedupe_key=dedupe_key, event_type=event_type,
                                        client_id=client_id, payload=payload, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(WebhookEvent.id)).scalar()
    if event_id is None:
        return None
    now = utcnow()
    endpoint_ids = [endpoint.id for endpoint in _receiving_endpoints()
                    if event_type in (endpoint.events or []) and endpoint.client_id in (None, client_id)]
    if endpoint_ids:
        db.session.execute(
            insert_for(WebhookDelivery).values([
                {"endpoint_id": endpoint_id, "event_id": event_id, "attempt": 0, "state": "pending",
                 "next_attempt_at": now, "created_at": now, "updated_at": now}
                for endpoint_id in endpoint_ids])
            .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"]))
    return event_id


def queue_call_events(record, outcome):
    """Queue call.completed (and call.missed or voicemail.created) for a settled call, for every endpoint."""
    data = call_record_json(record)
    moment = record.ended_at or utcnow()
    for event_type in ("call.completed", OUTCOME_EVENTS.get(outcome)):
        if event_type:
            queue_event(event_type, event_payload(event_type, data, moment), client_id=record.client_id,
                        dedupe_key=f"{event_type}:{record.twilio_call_sid}")


def redeliver(delivery_id, now=None):
    """Send a delivery again, with the same event id, as soon as a worker is free; the delivery, or None."""
    now = now or utcnow()
    changed = db.session.execute(
        sa.update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
        .values(state="pending", next_attempt_at=now, claimed_until=None, delivered_at=None, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if not changed:
        return None
    delivery = db.session.get(WebhookDelivery, delivery_id)
    db.session.refresh(delivery)
    return delivery


def announce_number_statuses(now=None) -> int:
    """Queue number.status_changed for each number whose dot changed colour since last told; how many changed.

    A number never announced is recorded without an event. A verification under way is waited out: its yellow
    dot lasts seconds and is no change a receiver should hear about.
    """
    numbers = db.session.scalars(
        sa.select(PhoneAssignment).options(selectinload(PhoneAssignment.client)).order_by(PhoneAssignment.id)).all()
    statuses = number_statuses(numbers)
    # Everything is read before the first write: a commit would expire the numbers and reload them one by one.
    first_seen, changes = [], []
    for number in numbers:
        status = statuses[number.id]
        if status.colour == number.announced_status or _verifying(number):
            continue
        if number.announced_status is None:
            first_seen.append((number.id, status.colour))
        else:
            changes.append((number.id, number.phone_number, number.client_id, number.announced_status, status,
                            assignment_json(number, status)))
    for number_id, colour in first_seen:
        _claim_announcement(number_id, None, colour)
    db.session.commit()
    return sum(_announce_change(*change, now or utcnow()) for change in changes)


def _announce_change(number_id, phone_number, client_id, previous, status, number_json, now) -> bool:
    if not _claim_announcement(number_id, previous, status.colour):
        db.session.rollback()
        return False
    data = {"number": number_json,
            "previous_status": {"colour": previous, "label": STATUS_LABELS.get(previous, previous),
                                "reason": _last_announced_reason(number_id, previous)}}
    event_id = new_event_id()
    queue_event(STATUS_CHANGED, event_payload(STATUS_CHANGED, data, now), client_id=client_id,
                dedupe_key=f"{STATUS_CHANGED}:{number_id}:{event_id}")
    db.session.commit()
    log.info("outbound webhooks: %s went from %s to %s", phone_number, previous, status.colour)
    return True


def _claim_announcement(number_id, previous, colour) -> bool:
    # Every worker announces at once: only the one whose update still finds the old colour tells the change.
    held = (PhoneAssignment.announced_status.is_(None) if previous is None
            else PhoneAssignment.announced_status == previous)
    return db.session.execute(
        sa.update(PhoneAssignment).where(PhoneAssignment.id == number_id, held)
        # updated_at stays: telling receivers about the number changes nothing about it.
        .values(announced_status=colour, updated_at=PhoneAssignment.updated_at)
        .execution_options(synchronize_session=False)).rowcount == 1


def _last_announced_reason(number_id, colour):
    # Only the colour is kept beside the number; the reason, when it was told, is in the last event about it.
    payload = db.session.scalar(
        sa.select(WebhookEvent.payload).where(WebhookEvent.dedupe_key.like(f"{STATUS_CHANGED}:{number_id}:%"))
        .order_by(WebhookEvent.id.desc()).limit(1))
    status = ((payload or {}).get("data") or {}).get("number", {}).get("status") or {}
    return status.get("reason") if status.get("colour") == colour else None


def _verifying(number) -> bool:
    return number.config_state == "verifying" or number.verify_queued_at is not None


def _receiving_endpoints():
    """Endpoints owed what happens now: the active ones, and those switched off for failing, whose receiver is
    only down: what it missed goes out once it is switched back on. One staff switched off is owed nothing."""
    return db.session.scalars(sa.select(WebhookEndpoint).where(
        sa.or_(WebhookEndpoint.is_active.is_(True), WebhookEndpoint.failing_since.is_not(None)))).all()
