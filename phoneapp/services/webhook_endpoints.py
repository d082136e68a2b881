"""Outbound webhook endpoints (SPEC §10): adding, changing and removing receivers, and reading their deliveries.

A receiver's address is checked when it is saved: its host is resolved then, and one that points into the
server's own network is refused unless OUTBOUND_WEBHOOKS_ALLOW_PRIVATE. The deliveries check it again.
"""
from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as LookupTimeout

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from phoneapp.domain.outbound_addresses import parse_receiver, refused_address, refused_host
from phoneapp.extensions import db
from phoneapp.models import MAX_ID, Client, WebhookDelivery, WebhookEndpoint, utcnow
from phoneapp.services import outbound_webhooks
from phoneapp.services.audit import record_audit
from phoneapp.services.errors import NotFound, ValidationError

EVENT_TYPES = outbound_webhooks.EVENT_TYPES
ENDPOINT_FIELDS = ("url", "description", "events", "client_id", "is_active")
MAX_DESCRIPTION_LENGTH = 200
SECRET_HINT_LENGTH = 4
# A save waits this long for DNS; a name that has not answered by then is taken as not resolving yet.
LOOKUP_SECONDS = 5


def endpoint_fields(endpoint):
    """What the audit trail keeps of an endpoint: never its secret."""
    return {"url": endpoint.url, "description": endpoint.description, "events": list(endpoint.events or []),
            "client_id": endpoint.client_id, "is_active": endpoint.is_active}


def secret_hint(endpoint):
    """The secret's last characters, so staff can tell which one a receiver holds without seeing it."""
    return (endpoint.secret or "")[-SECRET_HINT_LENGTH:]


def resolved_addresses(host, port):
    """The addresses `host` resolves to now; empty when it does not resolve (yet) or DNS does not answer in time."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-lookup")
    try:
        answers = pool.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM).result(LOOKUP_SECONDS)
    except (OSError, LookupTimeout):
        return []
    finally:
        pool.shutdown(wait=False)
    return sorted({answer[4][0] for answer in answers})


def url_problem(url, *, allow_private):
    """(the URL as saved, None) when a receiver may be saved at `url`, else (None, why not)."""
    receiver, why_not = parse_receiver(url)
    if why_not:
        return None, why_not
    refusal = refused_host(receiver.host, allow_private=allow_private)
    if refusal:
        return None, refusal
    try:
        addresses = resolved_addresses(receiver.host, receiver.port)
    except ValueError:  # a label longer than DNS allows, or otherwise not a host name DNS can be asked about
        return None, "has a host name that is not valid"
    for address in addresses:
        refusal = refused_address(address, allow_private=allow_private)
        if refusal:
            return None, refusal if address == receiver.host else f"{receiver.host} {refusal}"
    return url.strip(), None


def _clean_events(events, errors):
    if not isinstance(events, list) or not events:
        errors["events"] = f"choose at least one of: {', '.join(EVENT_TYPES)}"
        return None
    unknown = [event for event in events if not isinstance(event, str) or event not in EVENT_TYPES]
    if unknown:
        errors["events"] = (f"{', '.join(map(repr, unknown[:3]))} {'is' if len(unknown) == 1 else 'are'} not "
                            f"an event; choose from: {', '.join(EVENT_TYPES)}")
        return None
    return [event for event in EVENT_TYPES if event in events]


def _clean_client_id(client_id, errors):
    if client_id is None:
        return None
    if isinstance(client_id, bool) or not isinstance(client_id, int) or not 1 <= client_id <= MAX_ID:
        errors["client_id"] = "must be a client's id, or null for every client"
    elif db.session.get(Client, client_id) is None:
        errors["client_id"] = f"no client with id {client_id}"
    return client_id


def clean_endpoint_fields(data, *, allow_private, partial):
    """The fields of `data` as they will be saved; raises ValidationError naming every bad one."""
    clean, errors = {}, {}
    for field in sorted(set(data) - set(ENDPOINT_FIELDS)):
        errors[field] = "unknown field"
    if "url" in data or not partial:
        clean["url"], why_not = url_problem(data.get("url"), allow_private=allow_private)
        if why_not:
            errors["url"] = why_not
    if "events" in data or not partial:
        clean["events"] = _clean_events(data.get("events"), errors)
    if "description" in data:
        description = data["description"]
        if description is not None and not isinstance(description, str):
            errors["description"] = "must be text"
        elif len((description or "").strip()) > MAX_DESCRIPTION_LENGTH:
            errors["description"] = f"at most {MAX_DESCRIPTION_LENGTH} characters"
        else:
            clean["description"] = (description or "").strip()
    if "client_id" in data:
        clean["client_id"] = _clean_client_id(data["client_id"], errors)
    if "is_active" in data:
        if not isinstance(data["is_active"], bool):
            errors["is_active"] = "must be true or false"
        clean["is_active"] = data["is_active"]
    if errors:
        raise ValidationError(errors)
    return clean


def _switch(endpoint, is_active, actor):
    """Switching on starts afresh (no failing streak); switching off says who did it."""
    if is_active == endpoint.is_active:
        return
    endpoint.is_active = is_active
    if is_active:
        endpoint.failing_since = endpoint.disabled_at = endpoint.disabled_reason = None
    else:
        # Switched off on purpose: owed nothing from now on, unlike one switched off for failing (still owed).
        endpoint.failing_since = None
        endpoint.disabled_at = utcnow()
        endpoint.disabled_reason = f"switched off by {actor.email if actor is not None else 'the system'}"


def create_endpoint(data, *, allow_private, actor=None):
    """A new endpoint from `data` (url and events required), with a new secret; ValidationError for bad input."""
    clean = clean_endpoint_fields(data, allow_private=allow_private, partial=False)
    is_active = clean.pop("is_active", True)
    endpoint = WebhookEndpoint(**clean, secret=outbound_webhooks.create_endpoint_secret(), is_active=True)
    _switch(endpoint, is_active, actor)
    db.session.add(endpoint)
    db.session.flush()
    record_audit("create_webhook_endpoint", endpoint, after=endpoint_fields(endpoint), actor=actor)
    db.session.commit()
    return endpoint


def update_endpoint(endpoint, data, *, allow_private, actor=None):
    """Change any of an endpoint's fields; its secret stays. ValidationError for bad input, nothing changed."""
    clean = clean_endpoint_fields(data, allow_private=allow_private, partial=True)
    before = endpoint_fields(endpoint)
    if "is_active" in clean:
        _switch(endpoint, clean.pop("is_active"), actor)
    for field, value in clean.items():
        setattr(endpoint, field, value)
    after = endpoint_fields(endpoint)
    if after != before:
        record_audit("update_webhook_endpoint", endpoint, before=before, after=after, actor=actor)
    db.session.commit()
    return endpoint


