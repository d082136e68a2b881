"""The free half of "Test" (SPEC §7.1): Twilio's configuration and phoneapp's own answer, no call placed."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from flask import current_app

from phoneapp.domain.phones import display_phone, is_dialable
from phoneapp.extensions import db
from phoneapp.services.simulator import in_process_transport
from phoneapp.services.twilio_account import twilio
from phoneapp.services.verification import verify_number
from phoneapp.twilio.public_urls import public_url
from phoneapp.twilio.signed_requests import deliver, http_transport, signed_request

# Twilio gives a webhook 15 s; a check that waits longer tells staff nothing Twilio would not.
OWN_WEBHOOK_TIMEOUT = 15.0


@dataclass(frozen=True)
class CheckStep:
    name: str
    passed: bool
    detail: str


def webhook_transport():
    """How the check reaches /twilio/voice: in-process in the sandbox, else through the public URL as Twilio does."""
    app = current_app._get_current_object()
    return in_process_transport(app) if app.config["SANDBOX"] else http_transport(OWN_WEBHOOK_TIMEOUT)


def dry_check(number, transport=None):
    """Both checks for one number, each a CheckStep; the number's verification state is saved."""
    region = current_app.config["PHONE_REGION"]
    outcome = verify_number(number, twilio(), fix=False)
    db.session.commit()
    config_step = CheckStep(
        "Twilio's configuration", outcome == "ok",
        "Voice URL, fallback and status callback point at phoneapp" if outcome == "ok" else number.config_detail)

    expected = number.target_number
    answer = ask_own_webhook(number, transport or webhook_transport())
    if answer.error:
        webhook_step = CheckStep("phoneapp's answer", False, answer.error)
    elif expected is None:
        webhook_step = CheckStep("phoneapp's answer", False, "The number has nowhere to forward to")
    elif not is_dialable(expected):
        webhook_step = CheckStep("phoneapp's answer", False, f"Forward target {expected} is not a valid phone number")
    elif answer.dial_to == expected:
        webhook_step = CheckStep("phoneapp's answer", True, f"Forwards to {display_phone(expected, region)}")
    else:
        got = display_phone(answer.dial_to, region) if answer.dial_to else "no forward"
        webhook_step = CheckStep("phoneapp's answer", False,
                                 f"Answered with {got}, expected {display_phone(expected, region)}")
    return [config_step, webhook_step]


@dataclass(frozen=True)
class WebhookAnswer:
    dial_to: str | None = None
    error: str | None = None


def ask_own_webhook(number, transport):
    """POST /twilio/voice for the number, signed like Twilio; without a CallSid it is answered but not recorded."""
    config = current_app.config
    params = {"AccountSid": config["TWILIO_ACCOUNT_SID"], "To": number.phone_number,
              "From": config["TEST_CALLER_ID"] or number.phone_number, "CallStatus": "ringing",
              "Direction": "inbound"}
    request = signed_request(config["TWILIO_AUTH_TOKEN"], public_url("webhooks.voice"), params, kind="voice")
    sent = deliver(transport, request)
    if sent.error:
        return WebhookAnswer(error=f"Could not reach {sent.url}: {sent.error}")
    if sent.status != 200:
        return WebhookAnswer(error=f"{sent.url} answered HTTP {sent.status}")
    try:
        document = ET.fromstring(sent.body)
    except ET.ParseError:
        return WebhookAnswer(error=f"{sent.url} did not answer with TwiML")
    dialled = document.find("Dial/Number")
    return WebhookAnswer(dial_to=dialled.text.strip() if dialled is not None and dialled.text else None)
