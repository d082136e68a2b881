"""Compare each number's Twilio configuration with phoneapp's, and fix it when asked."""
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment, utcnow
from phoneapp.public_urls import expected_webhooks
from phoneapp.services.alerts import raise_alert, resolve_alerts
from phoneapp.services.audit import record_audit
from phoneapp.twilio_gateway import NumberNotFound, TwilioError


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
    """Check one number; returns ok, fixed, drift, missing or error. The caller commits."""
    subject = f"number:{number.id}"
    expected = expected_webhooks()
    try:
        config = gateway.fetch_number(number.twilio_sid)
        differences = config_differences(config, expected)
        if differences and fix:
            before = {"voice_url": config.voice_url, "voice_fallback_url": config.voice_fallback_url,
                      "status_callback": config.status_callback,
                      "voice_application_sid": config.voice_application_sid, "trunk_sid": config.trunk_sid}
            config = gateway.update_number_webhooks(number.twilio_sid, **expected)
            record_audit("fix_webhook", number, before=before, after=expected, actor=actor)
    except NumberNotFound:
        number.config_state, number.config_detail = "missing", "Number is gone from the Twilio account"
        raise_alert("number_missing", subject, f"{number.phone_number} is no longer in the Twilio account",
                    severity="error", phone_assignment_id=number.id)
        return "missing"
    except TwilioError as exc:
        number.config_state, number.config_detail = "error", f"Could not check Twilio: {exc.message}"[:500]
        return "error"
    number.webhook_url = config.voice_url
    number.last_verified_at = utcnow()
    resolve_alerts("number_missing", subject)
    if differences and not fix:
        number.config_state = "drift"
        number.config_detail = ("Twilio's configuration differs: " + "; ".join(differences))[:500]
        raise_alert("webhook_drift", subject, f"{number.phone_number}: {number.config_detail}",
                    severity="error", phone_assignment_id=number.id)
        return "drift"
    number.config_state, number.config_detail = "ok", ""
    resolve_alerts("webhook_drift", subject)
    return "fixed" if differences else "ok"


def verify_numbers(gateway, *, fix):
    """Verify every tracking number; returns a count per outcome."""
    counts = {"ok": 0, "fixed": 0, "drift": 0, "missing": 0, "error": 0}
    for number in db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.id)).all():
        counts[verify_number(number, gateway, fix=fix)] += 1
        db.session.commit()
    return counts
