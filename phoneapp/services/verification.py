"""Compare each number's Twilio configuration with phoneapp's, and fix it when asked."""
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import Alert, PhoneAssignment, utcnow
from phoneapp.services.alerts import raise_alert, resolve_alerts
from phoneapp.services.audit import record_audit
from phoneapp.twilio.gateway import NumberNotFound, TwilioError
from phoneapp.twilio.public_urls import expected_webhooks

OUTCOMES = ("ok", "fixed", "drift", "missing", "error")
# The open alerts a check can close; read once per bulk run so an unchanged number costs no write.
CHECK_ALERT_KINDS = ("number_missing", "webhook_drift")


def config_differences(number_config, expected):
    """Human-readable differences between Twilio's configuration and what phoneapp needs."""
    differences = []
    labels = {"voice_url": "voice URL", "voice_fallback_url": "fallback URL", "status_callback": "status callback"}
    for field, label in labels.items():
        actual = getattr(number_config, field)
        if actual != expected[field]:
            differences.append(f"{label} is {actual or 'empty'}")
    # Twilio ignores the voice URL while either of these is set.
    if number_config.voice_application_sid:
        differences.append(f"a TwiML app ({number_config.voice_application_sid}) overrides the voice URL")
    if number_config.trunk_sid:
        differences.append(f"a SIP trunk ({number_config.trunk_sid}) overrides the voice URL")
    return differences


def verify_number(number, gateway, *, fix, actor=None):
    """Check one number against Twilio; returns ok, fixed, drift, missing or error. The caller commits."""
    try:
        config = gateway.fetch_number(number.twilio_sid)
    except NumberNotFound:
        return _mark_missing(number)
    except TwilioError as exc:
        return _mark_unchecked(number, exc)
    return _check(number, config, gateway, expected_webhooks(), fix=fix, actor=actor)


def verify_numbers(gateway, *, fix, page_size=1000):
    """Verify every tracking number from one listing of the account; returns a count per outcome.

    Only numbers whose configuration differs cost a request of their own. A failed listing raises
    TwilioError before anything is marked, so the run can simply be retried.
    """
    # Read before listing: a number added meanwhile is left for the next run, never called missing.
    numbers = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.id)).all()
    listed = {config.sid: config for config in gateway.list_numbers(page_size=page_size)}
    open_alerts = {(kind, subject) for kind, subject in db.session.execute(
        sa.select(Alert.kind, Alert.subject).where(Alert.kind.in_(CHECK_ALERT_KINDS), Alert.resolved_at.is_(None)))}
    expected = expected_webhooks()
    counts = dict.fromkeys(OUTCOMES, 0)
    for number in numbers:
        config = listed.get(number.twilio_sid)
        if config is None:
            outcome = _mark_missing(number)
        else:
            outcome = _check(number, config, gateway, expected, fix=fix, open_alerts=open_alerts)
        counts[outcome] += 1
        if outcome == "fixed":
            # Twilio has already changed; its audit row must not wait on the rest of the run.
            db.session.commit()
    db.session.commit()
    return counts


def _check(number, config, gateway, expected, *, fix, actor=None, open_alerts=None):
    subject = f"number:{number.id}"
    differences = config_differences(config, expected)
    if differences and fix:
        before = {"voice_url": config.voice_url, "voice_fallback_url": config.voice_fallback_url,
                  "status_callback": config.status_callback,
                  "voice_application_sid": config.voice_application_sid, "trunk_sid": config.trunk_sid}
        try:
            config = gateway.update_number_webhooks(number.twilio_sid, **expected)
        except NumberNotFound:
            return _mark_missing(number)
        except TwilioError as exc:
            return _mark_unchecked(number, exc)
        record_audit("fix_webhook", number, before=before, after=expected, actor=actor)
    number.webhook_url = config.voice_url
    _mark_checked(number)
    _resolve("number_missing", subject, open_alerts)
    if differences and not fix:
        number.config_state = "drift"
        number.config_detail = ("Twilio's configuration differs: " + "; ".join(differences))[:500]
        raise_alert("webhook_drift", subject, f"{number.phone_number}: {number.config_detail}",
                    severity="error", phone_assignment_id=number.id)
        return "drift"
    number.config_state, number.config_detail = "ok", ""
    _resolve("webhook_drift", subject, open_alerts)
    return "fixed" if differences else "ok"


def _mark_checked(number):
    number.last_verified_at = utcnow()
    # The card says "verifying…" while a queued check has not run; this was that check.
    number.verify_queued_at = None


def _mark_missing(number):
    _mark_checked(number)
    number.config_state, number.config_detail = "missing", "Number is gone from the Twilio account"
    raise_alert("number_missing", f"number:{number.id}", f"{number.phone_number} is no longer in the Twilio account",
                severity="error", phone_assignment_id=number.id)
    return "missing"


def _mark_unchecked(number, exc):
    # The check ran and failed: the card must stop saying "verifying…", but nothing was verified.
    number.verify_queued_at = None
    number.config_state, number.config_detail = "error", f"Could not check Twilio: {exc.message}"[:500]
    return "error"


def _resolve(kind, subject, open_alerts):
    if open_alerts is None or (kind, subject) in open_alerts:
        resolve_alerts(kind, subject)
