"""Outbound webhook deliveries sent in the background, at least once, signed per Standard Webhooks (SPEC §10).

Every worker calls deliver_due_webhooks() about once a second, all at once. A delivery is claimed by a
conditional UPDATE that counts the attempt and holds it for a lease, and the attempt's log row is inserted,
both committed before anything is sent: (delivery, attempt) is unique, so no two workers ever send the same
attempt. A worker killed while sending leaves a claim that expires; the next worker sends it as the next attempt.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import exc as sa_exc
from standardwebhooks.webhooks import Webhook

from phoneapp.extensions import db
from phoneapp.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent, utcnow
from phoneapp.services.alerts import raise_alert, resolve_alerts
from phoneapp.services.webhook_transport import post_webhook

log = logging.getLogger(__name__)

# The wait after the 1st, 2nd, … failed attempt (the Standard Webhooks schedule): about a day in all.
RETRY_DELAYS = (timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                timedelta(hours=5), timedelta(hours=10), timedelta(hours=10))
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
SEND_TIMEOUT = 10.0
# Longer than any one send can take, so only a dead worker's claim runs out.
CLAIM_LEASE = timedelta(seconds=60)
# An endpoint whose every attempt failed this long is switched off.
FAILING_LIMIT = timedelta(hours=24)
BATCH_SIZE = 20
# The scheduler's tick waits on this; a slow receiver must not stop the worker's heartbeat.
TIME_BUDGET = 5.0
DISABLED_ALERT = "webhook_endpoint_disabled"
USER_AGENT = "phoneapp"
ABANDONED = "no outcome recorded: the worker sending it stopped before the receiver answered"


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds for one attempt, with everything needed to send it after the commit."""

    delivery_id: int
    attempt: int
    endpoint_id: int
    url: str
    secret: str
    event_id: str
    payload: dict


def endpoint_alert_subject(endpoint_id):
    return f"webhook_endpoint:{endpoint_id}"


def deliver_due_webhooks(now=None, sender="") -> int:
    """Send the deliveries that are due, each one attempt; how many this worker attempted."""
    fixed_now = now
    clock = (lambda: fixed_now) if fixed_now is not None else utcnow
    started = time.monotonic()
    due = db.session.execute(_due_query(clock())).all()
    db.session.rollback()
    attempted = 0
    for delivery_id, attempt in due:
        if time.monotonic() - started > TIME_BUDGET:
            break
        claim = _claim(delivery_id, attempt, clock(), sender)
        if claim is None:
            continue
        attempted += 1
        sent_at = clock()
        result = _send(claim)
        _record(claim, result, sent_at + timedelta(seconds=result.seconds))
    return attempted


def _due_query(now):
    return (sa.select(WebhookDelivery.id, WebhookDelivery.attempt)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now,
                   sa.or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until <= now),
                   WebhookEndpoint.is_active.is_(True))
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(BATCH_SIZE))


def _claim(delivery_id, seen_attempt, now, sender) -> Claim | None:
    try:
        claimed = db.session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.state == "pending",
                   WebhookDelivery.attempt == seen_attempt, WebhookDelivery.next_attempt_at <= now,
                   sa.or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until <= now))
            .values(attempt=WebhookDelivery.attempt + 1, claimed_until=now + CLAIM_LEASE, updated_at=now)
            .execution_options(synchronize_session=False)).rowcount == 1
        if not claimed:
            db.session.rollback()
            return None
        attempt = seen_attempt + 1
        db.session.execute(
            sa.update(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id, WebhookAttempt.attempt < attempt,
                   WebhookAttempt.finished_at.is_(None))
            .values(error=ABANDONED).execution_options(synchronize_session=False))
        db.session.add(WebhookAttempt(delivery_id=delivery_id, attempt=attempt, started_at=now,
                                      sender=(sender or "")[:100]))
        row = db.session.execute(
            sa.select(WebhookEndpoint.id, WebhookEndpoint.url, WebhookEndpoint.secret, WebhookEvent.event_id,
                      WebhookEvent.payload)
            .select_from(WebhookDelivery)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.id == delivery_id)).one()
        db.session.commit()
    except sa_exc.IntegrityError:
        # Another worker logged this attempt first: it is theirs to send.
        db.session.rollback()
        return None
    return Claim(delivery_id, attempt, row.id, row.url, row.secret, row.event_id, row.payload)