def delete_endpoint(endpoint, actor=None):
    """Remove an endpoint with its deliveries; the events stay for the other endpoints."""
    record_audit("delete_webhook_endpoint", endpoint, before=endpoint_fields(endpoint), actor=actor)
    db.session.delete(endpoint)
    db.session.commit()


def endpoints_select():
    """Every endpoint with its client, oldest first."""
    return sa.select(WebhookEndpoint).options(joinedload(WebhookEndpoint.client)).order_by(WebhookEndpoint.id)


def latest_deliveries(endpoint_ids):
    """Each endpoint's newest delivery, by endpoint id; endpoints with none are left out."""
    if not endpoint_ids:
        return {}
    newest = (sa.select(sa.func.max(WebhookDelivery.id))
              .where(WebhookDelivery.endpoint_id.in_(endpoint_ids)).group_by(WebhookDelivery.endpoint_id))
    rows = db.session.scalars(sa.select(WebhookDelivery).where(WebhookDelivery.id.in_(newest)))
    return {delivery.endpoint_id: delivery for delivery in rows}


def deliveries_select(endpoint_id):
    """An endpoint's deliveries, newest first, each with its event and its attempts."""
    return (sa.select(WebhookDelivery)
            .options(joinedload(WebhookDelivery.event), selectinload(WebhookDelivery.attempts))
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()))


def has_pending_deliveries(endpoint_id):
    """True while any delivery to the endpoint is still owed: its log is worth watching."""
    return bool(db.session.scalar(sa.select(sa.exists().where(
        WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.state == "pending"))))


def redeliver_delivery(delivery_id):
    """Send a delivery again, whatever its state; NotFound when there is none with this id."""
    delivery = db.session.get(WebhookDelivery, delivery_id) if 1 <= delivery_id <= MAX_ID else None
    if delivery is None:
        raise NotFound(f"no webhook delivery with id {delivery_id}")
    if not delivery.endpoint.is_active:
        raise ValidationError({"endpoint": "is switched off; switch it on first, then redeliver"})
    return outbound_webhooks.redeliver(delivery.id)
