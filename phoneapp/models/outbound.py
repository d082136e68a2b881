"""What phoneapp sends out about calls and numbers: per-call notices and outbound webhooks (SPEC §10)."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from phoneapp.extensions import db
from phoneapp.models.base import utcnow

if TYPE_CHECKING:  # relationships are resolved by name; the classes are imported for the type checker
    from phoneapp.models.calls import CallRecord
    from phoneapp.models.numbers import Client

# The states of a notice or of a webhook delivery.
DELIVERY_STATES = ("pending", "delivered", "failed")


class CallNotice(db.Model):
    """One e-mail or text about one call and event to one recipient: the row is the promise to send it once."""

    __tablename__ = "call_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_record_id: Mapped[int] = mapped_column(sa.ForeignKey("call_records.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(sa.String(20))  # missed, voicemail, answered
    channel: Mapped[str] = mapped_column(sa.String(10))  # email, sms
    recipient: Mapped[str] = mapped_column(sa.String(254))
    state: Mapped[str] = mapped_column(sa.String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    # A sender claims the notice before sending, so two workers never both send it.
    claimed_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    detail: Mapped[str] = mapped_column(sa.String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    call_record: Mapped[CallRecord] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("call_record_id", "event", "channel", "recipient", name="uq_call_notices_once"),
        sa.Index("ix_call_notices_due", "state", "next_attempt_at"),
    )

    def __repr__(self):
        return f"<CallNotice {self.call_record_id} {self.event} {self.channel} {self.state}>"


class WebhookEndpoint(db.Model):
    """A receiver of outbound webhooks: its address, the events it takes, and the secret that signs them."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(500))
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    events: Mapped[list] = mapped_column(sa.JSON, default=list)
    secret: Mapped[str] = mapped_column(sa.String(100))  # whsec_…, shown once
    is_active: Mapped[bool] = mapped_column(default=True)
    # None: every client's events.
    client_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    # Since when every attempt failed; a day of it switches the endpoint off.
    failing_since: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    client: Mapped[Client | None] = relationship()

    def __repr__(self):
        return f"<WebhookEndpoint {self.id} {self.url}>"


class WebhookEvent(db.Model):
    """Something that happened, told to every endpoint that takes it; emitted once per `dedupe_key`."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(40), unique=True)  # msg_…, the webhook-id header
    dedupe_key: Mapped[str] = mapped_column(sa.String(120), unique=True)  # e.g. call.completed:CA…
    event_type: Mapped[str] = mapped_column(sa.String(40))
    client_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clients.id", ondelete="SET NULL"))
    payload: Mapped[dict] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self):
        return f"<WebhookEvent {self.event_id} {self.event_type}>"


class WebhookDelivery(db.Model):
    """One event owed to one endpoint: the durable queue entry, retried until delivered or given up."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook_events.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(default=0, server_default="0")  # attempts made so far
    state: Mapped[str] = mapped_column(sa.String(10), default="pending")
    response_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    # A sender holds the delivery until then; one killed mid-send lets it go when the time passes.
    claimed_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    endpoint: Mapped[WebhookEndpoint] = relationship()
    event: Mapped[WebhookEvent] = relationship()
    attempts: Mapped[list[WebhookAttempt]] = relationship(
        back_populates="delivery", order_by="WebhookAttempt.attempt", cascade="all, delete-orphan")

    __table_args__ = (
        sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_once"),
        sa.Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
    )

    def __repr__(self):
        return f"<WebhookDelivery {self.id} endpoint={self.endpoint_id} {self.state} #{self.attempt}>"


class WebhookAttempt(db.Model):
    """One try at a delivery, as logged; (delivery, attempt) is unique, so no attempt is ever sent twice."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    attempt: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    response_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(sa.String(500))
    # Who claimed it (a worker's name), so a log shows which process sent what.
    sender: Mapped[str] = mapped_column(sa.String(100), default="")

    delivery: Mapped[WebhookDelivery] = relationship(back_populates="attempts")

    __table_args__ = (sa.UniqueConstraint("delivery_id", "attempt", name="uq_webhook_attempts_once"),)

    def __repr__(self):
        return f"<WebhookAttempt {self.delivery_id} #{self.attempt} {self.response_code}>"
