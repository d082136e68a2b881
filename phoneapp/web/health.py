"""The Health page: each component's state, and how the background jobs are doing."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, current_app, g, render_template, request
from flask_login import login_required
from sqlalchemy.exc import SQLAlchemyError

from phoneapp.extensions import db
from phoneapp.jobs.registry import PERIODIC
from phoneapp.models import JobRun, utcnow
from phoneapp.services import health as health_service
from phoneapp.services.health import all_ok, check_database, current_health, down_components, outage_report
from phoneapp.web.htmx import is_htmx
from phoneapp.web.view_helpers import page_and_fragment

bp = Blueprint("health", __name__)

FAILED_RUNS_SHOWN = 10
JOB_BADGES = {"succeeded": "badge-ok", "failed": "severity-error", "running": "severity-info",
              "retrying": "severity-warning", "queued": "badge-muted"}
# A periodic job whose last run is older than two periods and this much more is not being scheduled.
OVERDUE_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class PeriodicJob:
    """A periodic job, how often it should run, and its latest run (None: never)."""

    name: str
    interval: int
    run: JobRun | None
    overdue: bool


def first_line(text) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def run_moment(run):
    """When the run last did something: its end, else its start, else when it was queued."""
    return run.finished_at or run.started_at or run.enqueued_at


def run_duration(run) -> str:
    if run.started_at is None or run.finished_at is None:
        return ""
    seconds = (run.finished_at - run.started_at).total_seconds()
    if seconds < 10:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def every(seconds) -> str:
    if seconds % 3600 == 0:
        return f"every {seconds // 3600} h"
    if seconds % 60 == 0:
        return f"every {seconds // 60} min"
    return f"every {seconds} s"


def periodic_jobs() -> list[PeriodicJob]:
    now = utcnow()
    jobs = []
    for periodic in PERIODIC:
        interval = periodic.interval_seconds(current_app.config)
        run = db.session.scalars(
            sa.select(JobRun).where(JobRun.name == periodic.job)
            .order_by(JobRun.enqueued_at.desc(), JobRun.id.desc()).limit(1)
        ).first()
        overdue = run is None or run.enqueued_at < now - timedelta(seconds=2 * interval) - OVERDUE_GRACE
        jobs.append(PeriodicJob(periodic.job, interval, run, overdue))
    return jobs


def recent_failures(limit=FAILED_RUNS_SHOWN) -> list[JobRun]:
    return db.session.scalars(
        sa.select(JobRun).where(JobRun.status == "failed")
        .order_by(sa.func.coalesce(JobRun.finished_at, JobRun.enqueued_at).desc(), JobRun.id.desc()).limit(limit)
    ).all()


def run_counts() -> dict:
    """How many runs are waiting (queued, or retrying after a failed attempt) and running now."""
    counts = dict(db.session.execute(
        sa.select(JobRun.status, sa.func.count())
        .where(JobRun.status.in_(("queued", "retrying", "running"))).group_by(JobRun.status)
    ).all())
    return {status: counts.get(status, 0) for status in ("queued", "retrying", "running")}


def live_context(components) -> dict:
    return {"components": components, "healthy": all_ok(components), "down": down_components(components),
            "periodic": periodic_jobs(), "failures": recent_failures(), "counts": run_counts(),
            "job_badges": JOB_BADGES, "first_line": first_line, "run_moment": run_moment,
            "run_duration": run_duration, "every": every, "outage": False}


@bp.before_request
def answer_while_database_is_down():
    """Logging in needs the database; with it down, a page that says so beats the 500 the login would give."""
    database = check_database()
    if database.ok:
        g.health_database = database
        return None
    components = outage_report(database)
    context = {"components": components, "healthy": False, "down": down_components(components), "outage": True}
    if is_htmx() or (request.view_args or {}).get("fragment"):
        return render_template("health/_health.html", **context), 503
    return render_template("health/health.html", **context), 503


@page_and_fragment(bp, "/health", "/partials/health")
@login_required
def index(fragment):
    """Every component with its state and reason, and the background jobs; or (`fragment`) that part alone, polled."""
    template = "health/_health.html" if fragment else "health/health.html"
    return render_template(template, **live_context(current_health(g.pop("health_database", None))))


@bp.app_template_global()
def silent_worker():
    """The worker's health when none runs any more, for the banner on every page; None otherwise.

    Asked once per request: the navigation's alert count and the banner must tell the same story.
    """
    if "silent_worker" not in g:
        try:
            g.silent_worker = health_service.silent_worker()
        except SQLAlchemyError:
            # The banner is a courtesy: a page about a failing database must still render.
            db.session.rollback()
            g.silent_worker = None
    return g.silent_worker


@bp.get("/partials/worker-banner")
@login_required
def worker_banner():
    """The banner alone, polled by every page so it comes and goes with the worker."""
    return render_template("health/_worker_banner.html", silent=silent_worker())
