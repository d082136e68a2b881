"""Per-call notices (SPEC §10): a client's missed, voicemail and answered calls told by e-mail and text, once.

A settling call queues one CallNotice row per event, channel and recipient; the unique key makes the
row the promise to send it once, however many workers settle at the same moment. Every worker calls
send_due_call_notices() about once a second: a notice is sent only by the worker whose conditional
UPDATE claimed it, and the claim is committed before anything is sent. A claim left by a worker that
died goes stale and another worker takes the notice over.
"""
from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from phoneapp.domain.clock import format_local
from phoneapp.domain.durations import format_duration
from phoneapp.domain.phones import display_phone
from phoneapp.extensions import db
from phoneapp.models import CallNotice, CallRecord, Client, utcnow
from phoneapp.services.claims import claim_each
from phoneapp.services.client_rules import NOTICE_EVENTS
from phoneapp.services.db_utils import insert_for
from phoneapp.services.notifications import (
    email_message,
    send_email,
    sms_sender,
    smtp_problem,
    smtp_server_name,
)
from phoneapp.services.twilio_account import twilio
from phoneapp.twilio.gateway import TwilioError
from phoneapp.twilio.public_urls import public_url

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
# Longer than any one send can take (SMTP and Twilio both time out well before), so only a dead worker's claim expires.
CLAIM_TIMEOUT = timedelta(minutes=5)
# The wait after the 1st, 2nd, … failed attempt: a mail server down for a while must not use up every attempt.
RETRY_DELAYS = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(minutes=30),
                timedelta(hours=2))
BATCH_SIZE = 50
DETAIL_LIMIT = 500
SUBJECT_LIMIT = 200
SMS_LIMIT = 320
TIME_FORMAT = "%a %b %-d %Y, %H:%M %Z"
SHORT_TIME_FORMAT = "%b %-d %H:%M"
HEADINGS = {"missed": "Missed call", "voicemail": "Voicemail", "answered": "Answered call"}


def queue_call_notices(record, outcome) -> int:
    """Queue the notices `record`'s client wants for a call that ended `outcome` (called as the call settles).

    Does not commit: the rows belong to the caller's transaction, which also marks the call settled.
    """
    if outcome not in NOTICE_EVENTS or record.client_id is None:
        return 0
    client = db.session.get(Client, record.client_id)
    if client is None or outcome not in (client.notify_on or ()):
        return 0
    now = utcnow()
    recipients = [("email", address) for address in client.notify_emails or ()]
    recipients += [("sms", number) for number in client.notify_sms or ()]
    rows = [{"call_record_id": record.id, "event": outcome, "channel": channel, "recipient": recipient,
             "state": "pending", "attempts": 0, "next_attempt_at": now, "detail": "", "created_at": now}
            for channel, recipient in recipients]
    if not rows:
        return 0
    db.session.execute(insert_for(CallNotice).values(rows).on_conflict_do_nothing(
        index_elements=["call_record_id", "event", "channel", "recipient"]))
    return len(rows)


def notices_for_call(call_id) -> list[CallNotice]:
    """The notices owed for one call, in the order they were queued: who was told what, and how it went."""
    return db.session.scalars(
        sa.select(CallNotice).where(CallNotice.call_record_id == call_id).order_by(CallNotice.id)).all()


