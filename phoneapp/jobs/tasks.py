"""The jobs themselves: thin calls into the services, each returning a one-line summary.

An exception means the job failed; the queue retries it per JOB_RETRY_DELAYS and then shows it failed.
"""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from phoneapp.extensions import db
from phoneapp.models import HealthCheck, ImportedMonitorAlert, JobRun, PhoneAssignment, WorkerHeartbeat, utcnow
from phoneapp.services import assignments, call_tests, calls, health, monitor_alerts, verification
from phoneapp.services.twilio_account import twilio


def sync_numbers():
    counts = assignments.sync_numbers()
    return "{total} numbers in the account: {added} added, {updated} updated, {missing} gone".format(**counts)


def verify_numbers():
    counts = verification.verify_numbers(twilio(), fix=current_app.config["AUTO_FIX_WEBHOOKS"])
    return _verify_summary(counts)


def verify_some_numbers(number_ids):
    """Check the numbers a page found out of date (or staff asked about)."""
    counts = {"ok": 0, "fixed": 0, "drift": 0, "missing": 0, "error": 0}
    numbers = db.session.scalars(sa.select(PhoneAssignment).where(PhoneAssignment.id.in_(number_ids))
                                 .order_by(PhoneAssignment.id)).all()
    for number in numbers:
        counts[verification.verify_number(number, twilio(), fix=current_app.config["AUTO_FIX_WEBHOOKS"])] += 1
        number.verify_queued_at = None
        db.session.commit()
    if numbers and counts["error"] == len(numbers):
        raise RuntimeError(f"Twilio could not be asked about any of the {len(numbers)} numbers")
    return _verify_summary(counts)


def _verify_summary(counts):
    """What the run found, as the Health page shows it: problems first, in words that say so; setting a number's
    webhooks (every number, on a fresh install) is good news, and says what was done rather than "fixed"."""
    total = sum(counts.values())
    if not total:
        return "no numbers to check"
    parts = []
    if counts["drift"]:
        parts.append(_counted(counts["drift"], "differs from phoneapp's configuration and was left as it is",
                              "differ from phoneapp's configuration and were left as they are")
                     + " (auto-fix is off)")
    if counts["missing"]:
        parts.append(_counted(counts["missing"], "is", "are") + " gone from the Twilio account")
    if counts["error"]:
        parts.append(f"Twilio could not be asked about {counts['error']}")
    if counts["fixed"]:
        parts.append(" on ".join(filter(None, ("webhooks set to phoneapp", _all_of(counts["fixed"], total)))))
    if counts["ok"]:
        parts.append(" ".join(filter(None, (_all_of(counts["ok"], total), "already right"))))
    return f"{_counted(total, 'number', 'numbers')} checked: " + "; ".join(parts)


def _counted(count, one, many):
    return f"{count} {one if count == 1 else many}"


def _all_of(count, total):
    """'all 4' of 4, '2' of 4, and nothing at all for the one number checked."""
    if count == total:
        return f"all {count}" if count > 1 else ""
    return str(count)


def check_health():
    checks = health.run_health_checks()
    down = [check.component for check in checks if not check.ok]
    return f"down: {', '.join(down)}" if down else f"all {len(checks)} components ok"


def import_monitor_alerts():
    counts = monitor_alerts.import_monitor_alerts(twilio())
    return ", ".join(f"{value} {key}" for key, value in counts.items())


def run_test_call(test_call_id):
    return f"test call {test_call_id}: {call_tests.run_test_call(test_call_id)}"


def end_silent_calls():
    """End the calls whose final callback never came: the card would show them in progress for ever."""
    ended = calls.end_silent_calls(utcnow() - timedelta(seconds=current_app.config["CALL_SILENT_AFTER"]))
    return f"{ended} silent call{'' if ended == 1 else 's'} ended"


def prune_history():
    """Keep the bookkeeping tables small: old job runs, health readings and imported alert ids go."""
    now = utcnow()
    removed = 0
    for model, column, age in ((JobRun, JobRun.finished_at, timedelta(days=30)),
                               (HealthCheck, HealthCheck.checked_at, timedelta(days=7)),
                               (ImportedMonitorAlert, ImportedMonitorAlert.imported_at, timedelta(days=30)),
                               (WorkerHeartbeat, WorkerHeartbeat.last_seen_at, timedelta(days=1))):
        removed += db.session.execute(sa.delete(model).where(column < now - age)).rowcount
    db.session.commit()
    return f"{removed} old rows removed"
