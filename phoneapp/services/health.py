"""Health of what phoneapp depends on: the database, Redis, the worker, the Twilio API, our webhooks and the disk.

The worker's health job runs every check and keeps a HealthCheck row per component. The page and the
API check the database, Redis, the worker and the disk live (cheap, and exactly what a visitor wants to know
now) and read the Twilio API and webhook results from the latest rows, so a page view never calls Twilio.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import redis
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from phoneapp.extensions import db
from phoneapp.models import HEALTH_COMPONENTS, Alert, HealthCheck, WorkerHeartbeat, utcnow
from phoneapp.services.alerts import raise_alert, resolve_alerts
from phoneapp.services.instance_folder import MIN_FREE_MB, disk_state
from phoneapp.services.twilio_account import twilio
from phoneapp.twilio.gateway import TwilioError

log = logging.getLogger(__name__)

LABELS = {"database": "Database", "redis": "Redis", "worker": "Worker", "twilio_api": "Twilio API",
          "webhooks": "Webhooks", "disk": "Disk"}
# A worker beats far more often than this; one silent for longer is stopped or stuck.
# A worker that stops says so in its heartbeat's mode; its row stays, so the page can tell when it stopped.
WORKER_STOPPED = "stopped"
REDIS_TIMEOUT = 2
DETAIL_LIMIT = 500
WORKER_HINT = "is the worker (python worker.py) running?"
ALERT_KIND = "component_down"
# Open alerts of these kinds mean Twilio cannot reach phoneapp, or would not ask it, for some number.
WEBHOOK_ALERT_KINDS = ("webhook_drift", "number_missing", "twilio_webhook_error")


@dataclass(frozen=True)
class ComponentHealth:
    """One component as the page and the API show it."""

    component: str
    ok: bool
    detail: str
    latency_ms: float | None = None
    checked_at: datetime | None = None

    @property
    def label(self) -> str:
        return LABELS[self.component]


def all_ok(components) -> bool:
    return all(component.ok for component in components)


def down_components(components) -> list:
    return [component for component in components if not component.ok]


def health_summary(components) -> str:
    """One line for the health job's run: all ok, or what is down."""
    down = down_components(components)
    if not down:
        return f"all {len(components)} components ok"
    return "down: " + ", ".join(LABELS.get(c.component, c.component) for c in down)


# -- the checks ---------------------------------------------------------------------------------

def _milliseconds(started) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def shown_ms(latency) -> str:
    """Milliseconds as a person reads them: a fraction only where it matters."""
    return f"{latency:.1f} ms" if latency < 10 else f"{latency:.0f} ms"


def _first_line(error) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_database() -> ComponentHealth:
    """A live SELECT 1; the driver's reason goes to the log, since nobody can be logged in to read it."""
    started = time.perf_counter()
    try:
        db.session.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as exc:
        latency = _milliseconds(started)
        log.warning("health: the database did not answer: %s", _first_line(getattr(exc, "orig", None) or exc))
        try:
            db.session.rollback()
        except SQLAlchemyError:
            pass
        reason = type(getattr(exc, "orig", None) or exc).__name__
        return ComponentHealth("database", False, latency_ms=latency, checked_at=utcnow(),
                               detail=f"the database did not answer ({reason}, after {shown_ms(latency)}); phoneapp "
                                      "can neither read nor record anything until it is back. The server log "
                                      "has the full error.")
    latency = _milliseconds(started)
    name = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(db.session.get_bind().dialect.name, "The database")
    return ComponentHealth("database", True, latency_ms=latency, checked_at=utcnow(),
                           detail=f"{name} answered in {shown_ms(latency)}")


def redis_location(url) -> str:
    """Where Redis is, without the password a URL may carry."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    database = parts.path.strip("/")
    return f"{where}/{database}" if database else where


def check_redis() -> ComponentHealth:
    """A live PING with a short timeout, so a dead Redis cannot hang the page."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        return ComponentHealth("redis", True, checked_at=utcnow(),
                               detail="not used: jobs run from the database queue")
    where = redis_location(url)
    started = time.perf_counter()
    connection = redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
    try:
        connection.ping()
    except (redis.RedisError, OSError) as exc:
        latency = _milliseconds(started)
        return ComponentHealth("redis", False, latency_ms=latency, checked_at=utcnow(),
                               detail=f"Redis at {where} is down: {_first_line(exc)}. Jobs cannot be queued "
                                      "until it is back.")
    finally:
        connection.close()
    latency = _milliseconds(started)
    return ComponentHealth("redis", True, latency_ms=latency, checked_at=utcnow(),
                           detail=f"Redis at {where} answered PING in {shown_ms(latency)}")