# -- sending ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One notice as it goes out, built while the notice is claimed."""

    notice_id: int
    channel: str
    recipient: str
    subject: str
    body: str
    attempts_before: int


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt: sent, or why not and whether trying again can help."""

    sent: bool
    detail: str
    permanent: bool = False


def send_due_call_notices(now=None) -> int:
    """Send every notice that is due; returns how many this worker sent."""
    now = now or utcnow()
    return sum(_deliver(notice_id, claimed_at=now) for notice_id in claim_each(
        CallNotice, CallNotice.claimed_at, _due(now), now=now, timeout=CLAIM_TIMEOUT, limit=BATCH_SIZE))


def _due(now):
    return sa.and_(CallNotice.state == "pending", CallNotice.next_attempt_at <= now)


def _deliver(notice_id, claimed_at) -> int:
    notice = db.session.get(CallNotice, notice_id, populate_existing=True)
    if notice is None:
        db.session.commit()
        return 0
    try:
        message = build_message(notice)
    except Exception as exc:
        log.exception("call notice %s could not be written", notice_id)
        message, result = None, Outcome(False, f"could not be written: {type(exc).__name__}")
    attempts_before = notice.attempts
    # No transaction may stay open while a slow mail server or Twilio is answering.
    db.session.commit()
    if message is not None:
        try:
            result = _send(message)
        except Exception as exc:
            # Counted as a failed attempt, so a notice that always hits the same bug stops after MAX_ATTEMPTS.
            log.exception("call notice %s: sending failed", notice_id)
            result = Outcome(False, f"sending failed: {type(exc).__name__}")
    _record(notice_id, attempts_before, result, claimed_at)
    return 1 if result.sent else 0


def _record(notice_id, attempts_before, result, claimed_at):
    """Mark the notice sent, or count the failed attempt; only while this worker's claim still holds."""
    now = utcnow()
    attempts = attempts_before + 1
    if result.sent:
        values = {"state": "delivered", "sent_at": now, "detail": result.detail}
    elif result.permanent or attempts >= MAX_ATTEMPTS:
        values = {"state": "failed", "detail": f"gave up after {attempts} attempt{'s' if attempts > 1 else ''}: "
                                               f"{result.detail}"}
        log.warning("call notice %s failed: %s", notice_id, values["detail"])
    else:
        delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
        values = {"next_attempt_at": now + delay, "detail": f"{result.detail}; retrying in {_spoken(delay)}"}
        log.warning("call notice %s not sent: %s", notice_id, values["detail"])
    values.update(attempts=attempts, claimed_at=None, detail=_clip(values["detail"], DETAIL_LIMIT))
    db.session.execute(
        sa.update(CallNotice).where(CallNotice.id == notice_id, CallNotice.claimed_at == claimed_at)
        .values(**values).execution_options(synchronize_session=False))
    db.session.commit()


def _send(message) -> Outcome:
    if message.channel == "email":
        return _send_email(message)
    return _send_text(message)


def _send_email(message) -> Outcome:
    smtp_url = current_app.config["SMTP_URL"]
    if not smtp_url:
        return Outcome(False, "e-mail not sent: SMTP_URL is not set")
    where = smtp_server_name(smtp_url)
    try:
        refused = send_email(smtp_url, email_message(message, [message.recipient]))
    except smtplib.SMTPRecipientsRefused as exc:
        codes = ", ".join(str(code) for code, _reason in exc.recipients.values())
        return Outcome(False, f"refused by {where} ({codes})", permanent=_all_permanent(exc.recipients))
    except (smtplib.SMTPException, OSError) as exc:
        return Outcome(False, f"e-mail via {where} failed: {smtp_problem(exc)}")
    if refused:
        return Outcome(False, f"refused by {where}", permanent=_all_permanent(refused))
    return Outcome(True, f"e-mailed via {where}")


def _all_permanent(recipients):
    # A 5xx for the address (no such mailbox) will not change by retrying; a 4xx (mailbox busy) may.
    return all(500 <= code < 600 for code, _reason in recipients.values())


def _send_text(message) -> Outcome:
    sender = sms_sender()
    if not sender:
        return Outcome(False, "SMS not sent: set ALERT_SMS_FROM to a number of the Twilio account")
    try:
        sid = twilio().send_sms(to=message.recipient, from_=sender, body=message.body)
    except TwilioError as exc:
        # Twilio's 4xx (an invalid or unreachable number) stays so; its 5xx and time-outs may pass.
        permanent = exc.status is not None and 400 <= exc.status < 500 and exc.status != 429
        return Outcome(False, f"SMS failed: {exc.message}", permanent=permanent)
    return Outcome(True, f"texted ({sid})")