def signed_request(claim: Claim, moment: datetime):
    """The body and headers of one delivery, signed for `moment` (the webhook-timestamp)."""
    body = json.dumps(claim.payload, separators=(",", ":"), ensure_ascii=False)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": claim.event_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(claim.secret).sign(claim.event_id, moment, body),
    }
    return body.encode("utf-8"), headers


def _send(claim: Claim):
    # Signed with the real clock: the receiver checks the timestamp against its own.
    body, headers = signed_request(claim, datetime.now(UTC))
    return post_webhook(claim.url, body, headers, allow_private=current_app.config["OUTBOUND_WEBHOOKS_ALLOW_PRIVATE"],
                        timeout=SEND_TIMEOUT)


def _record(claim: Claim, result, finished_at):
    db.session.execute(
        sa.update(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == claim.delivery_id, WebhookAttempt.attempt == claim.attempt)
        .values(finished_at=finished_at, response_code=result.status, error=result.error)
        .execution_options(synchronize_session=False))
    # A later claim (this one's lease ran out) owns the delivery now; only this attempt's log is ours.
    mine = sa.and_(WebhookDelivery.id == claim.delivery_id, WebhookDelivery.attempt == claim.attempt)
    if result.ok:
        db.session.execute(
            sa.update(WebhookDelivery).where(mine)
            .values(state="delivered", response_code=result.status, last_error=None, delivered_at=finished_at,
                    claimed_until=None, updated_at=finished_at)
            .execution_options(synchronize_session=False))
        db.session.execute(
            sa.update(WebhookEndpoint)
            .where(WebhookEndpoint.id == claim.endpoint_id, WebhookEndpoint.failing_since.is_not(None))
            .values(failing_since=None).execution_options(synchronize_session=False))
        resolve_alerts(DISABLED_ALERT, endpoint_alert_subject(claim.endpoint_id))
    else:
        gave_up = claim.attempt >= MAX_ATTEMPTS
        next_at = None if gave_up else finished_at + RETRY_DELAYS[claim.attempt - 1]
        db.session.execute(
            sa.update(WebhookDelivery).where(mine)
            .values(state="failed" if gave_up else "pending", response_code=result.status, last_error=result.error,
                    next_attempt_at=next_at, claimed_until=None, updated_at=finished_at)
            .execution_options(synchronize_session=False))
        _note_failure(claim, result, finished_at)
        log.info("outbound webhook %s to %s, attempt %s: %s", claim.event_id, claim.url, claim.attempt, result.error)
    db.session.commit()


def _note_failure(claim: Claim, result, now):
    db.session.execute(
        sa.update(WebhookEndpoint)
        .where(WebhookEndpoint.id == claim.endpoint_id, WebhookEndpoint.failing_since.is_(None))
        .values(failing_since=now).execution_options(synchronize_session=False))
    failing_since = db.session.scalar(
        sa.select(WebhookEndpoint.failing_since).where(WebhookEndpoint.id == claim.endpoint_id))
    if failing_since is None or now - failing_since < FAILING_LIMIT:
        return
    reason = f"Every delivery failed for 24 hours (last: {result.error})"[:500]
    # failing_since stays: an endpoint off because it failed is still owed every new event, delivered once it is
    # switched back on (which clears it, giving it a whole day again).
    switched_off = db.session.execute(
        sa.update(WebhookEndpoint)
        .where(WebhookEndpoint.id == claim.endpoint_id, WebhookEndpoint.is_active.is_(True))
        .values(is_active=False, disabled_at=now, disabled_reason=reason)
        .execution_options(synchronize_session=False)).rowcount == 1
    if switched_off:
        raise_alert(DISABLED_ALERT, endpoint_alert_subject(claim.endpoint_id),
                    f"Webhook endpoint {claim.url} switched off: {reason}"[:500], severity="error")
        log.warning("outbound webhooks: endpoint %s switched off: %s", claim.url, reason)