def elapsed(seconds) -> str:
    """'3 s', '5 min', '2 h', '3 days': how long ago, for a detail line."""
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def check_worker() -> ComponentHealth:
    """From the workers' heartbeats: ok while one that has not stopped was seen within WORKER_SILENT_AFTER."""
    silent_after = timedelta(seconds=current_app.config["WORKER_SILENT_AFTER"])
    now = utcnow()
    running = WorkerHeartbeat.mode != WORKER_STOPPED
    latest, alive = db.session.execute(
        sa.select(sa.func.max(WorkerHeartbeat.last_seen_at),
                  sa.func.count().filter(WorkerHeartbeat.last_seen_at >= now - silent_after, running))
    ).one()
    if latest is None:
        return ComponentHealth("worker", False, checked_at=now,
                               detail=f"no worker has ever reported — {WORKER_HINT}")
    ago = elapsed((now - latest).total_seconds())
    if not alive:
        stopped = db.session.scalar(sa.select(WorkerHeartbeat.mode).where(WorkerHeartbeat.last_seen_at == latest)
                                    .limit(1)) == WORKER_STOPPED
        what = f"the last worker stopped {ago} ago" if stopped else f"no worker has reported for {ago}"
        return ComponentHealth("worker", False, checked_at=now, detail=f"{what} — {WORKER_HINT}")
    return ComponentHealth("worker", True, checked_at=now,
                           detail=f"{alive} worker{'s' if alive != 1 else ''}, last seen {ago} ago")


def silent_worker() -> ComponentHealth | None:
    """The worker's health when workers have run here and none runs now; None when one runs (or none ever did).

    Without a worker nothing checks health, so the web side notices instead: the first page to see the silence
    opens the worker's alert (the worker's own health check closes it once it is back).
    """
    if not db.session.scalar(sa.select(sa.exists().where(WorkerHeartbeat.id.is_not(None)))):
        return None
    health = check_worker()
    if health.ok:
        return None
    subject = f"component:{health.component}"
    already_open = db.session.scalar(sa.select(sa.exists().where(
        Alert.kind == ALERT_KIND, Alert.subject == subject, Alert.resolved_at.is_(None))))
    if not already_open:
        raise_alert(ALERT_KIND, subject, f"{health.label} is down: {health.detail}"[:DETAIL_LIMIT], severity="error")
        db.session.commit()
    return health


def check_twilio_api() -> ComponentHealth:
    """Fetch the account, timed: ok when Twilio answers and the account is active."""
    token = current_app.config.get("TWILIO_AUTH_TOKEN") or ""
    started = time.perf_counter()
    try:
        account = twilio().fetch_account()
    except TwilioError as exc:
        latency = _milliseconds(started)
        reason = _first_line(exc)
        if token:
            reason = reason.replace(token, "[auth token]")
        code = f" (Twilio error {exc.code})" if exc.code else ""
        return ComponentHealth("twilio_api", False, latency_ms=latency, checked_at=utcnow(),
                               detail=f"fetching the account failed after {shown_ms(latency)}{code}: {reason}")
    latency = _milliseconds(started)
    status = account.get("status") or "unknown"
    if status != "active":
        return ComponentHealth("twilio_api", False, latency_ms=latency, checked_at=utcnow(),
                               detail=f"the Twilio account is {status}, not active: calls will not be "
                                      f"forwarded (answered in {shown_ms(latency)})")
    return ComponentHealth("twilio_api", True, latency_ms=latency, checked_at=utcnow(),
                           detail=f"account active, answered in {shown_ms(latency)}")


def check_disk() -> ComponentHealth:
    """The instance folder, where webhooks are logged before they are answered and the routing cache is kept."""
    started = time.perf_counter()
    ok, detail = disk_state(current_app.instance_path, current_app.config["WEBHOOK_LOG_PATH"],
                            current_app.config.get("DISK_MIN_FREE_MB", MIN_FREE_MB))
    return ComponentHealth("disk", ok, detail=detail, latency_ms=_milliseconds(started), checked_at=utcnow())


def _plural(count, one, many):
    return f"{count} {one if count == 1 else many}"


def check_webhooks() -> ComponentHealth:
    """Ok when no open alert says a number's webhooks are wrong, gone or failing at Twilio."""
    rows = db.session.execute(
        sa.select(Alert.kind, Alert.phone_assignment_id, Alert.subject)
        .where(Alert.resolved_at.is_(None), Alert.kind.in_(WEBHOOK_ALERT_KINDS))
    ).all()
    # Several alerts about one number (two error codes, say) are one number with a problem.
    affected = {kind: set() for kind in WEBHOOK_ALERT_KINDS}
    for kind, number_id, subject in rows:
        affected[kind].add(number_id if number_id is not None else subject)
    drift, missing, errors = (len(affected[kind]) for kind in WEBHOOK_ALERT_KINDS)
    if not (drift or missing or errors):
        return ComponentHealth("webhooks", True, checked_at=utcnow(),
                               detail="no number has a webhook problem")
    parts = []
    if drift:
        parts.append(_plural(drift, "number differs", "numbers differ") + " from phoneapp's configuration")
    if missing:
        parts.append(_plural(missing, "number is", "numbers are") + " gone from the Twilio account")
    if errors:
        parts.append(_plural(errors, "number", "numbers") + " had Twilio webhook errors")
    return ComponentHealth("webhooks", False, checked_at=utcnow(), detail="; ".join(parts))


# -- the worker's job ---------------------------------------------------------------------------