# -- what the notice says ----------------------------------------------------------------------------


def build_message(notice) -> Message:
    """The e-mail or text for `notice`: what happened, to which call, and the link to the call's page."""
    record = db.session.get(CallRecord, notice.call_record_id)
    facts = _facts(record, notice.event)
    if notice.channel == "email":
        body = "\n".join([
            facts.opening, "",
            *(f"{label + ':':<17}{value}" for label, value in facts.lines), "",
            f"The call: {facts.link}", "",
            f"Sent to {notice.recipient}, which is told of {facts.event_words} for {facts.client_name}. "
            "To change who hears of which calls, ask the agency that manages this number.",
        ]) + "\n"
    else:
        body = _clip(f"{facts.heading} for {facts.client_name} from {facts.caller_short}, {facts.short_when}"
                     f"{facts.sms_extra}.", SMS_LIMIT - len(facts.link) - 1) + " " + facts.link
    return Message(notice_id=notice.id, channel=notice.channel, recipient=notice.recipient,
                   subject=_clip(f"{facts.heading} for {facts.client_name} from {facts.caller_short}", SUBJECT_LIMIT),
                   body=body, attempts_before=notice.attempts)


@dataclass(frozen=True)
class Facts:
    heading: str
    event_words: str
    client_name: str
    caller_short: str
    short_when: str
    sms_extra: str
    opening: str
    lines: list
    link: str


def _facts(record, event) -> Facts:
    config = current_app.config
    client = record.client
    number = record.phone_assignment
    zone = (client.timezone if client is not None else None) or config["APP_TIMEZONE"]
    client_name = client.name if client is not None else "a former client"
    caller = _shown(record.from_number) or "an unknown caller"
    tracking = _shown(record.to_number or (number.phone_number if number is not None else ""))
    if number is not None and number.friendly_name:
        tracking += f" ({number.friendly_name})"
    who = ", ".join(part for part in (caller, record.caller_name, _place(record)) if part)
    lines = [("Caller", who), ("Tracking number", tracking),
             ("When", format_local(record.started_at, zone, TIME_FORMAT))]
    if record.duration is not None:
        lines.append(("Duration", format_duration(record.duration)))
    if record.route_rule:
        lines.append(("Rule", record.route_rule))
    sms_extra = ""
    if event == "answered":
        taker = _shown(record.answered_by or record.forwarded_to)
        if taker:
            lines.append(("Answered by", taker))
        opening = f"A call to {client_name} was answered" + (f" by {taker}." if taker else ".")
    elif event == "voicemail":
        length = format_duration(record.voicemail_duration)
        if length:
            lines.append(("Voicemail", length))
            sms_extra = f", voicemail {length}"
        opening = f"A caller left {client_name} a voicemail" + (f" ({length})." if length else ".")
    else:
        opening = f"A call to {client_name} was missed: nobody answered and no voicemail was left."
    return Facts(heading=HEADINGS[event], event_words=f"{event} calls" if event != "voicemail" else "voicemails",
                 client_name=client_name, caller_short=caller,
                 short_when=format_local(record.started_at, zone, SHORT_TIME_FORMAT), sms_extra=sms_extra,
                 opening=opening, lines=lines, link=call_link(record.id))


def call_link(call_id) -> str:
    """The call's page on PUBLIC_BASE_URL, for people reading the notice away from phoneapp."""
    return public_url("calls.call_detail", call_id=call_id)


def _place(record):
    return ", ".join(part for part in (record.caller_city, record.caller_state) if part) or (
        record.caller_country or "")


def _shown(e164):
    return display_phone(e164, current_app.config["PHONE_REGION"]) if e164 else ""


def _clip(text, limit):
    """One line of at most `limit` characters: headers, texts and the detail column have no room for more."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _spoken(delay):
    seconds = int(delay.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"
