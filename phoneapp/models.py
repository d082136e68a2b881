"""Database models (SPEC §2). Times are stored as naive UTC."""
from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from phoneapp.extensions import db

ROLES = ("admin", "staff")
# Ids are 32-bit INTEGER columns on PostgreSQL; a larger value would be a database error, not a miss.
MAX_ID = 2**31 - 1


def utcnow():
    """Naive UTC: SQLite keeps no zone, so every stored time is UTC by convention."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_session_token():
    """A fresh session generation for a user: every login cookie carries it, rotating it ends them all."""
    return secrets.token_urlsafe(32)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    role: Mapped[str] = mapped_column(sa.String(10), default="staff")
    is_active_user: Mapped[bool] = mapped_column("is_active", sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # The user's session generation. Flask-Login keeps get_id() ("<id>:<token>") in the session and any
    # remember cookie, so a new token here ends every session and remember cookie of this user at once.
    session_token: Mapped[str] = mapped_column(sa.String(64), default=new_session_token)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")

    __table_args__ = (sa.CheckConstraint("role in ('admin', 'staff')", name="role"),)

    @property
    def is_active(self):
        return self.is_active_user

    @property
    def is_admin(self):
        return self.role == "admin"

    def get_id(self):
        """Flask-Login's alternative id: the user and the session generation it was logged in under."""
        return f"{self.id}:{self.session_token}"

    def end_sessions(self):
        """Sign this user out everywhere: sessions and remember cookies saved so far stop working."""
        self.session_token = new_session_token()

    def set_password(self, password):
        """A new password ends the sessions opened with the old one."""
        self.password_hash = generate_password_hash(password)
        self.end_sessions()

    def check_password(self, password):
        return check_password_hash(self.password_hash, password)

    def __repr__(self):
        return f"<User {self.email} {self.role}>"


class ApiToken(db.Model):
    """A bearer token; only its SHA-256 is kept, the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")

    @staticmethod
    def hash_token(token):
        return hashlib.sha256(token.encode()).hexdigest()

    def __repr__(self):
        return f"<ApiToken {self.prefix}… user={self.user_id}>"


class Client(db.Model):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    phone: Mapped[str] = mapped_column(sa.String(20))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    notes: Mapped[str] = mapped_column(sa.Text, default="")
    is_active: Mapped[bool] = mapped_column(default=True)
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
                      sa.Index("ix_call_records_client_started", "client_id", "started_at"))

    def __repr__(self):
        return f"<CallRecord {self.twilio_call_sid} {self.status}>"


class AuditEvent(db.Model):
    """Who changed what: assignments, forward targets, webhook fixes."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    actor_label: Mapped[str] = mapped_column(sa.String(254), default="system")
    action: Mapped[str] = mapped_column(sa.String(40), index=True)
    subject_type: Mapped[str] = mapped_column(sa.String(40))
    subject_id: Mapped[int | None]
    before: Mapped[dict | None] = mapped_column(sa.JSON)
    after: Mapped[dict | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    actor: Mapped[User | None] = relationship()

    __table_args__ = (sa.Index("ix_audit_events_subject", "subject_type", "subject_id"),)

    def __repr__(self):
        return f"<AuditEvent {self.action} {self.subject_type}:{self.subject_id}>"


NOTICE_OWED = ("severity = 'error' AND (notified_open_at IS NULL OR "
               "(resolved_at IS NOT NULL AND notified_resolved_at IS NULL))")


class Alert(db.Model):
    """Something staff must see; one open row per (kind, subject), repeats counted."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    subject: Mapped[str] = mapped_column(sa.String(100))
    severity: Mapped[str] = mapped_column(sa.String(10), default="warning")
    message: Mapped[str] = mapped_column(sa.String(500))
    phone_assignment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("phone_assignments.id", ondelete="SET NULL"), index=True)
    occurrences: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None]
    # Admins hear of an error alert once when it opens and once when it resolves, never per repeat.
    # A notifier claims the alert first, so two workers never both send the same notice.
    notify_claimed_at: Mapped[datetime | None]
    notified_open_at: Mapped[datetime | None]
    notified_resolved_at: Mapped[datetime | None]
    notify_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    notify_detail: Mapped[str | None] = mapped_column(sa.String(500))

    phone_assignment: Mapped[PhoneAssignment | None] = relationship()
    acknowledged_by: Mapped[User | None] = relationship()

    __table_args__ = (
        sa.CheckConstraint("severity in ('info', 'warning', 'error')", name="severity"),
        # The database, not the code, guarantees one open alert per cause under concurrent webhooks.
        sa.Index("uq_alerts_open_kind_subject", "kind", "subject", unique=True,
                 sqlite_where=sa.text("resolved_at IS NULL"),
                 postgresql_where=sa.text("resolved_at IS NULL")),
        # Every worker looks for notices to send each second; only the few still owed are indexed.
        sa.Index("ix_alerts_notice_owed", "id", sqlite_where=sa.text(NOTICE_OWED),
                 postgresql_where=sa.text(NOTICE_OWED)),
    )

    def __repr__(self):
        return f"<Alert {self.kind} {self.subject} x{self.occurrences}>"


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


class JobRun(db.Model):
    """One background job, queued by a request or the scheduler and run by a worker; its fate stays visible."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(60))
    args: Mapped[list] = mapped_column(sa.JSON, default=list)
    # rq: Redis carries it to a worker; db: a worker without Redis claims it from this table.
    queue: Mapped[str] = mapped_column(sa.String(10), default="db")
    # A periodic run names the period it covers; the unique key lets only one worker claim each period.
    period_key: Mapped[int | None] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(12), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=1)
    timeout_seconds: Mapped[int] = mapped_column(default=180)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    worker: Mapped[str | None] = mapped_column(sa.String(120))
    summary: Mapped[str] = mapped_column(sa.String(500), default="")
    error: Mapped[str | None] = mapped_column(sa.Text)
    enqueued_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        sa.UniqueConstraint("name", "period_key", name="uq_job_runs_name_period"),
        sa.CheckConstraint("status in ('queued', 'running', 'retrying', 'succeeded', 'failed')", name="status"),
        sa.Index("ix_job_runs_status_run_after", "status", "run_after"),
    )

    def __repr__(self):
        return f"<JobRun {self.id} {self.name} {self.status}>"


class WorkerHeartbeat(db.Model):
    """A running worker process, seen alive at last_seen_at."""

    __tablename__ = "worker_heartbeats"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    mode: Mapped[str] = mapped_column(sa.String(10))  # rq or db
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


HEALTH_COMPONENTS = ("database", "redis", "worker", "twilio_api", "webhooks", "disk")


class HealthCheck(db.Model):
    """One reading of one component's health."""

    __tablename__ = "health_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    component: Mapped[str] = mapped_column(sa.String(20))
    ok: Mapped[bool]
    latency_ms: Mapped[float | None]
    detail: Mapped[str] = mapped_column(sa.String(500), default="")
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.Index("ix_health_checks_component_checked", "component", "checked_at"),)


class ImportedMonitorAlert(db.Model):
    """A Twilio Monitor alert already turned into an Alert, so a second import counts nothing twice."""

    __tablename__ = "imported_monitor_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(sa.String(34), unique=True)
    error_code: Mapped[str] = mapped_column(sa.String(10))
    phone_assignment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("phone_assignments.id", ondelete="SET NULL"))
    alert_created_at: Mapped[datetime]
    imported_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