CHECKS = {"database": check_database, "redis": check_redis, "worker": check_worker,
          "twilio_api": check_twilio_api, "webhooks": check_webhooks, "disk": check_disk}


def run_health_checks() -> list[HealthCheck]:
    """Check every component, keep a HealthCheck row each, and open or close its component_down alert.

    With the database down nothing can be kept: that raises, so the job's run shows as failed.
    """
    database = check_database()
    if not database.ok:
        raise RuntimeError(f"health checks not recorded: {database.detail}")
    results = [database] + [CHECKS[name]() for name in HEALTH_COMPONENTS if name != "database"]
    rows = []
    for result in results:
        row = HealthCheck(component=result.component, ok=result.ok, latency_ms=result.latency_ms,
                          detail=result.detail[:DETAIL_LIMIT], checked_at=result.checked_at or utcnow())
        db.session.add(row)
        rows.append(row)
        if result.component == "webhooks":
            continue  # each number's own alert already says what is wrong with it, and notifies
        subject = f"component:{result.component}"
        if result.ok:
            resolve_alerts(ALERT_KIND, subject)
        else:
            raise_alert(ALERT_KIND, subject, f"{result.label} is down: {result.detail}"[:DETAIL_LIMIT],
                        severity="error")
    db.session.commit()
    return rows


# -- what the page and the API show -------------------------------------------------------------

def stale_after() -> timedelta:
    """A stored reading older than this means the health job stopped running."""
    return timedelta(seconds=3 * current_app.config["HEALTH_CHECK_INTERVAL"] + 60)


def latest_check(component) -> HealthCheck | None:
    return db.session.scalars(
        sa.select(HealthCheck).where(HealthCheck.component == component)
        .order_by(HealthCheck.checked_at.desc(), HealthCheck.id.desc()).limit(1)
    ).first()


def stored_health(component) -> ComponentHealth:
    """The worker's latest reading of `component`; a missing or stale one is not ok."""
    row = latest_check(component)
    if row is None:
        return ComponentHealth(component, False,
                               detail=f"not checked yet: the worker checks this every "
                                      f"{elapsed(current_app.config['HEALTH_CHECK_INTERVAL'])} — {WORKER_HINT}")
    age = utcnow() - row.checked_at
    if age > stale_after():
        was = "ok" if row.ok else "down"
        return ComponentHealth(component, False, latency_ms=row.latency_ms, checked_at=row.checked_at,
                               detail=f"last checked {elapsed(age.total_seconds())} ago (then {was}: {row.detail}); "
                                      f"no check since — {WORKER_HINT}")
    return ComponentHealth(component, row.ok, detail=row.detail, latency_ms=row.latency_ms,
                           checked_at=row.checked_at)


def unknown_without_database(component) -> ComponentHealth:
    return ComponentHealth(component, False, checked_at=utcnow(),
                           detail="unknown: the database cannot be read, so this cannot be checked")


def current_health(database: ComponentHealth | None = None) -> list[ComponentHealth]:
    """Every component, in HEALTH_COMPONENTS order; never raises when the database is down.

    `database` is a check made moments ago in the same request, so it is not made twice.
    """
    database = database or check_database()
    components = {"database": database, "redis": check_redis(), "disk": check_disk()}
    for component in ("worker", "twilio_api", "webhooks"):
        if not database.ok:
            components[component] = unknown_without_database(component)
            continue
        try:
            components[component] = check_worker() if component == "worker" else stored_health(component)
        except OperationalError as exc:
            # The database went away between the SELECT 1 and this read.
            log.warning("health: reading %s failed: %s", component, _first_line(exc))
            db.session.rollback()
            components[component] = unknown_without_database(component)
    components["database"] = with_waiting_webhooks(components["database"])
    set_aside = current_app.extensions["phoneapp.webhook_log"].quarantined_count()
    if set_aside:
        webhooks = components["webhooks"]
        components["webhooks"] = replace(
            webhooks, ok=False, detail=f"{set_aside} logged webhook(s) could not be written and were set aside in "
                                       f"webhook-log/failed/ of the instance folder; {webhooks.detail}")
    return [components[name] for name in HEALTH_COMPONENTS]


def with_waiting_webhooks(database: ComponentHealth) -> ComponentHealth:
    """The database's line, saying how many webhooks this server has logged but not yet written, if any."""
    waiting, since = current_app.extensions["phoneapp.webhook_log"].waiting()
    if not waiting:
        return database
    since_text = f" since {since:%Y-%m-%d %H:%M:%S} UTC" if since else ""
    note = (f"{waiting} webhook(s) waiting on this server{since_text}"
            + (", being written now" if database.ok else ", written when it returns"))
    return replace(database, detail=f"{database.detail}; {note}")


def outage_report(database: ComponentHealth) -> list[ComponentHealth]:
    """What anyone may be told while the database is down: that, and nothing else phoneapp knows."""
    return [with_waiting_webhooks(database)] + [
        ComponentHealth(component, False, checked_at=utcnow(),
                        detail="not shown: without the database phoneapp cannot tell who is asking, "
                               "nor read this component's checks")
        for component in HEALTH_COMPONENTS if component != "database"]
