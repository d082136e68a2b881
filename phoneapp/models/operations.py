"""Keeping watch: the audit trail, alerts, background job runs, workers, health and Twilio's alerts."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from phoneapp.extensions import db
from phoneapp.models.base import utcnow

if TYPE_CHECKING:  # relationships are resolved by name; the classes are imported for the type checker
    from phoneapp.models.accounts import User
    from phoneapp.models.numbers import PhoneAssignment


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
