"""The free half of "Test" (SPEC §7.1): Twilio's configuration and phoneapp's own answer, no call placed."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from flask import current_app

from phoneapp.domain.phones import display_phone, is_dialable
from phoneapp.extensions import db
from phoneapp.services.call_context import plan_for
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

    caller = current_app.config["TEST_CALLER_ID"] or number.phone_number
    plan = plan_for(number.phone_number, caller)[0]
    answer = ask_own_webhook(number, caller, transport or webhook_transport())
    return [config_step, _answer_step(number, plan, answer, region)]


def _answer_step(number, plan, answer, region):
    """Whether phoneapp answered as the number's rules say it should now, and which rule that is."""
    name = "phoneapp's answer"
    if answer.error:
        return CheckStep(name, False, answer.error)
    if plan.rule == "blocked":
        return CheckStep(name, answer.rejected, f"The test caller is turned away: {plan.reason}")
    if plan.rule == "after-hours" and plan.action == "voicemail":
        return CheckStep(name, answer.voicemail, "After hours: straight to voicemail" if answer.voicemail
                         else "After hours, yet phoneapp did not answer with voicemail")
    expected = plan.targets[0] if plan.rule == "after-hours" else number.target_number
    rule = "After hours: " if plan.rule == "after-hours" else ""
    if expected is None:
        return CheckStep(name, False, "The number has nowhere to forward to")
    if not is_dialable(expected):
        return CheckStep(name, False, f"Forward target {expected} is not a valid phone number")
    if answer.dial_to == expected:
        return CheckStep(name, True, f"{rule}Forwards to {display_phone(expected, region)}")
    got = display_phone(answer.dial_to, region) if answer.dial_to else "no forward"
    return CheckStep(name, False, f"{rule}Answered with {got}, expected {display_phone(expected, region)}")


@dataclass(frozen=True)
class WebhookAnswer:
    dial_to: str | None = None
    error: str | None = None
    voicemail: bool = False
    rejected: bool = False


def ask_own_webhook(number, caller, transport):
    """POST /twilio/voice for the number, signed like Twilio; without a CallSid it is answered but not recorded."""
    config = current_app.config
    params = {"AccountSid": config["TWILIO_ACCOUNT_SID"], "To": number.phone_number, "From": caller,
              "CallStatus": "ringing", "Direction": "inbound"}
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
    return WebhookAnswer(dial_to=dialled.text.strip() if dialled is not None and dialled.text else None,
                         voicemail=document.find("Record") is not None, rejected=document.find("Reject") is not None)
