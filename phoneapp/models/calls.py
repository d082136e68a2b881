"""Calls: each inbound call, every request Twilio made about it, and test calls."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from phoneapp.extensions import db
from phoneapp.models.base import utcnow

if TYPE_CHECKING:  # relationships are resolved by name; the classes are imported for the type checker
    from phoneapp.models.accounts import User
    from phoneapp.models.numbers import Client, PhoneAssignment


class CallRecord(db.Model):
    """One inbound call to a tracking number, keyed by Twilio's parent CallSid."""

    __tablename__ = "call_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    twilio_call_sid: Mapped[str] = mapped_column(sa.String(34), unique=True)
    phone_assignment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("phone_assignments.id", ondelete="SET NULL"), index=True)
    # The client the call was routed for, kept as it was then: reassigning a number moves no history.
    client_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clients.id", ondelete="SET NULL"))
    from_number: Mapped[str] = mapped_column(sa.String(32), default="")
    to_number: Mapped[str] = mapped_column(sa.String(32), default="")
    forwarded_to: Mapped[str | None] = mapped_column(sa.String(20))
    # How the call was routed: assignment, default_number, message (nobody to forward to).
    routed_by: Mapped[str | None] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(20), default="ringing", index=True)
    dial_call_sid: Mapped[str | None] = mapped_column(sa.String(34), index=True)
    dial_leg_status: Mapped[str | None] = mapped_column(sa.String(20))
    dial_status: Mapped[str | None] = mapped_column(sa.String(20))
    duration: Mapped[int | None]
    dial_duration: Mapped[int | None]
    recording_url: Mapped[str | None] = mapped_column(sa.String(500))
    recording_sid: Mapped[str | None] = mapped_column(sa.String(34))
    voicemail_url: Mapped[str | None] = mapped_column(sa.String(500))
    voicemail_duration: Mapped[int | None]
    # The caller hung up before anybody answered: nobody was offered voicemail, and the target is not blamed.
    caller_hung_up: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # What said the call was over: Twilio's final status callback (exact), the call's own flow, or a timeout.
    ended_by: Mapped[str | None] = mapped_column(sa.String(20))
    # Why Twilio answered the call from the fallback URL: its error code and the URL that failed.
    error_code: Mapped[str | None] = mapped_column(sa.String(10))
    error_url: Mapped[str | None] = mapped_column(sa.String(500))
    # The rule that decided the call (open, after-hours, failover 2, blocked, default, message), and the target
    # that took it: a person who picked up (and pressed 1, when the client requires acceptance).
    route_rule: Mapped[str | None] = mapped_column(sa.String(20))
    answered_by: Mapped[str | None] = mapped_column(sa.String(20))
    # The client required a key press (SPEC §3a.4): only the person who pressed 1 took the call, so a leg that was
    # merely picked up (a personal voicemail picks up too) answers nothing. Who pressed it, and when.
    requires_accept: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    accepted_by: Mapped[str | None] = mapped_column(sa.String(20))
    accepted_at: Mapped[datetime | None]
    # Twilio's CallerName (CNAM) when the number has caller-name lookup on, and whether this caller had never
    # called this client before (set once, as the call is first written).
    caller_name: Mapped[str | None] = mapped_column(sa.String(100))
    first_time_caller: Mapped[bool | None]
    # Staff's own words about the call, and its tags (["lead", "spam"]).
    notes: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    tags: Mapped[list | None] = mapped_column(sa.JSON)
    # When the call's outcome was final and what it owes (notices, outbound webhooks) was queued: once.
    settled_at: Mapped[datetime | None] = mapped_column(index=True)
    caller_city: Mapped[str | None] = mapped_column(sa.String(100))
    caller_state: Mapped[str | None] = mapped_column(sa.String(100))
    caller_zip: Mapped[str | None] = mapped_column(sa.String(20))
    caller_country: Mapped[str | None] = mapped_column(sa.String(10))
    is_test: Mapped[bool] = mapped_column(default=False, index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Indexed because open pages ask "which calls changed since my last look?" every few seconds.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)

    phone_assignment: Mapped[PhoneAssignment | None] = relationship()
    client: Mapped[Client | None] = relationship()

    __table_args__ = (sa.Index("ix_call_records_assignment_started", "phone_assignment_id", "started_at"),
                      sa.Index("ix_call_records_client_started", "client_id", "started_at"),
                      # Whether a caller called this client before, asked as each call is first written.
                      sa.Index("ix_call_records_client_caller", "client_id", "from_number"))

    def __repr__(self):
        return f"<CallRecord {self.twilio_call_sid} {self.status}>"


class CallEvent(db.Model):
    """One webhook or callback of a call as it was received, kept so the call's story can be told later."""

    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The same request written twice (a webhook log replayed after a crash) is kept once; Twilio's retries twice.
    event_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    call_sid: Mapped[str] = mapped_column(sa.String(34), index=True)
    leg_sid: Mapped[str | None] = mapped_column(sa.String(34))
    kind: Mapped[str] = mapped_column(sa.String(20))
    sequence_number: Mapped[int | None]
    sent_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    params: Mapped[dict] = mapped_column(sa.JSON)

    def __repr__(self):
        return f"<CallEvent {self.call_sid} {self.kind} #{self.sequence_number}>"


class TestCall(db.Model):
    """"Test" on a number (SPEC §7): the dry check and, when asked, a live call, step by step."""

    __tablename__ = "test_calls"
    __test__ = False  # not a pytest test class, whatever its name says

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_assignment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("phone_assignments.id", ondelete="CASCADE"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    live: Mapped[bool] = mapped_column(default=True)
    # queued, checking, calling, webhook reached, forwarding, then one of FINAL_STEPS.
    step: Mapped[str] = mapped_column(sa.String(20), default="queued")
    result: Mapped[str | None] = mapped_column(sa.String(10))  # passed, failed; None while running
    detail: Mapped[str] = mapped_column(sa.String(500), default="")
    # Every step reached, in order: {"step", "ok" (true/false/null), "detail", "at" (ISO UTC)}.
    steps: Mapped[list] = mapped_column(sa.JSON, default=list)
    call_sid: Mapped[str | None] = mapped_column(sa.String(34), index=True)
    inbound_call_sid: Mapped[str | None] = mapped_column(sa.String(34), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    phone_assignment: Mapped[PhoneAssignment] = relationship()
    requested_by: Mapped[User | None] = relationship()

    def __repr__(self):
        return f"<TestCall {self.id} {self.step} {self.result}>"
