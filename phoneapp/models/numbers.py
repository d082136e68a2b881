"""Clients and the tracking numbers assigned to them."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from phoneapp.extensions import db
from phoneapp.models.base import utcnow


class Client(db.Model):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    phone: Mapped[str] = mapped_column(sa.String(20))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    notes: Mapped[str] = mapped_column(sa.Text, default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    # Routing rules (SPEC §3a), read by domain.call_plan. No time zone: APP_TIMEZONE's.
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    # {"mon": [["09:00", "17:00"]], …}; none or empty: always open.
    business_hours: Mapped[dict | None] = mapped_column(sa.JSON)
    closed_dates: Mapped[list | None] = mapped_column(sa.JSON)  # ["2026-12-25", …]
    after_hours: Mapped[str] = mapped_column(sa.String(10), default="voicemail", server_default="voicemail")
    after_hours_number: Mapped[str | None] = mapped_column(sa.String(20))
    failover_numbers: Mapped[list | None] = mapped_column(sa.JSON)  # E.164, in the order they ring
    ring_mode: Mapped[str] = mapped_column(sa.String(12), default="sequential", server_default="sequential")
    ring_seconds: Mapped[int | None]  # none: DIAL_TIMEOUT
    whisper: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    require_accept: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    greeting: Mapped[str | None] = mapped_column(sa.String(500))
    # Per-call notices (SPEC §10): who hears of which of the client's calls.
    notify_emails: Mapped[list | None] = mapped_column(sa.JSON)
    notify_sms: Mapped[list | None] = mapped_column(sa.JSON)  # E.164
    notify_on: Mapped[list | None] = mapped_column(sa.JSON)  # subset of missed, voicemail, answered
    # The id the previous front-end gave it (`numbers import`): old per-client voice URLs still name it.
    legacy_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    phone_assignments: Mapped[list[PhoneAssignment]] = relationship(back_populates="client")

    def __repr__(self):
        return f"<Client {self.id} {self.name}>"


# config_state values: where phoneapp believes Twilio's configuration of the number stands.
CONFIG_STATES = ("unverified", "verifying", "ok", "drift", "missing", "error")


class PhoneAssignment(db.Model):
    """A tracking number rented from Twilio and, when assigned, the client it forwards to."""

    __tablename__ = "phone_assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    twilio_sid: Mapped[str] = mapped_column(sa.String(34), unique=True)
    phone_number: Mapped[str] = mapped_column(sa.String(20), unique=True)
    friendly_name: Mapped[str] = mapped_column(sa.String(200), default="")
    client_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clients.id", ondelete="SET NULL"), index=True)
    forward_to_number: Mapped[str | None] = mapped_column(sa.String(20))
    is_active: Mapped[bool] = mapped_column(default=True)
    webhook_url: Mapped[str | None] = mapped_column(sa.String(500))
    config_state: Mapped[str] = mapped_column(sa.String(12), default="unverified")
    config_detail: Mapped[str] = mapped_column(sa.String(500), default="")
    last_verified_at: Mapped[datetime | None]
    last_call_at: Mapped[datetime | None]
    # Kept beside the number as each forward ends, so a page of statuses never scans the call history.
    failed_forward_streak: Mapped[int] = mapped_column(default=0, server_default="0")
    # Set when a configuration check is queued; the card says "verifying…" until a worker clears it.
    verify_queued_at: Mapped[datetime | None]
    # The status (SPEC §4) last told to outbound webhooks, so number.status_changed is sent once per change.
    announced_status: Mapped[str | None] = mapped_column(sa.String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    client: Mapped[Client | None] = relationship(back_populates="phone_assignments")

    @property
    def target_number(self):
        """Where calls go: the override, else the client's phone, else nowhere."""
        if self.forward_to_number:
            return self.forward_to_number
        if self.client is not None:
            return self.client.phone
        return None

    def __repr__(self):
        return f"<PhoneAssignment {self.phone_number} client={self.client_id}>"


class BlockedNumber(db.Model):
    """A caller turned away (SPEC §3a.1): an E.164 number or a prefix ending in "*", for one client or all."""

    __tablename__ = "blocked_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(20))
    # None: blocked for every client.
    client_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_by_label: Mapped[str] = mapped_column(sa.String(254), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    client: Mapped[Client | None] = relationship()

    def __repr__(self):
        return f"<BlockedNumber {self.number} client={self.client_id}>"
