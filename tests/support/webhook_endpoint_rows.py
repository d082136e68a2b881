"""Deliveries as the sender leaves them, for the webhook endpoint pages and API to show and redeliver."""
from datetime import timedelta

import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import WebhookAttempt, WebhookDelivery, utcnow
from phoneapp.services.outbound_webhooks import event_payload, queue_event


def failed_delivery(endpoint_id, event_type="call.completed", dedupe_key="call.completed:CA1", client_id=None):
    """An event (about `client_id`'s call) queued for the endpoint, whose one attempt was answered 500 and which the
    sender gave up on."""
    event_id = queue_event(event_type, event_payload(event_type, {"sid": dedupe_key}), client_id=client_id,
                           dedupe_key=dedupe_key)
    db.session.commit()
    delivery = db.session.scalars(sa.select(WebhookDelivery).filter_by(event_id=event_id,
                                                                       endpoint_id=endpoint_id)).one()
    started = utcnow() - timedelta(minutes=5)
    delivery.attempt, delivery.state, delivery.response_code = 1, "failed", 500
    delivery.last_error, delivery.next_attempt_at = "HTTP 500", None
    db.session.add(WebhookAttempt(delivery_id=delivery.id, attempt=1, started_at=started,
                                  finished_at=started + timedelta(seconds=1), response_code=500, error="HTTP 500"))
    db.session.commit()
    return delivery
