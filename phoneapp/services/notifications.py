"""Error alerts reach admins by e-mail and SMS: once when they open, once when they resolve (SPEC §6).

Every worker calls send_pending_notifications() about once a second, all at once. A notice is sent
only by the worker whose conditional UPDATE claimed the alert, and the claim is committed before
anything is sent, so two workers never send the same notice. A claim left by a worker that died
goes stale and another worker takes the notice over.
"""
from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from flask import current_app

from phoneapp.domain.clock import format_local
from phoneapp.domain.phones import display_phone
from phoneapp.extensions import db
from phoneapp.models import Alert, utcnow
from phoneapp.services.claims import claim_each
from phoneapp.services.twilio_account import twilio
from phoneapp.twilio.gateway import TwilioError
from phoneapp.twilio.public_urls import public_url

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# Longer than any one send can take (SMTP and Twilio both time out well before), so only a dead worker's claim expires.
CLAIM_TIMEOUT = timedelta(minutes=5)
# The wait after the 1st, 2nd, … failed attempt: a mail server down for a few minutes must not use up every attempt.
RETRY_DELAYS = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(minutes=30))
BATCH_SIZE = 20
SMTP_TIMEOUT = 15
SMTP_DEFAULT_PORTS = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}
DETAIL_LIMIT = 500
SUBJECT_LIMIT = 200
SMS_LIMIT = 600
NO_RECIPIENTS = "no recipients configured"
# Folding a subject at 78 characters puts it on a line of its own, which some mail clients show with a leading
# space; SMTP allows 998 and subjects here are at most SUBJECT_LIMIT long.
MAIL_POLICY = policy.SMTP.clone(max_line_length=998)
TIME_FORMAT = "%Y-%m-%d %H:%M %Z"


@dataclass(frozen=True)
class Notice:
    """One message about one alert, as plain text, built while the alert is claimed."""

    alert_id: int
    kind: str  # open, resolved, or combined (resolved before its opening was ever sent)
    subject: str
    body: str
    sms: str
    attempts_before: int


@dataclass
class Delivery:
    """What happened to one notice: who got it, and what failed."""

    reached: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return bool(self.reached)

    def summary(self) -> str:
        return "; ".join(self.reached + self.failures)


def send_pending_notifications(now=None) -> int:
    """Send every open/resolved notice that is due; returns how many notices reached someone."""
    now = now or utcnow()
    return sum(_deliver(alert_id, claimed_at=now) for alert_id in claim_each(
        Alert, Alert.notify_claimed_at, _due(), now=now, timeout=CLAIM_TIMEOUT, limit=BATCH_SIZE))


def _due():
    """Error alerts whose opening, or whose resolution after an opening that went out, nobody has heard of."""
    return sa.and_(
        Alert.severity == "error",
        Alert.notify_attempts < MAX_ATTEMPTS,
        sa.or_(Alert.notified_open_at.is_(None),
               sa.and_(Alert.resolved_at.is_not(None), Alert.notified_resolved_at.is_(None))),
    )


def _deliver(alert_id, claimed_at) -> int:
    alert = db.session.get(Alert, alert_id, populate_existing=True)
    if alert is None:
        db.session.commit()
        return 0
    notice = build_notice(alert)
    # No transaction may stay open while a slow mail server or Twilio is answering.
    db.session.commit()
    try:
        delivery = send_notice(notice)
    except Exception as exc:
        # Counted as a failed attempt, so a notice that always hits the same bug stops after MAX_ATTEMPTS.
        log.exception("alert %s: sending the %s notice failed", alert_id, notice.kind)
        delivery = Delivery(failures=[f"sending failed: {type(exc).__name__}"])
    _record(notice, delivery, claimed_at)
    return 1 if delivery is not None and delivery.delivered else 0


def _record(notice, delivery, claimed_at):
    """Mark the notice sent, or count the failed attempt; only while this worker's claim still holds."""
    sent_at = utcnow()
    if delivery is None or delivery.delivered:
        values = {"notify_claimed_at": None, "notify_attempts": 0,
                  "notify_detail": NO_RECIPIENTS if delivery is None else delivery.summary()}
        if notice.kind in ("open", "combined"):
            values["notified_open_at"] = sent_at
        if notice.kind in ("resolved", "combined"):
            values["notified_resolved_at"] = sent_at
    else:
        attempts = notice.attempts_before + 1
        if attempts >= MAX_ATTEMPTS:
            detail, held_until = f"gave up after {attempts} attempts: {delivery.summary()}", None
        else:
            delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
            detail = f"{delivery.summary()}; retrying in {_spoken(delay)}"
            # The claim doubles as the retry timer: it goes stale, and so claimable, once the delay is over.
            held_until = claimed_at + delay - CLAIM_TIMEOUT
        values = {"notify_claimed_at": held_until, "notify_attempts": attempts, "notify_detail": detail}
        log.warning("alert %s: %s notice not sent: %s", notice.alert_id, notice.kind, detail)
    values["notify_detail"] = _clip(values["notify_detail"], DETAIL_LIMIT)
    db.session.execute(
        sa.update(Alert).where(Alert.id == notice.alert_id, Alert.notify_claimed_at == claimed_at).values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


@dataclass(frozen=True)
class NoticeStatus:
    """Where an alert's notices stand, in words for the alerts page."""

    tone: str  # ok, pending, failed, muted
    label: str
    at: datetime | None = None
    detail: str = ""


def notice_status(alert) -> NoticeStatus:
    """Whether admins were told of `alert`, when, how, or why not."""
    detail = alert.notify_detail or ""
    if alert.severity != "error":
        return NoticeStatus("muted", f"not sent: {alert.severity} alerts are shown here only")
    config = current_app.config
    nobody = not alert.notified_open_at and not config["ALERT_EMAILS"] and not config["ALERT_SMS_NUMBERS"]
    # With nobody to tell there is nothing to wait for: said at once, not after the worker has had a go.
    if detail == NO_RECIPIENTS or nobody:
        return NoticeStatus("muted", "not sent: no recipients configured",
                            detail="set ALERT_EMAILS or ALERT_SMS_NUMBERS")
    if alert.notify_attempts >= MAX_ATTEMPTS:
        return NoticeStatus("failed", "not sent", detail=detail)
    if alert.notify_attempts:
        return NoticeStatus("failed", f"failed, attempt {alert.notify_attempts} of {MAX_ATTEMPTS}", detail=detail)
    if alert.notified_resolved_at is not None:
        return NoticeStatus("ok", "resolution sent", alert.notified_resolved_at, detail)
    if alert.notified_open_at is not None:
        pending = alert.resolved_at is not None
        return NoticeStatus("ok", "sent, resolution pending" if pending else "sent", alert.notified_open_at, detail)
    # Queued, not "sending": notices go out through the worker, which may not be running.
    return NoticeStatus("pending", "queued for the worker")


# -- what the notice says -------------------------------------------------------------------------


def build_notice(alert) -> Notice:
    """The notice due for `alert`: its opening, its resolution, or both at once."""
    if alert.notified_open_at is None:
        kind = "combined" if alert.resolved_at is not None else "open"
    else:
        kind = "resolved"
    what = _what(alert)
    link = public_url("alerts.index")
    number = alert.phone_assignment
    lines = []
    if kind == "open":
        heading = f"Error: {what}"
        lines.append("phoneapp opened an error alert. Calls may not be reaching your clients.")
    elif kind == "resolved":
        heading = f"Resolved: {what}"
        lines.append("This error alert is resolved.")
    else:
        heading = f"Resolved: {what}"
        lines.append("An error alert opened and was resolved before a notice about it went out.")
    lines += ["", alert.message, ""]
    if number is not None:
        owner = f" ({number.client.name})" if number.client is not None else ""
        lines.append(f"Number:      {_shown(number.phone_number)}{owner}")
    lines.append(f"First seen:  {_when(alert.created_at)}")
    lines.append(f"Last seen:   {_when(alert.last_seen_at)}")
    if alert.resolved_at is not None:
        lines.append(f"Resolved:    {_when(alert.resolved_at)}")
    lines.append(f"Occurrences: {alert.occurrences}")
    lines += ["", f"Alerts: {link}", "",
              "You hear of an error alert once when it opens and once when it is resolved; "
              "repeats are counted on the alerts page."]
    sms = f"phoneapp {heading}"
    if alert.occurrences > 1:
        sms += f" (x{alert.occurrences})"
    return Notice(alert_id=alert.id, kind=kind, subject=_clip(f"[phoneapp] {heading}", SUBJECT_LIMIT),
                  body="\n".join(lines) + "\n", sms=_clip(sms, SMS_LIMIT - len(link) - 1) + " " + link,
                  attempts_before=alert.notify_attempts)


def _what(alert):
    """The alert's message, led by its number unless the message already names it."""
    message = " ".join(alert.message.split())
    number = alert.phone_assignment
    if number is None:
        return message
    shown = _shown(number.phone_number)
    if number.phone_number in message or shown in message:
        return message
    return f"{shown}: {message}"


def _when(moment):
    return format_local(moment, current_app.config["APP_TIMEZONE"], TIME_FORMAT)


def _shown(e164):
    return display_phone(e164, current_app.config["PHONE_REGION"])


def _clip(text, limit):
    """One line of at most `limit` characters: headers, texts and the page's detail have no room for more."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _spoken(delay):
    seconds = int(delay.total_seconds())
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"


# -- sending ---------------------------------------------------------------------------------------


def send_notice(notice) -> Delivery | None:
    """Send `notice` to every configured recipient; None when nobody is configured to hear it."""
    config = current_app.config
    emails, numbers = config["ALERT_EMAILS"], config["ALERT_SMS_NUMBERS"]
    if not emails and not numbers:
        return None
    delivery = Delivery()
    if emails:
        _send_emails(notice, emails, delivery)
    if numbers:
        _send_texts(notice, numbers, delivery)
    return delivery


def _send_emails(notice, addresses, delivery):
    smtp_url = current_app.config["SMTP_URL"]
    if not smtp_url:
        delivery.failures.append("e-mail not sent: ALERT_EMAILS is set but SMTP_URL is not")
        return
    where = smtp_server_name(smtp_url)
    try:
        refused = send_email(smtp_url, email_message(notice, addresses))
    except smtplib.SMTPRecipientsRefused as exc:
        delivery.failures.append(f"e-mail refused by {where} for every address: {_refusals(exc.recipients)}")
    except (smtplib.SMTPException, OSError) as exc:
        delivery.failures.append(f"e-mail via {where} failed: {smtp_problem(exc)}")
    else:
        reached = len(addresses) - len(refused)
        delivery.reached.append(f"e-mailed {reached} address{'es' if reached != 1 else ''}")
        if refused:
            delivery.failures.append(f"refused by {where}: {_refusals(refused)}")


def email_message(notice, addresses) -> EmailMessage:
    config = current_app.config
    sender = config["ALERT_EMAIL_FROM"] or f"phoneapp@{urlsplit(config['PUBLIC_BASE_URL']).hostname}"
    message = EmailMessage(policy=MAIL_POLICY)
    message["Subject"] = notice.subject
    message["From"] = sender
    message["To"] = ", ".join(addresses)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    # Tells vacation responders and ticket systems not to answer a machine.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(notice.body)
    return message


def send_email(smtp_url, message) -> dict:
    """Hand `message` to the server SMTP_URL names; returns the recipients it refused (usually none)."""
    server = urlsplit(smtp_url)
    port = server.port or SMTP_DEFAULT_PORTS[server.scheme]
    if server.scheme == "smtps":
        connection = smtplib.SMTP_SSL(server.hostname, port, timeout=SMTP_TIMEOUT,
                                      context=ssl.create_default_context())
    else:
        connection = smtplib.SMTP(server.hostname, port, timeout=SMTP_TIMEOUT)
    with connection:
        if server.scheme == "smtp+starttls":
            connection.starttls(context=ssl.create_default_context())
        if server.username:
            connection.login(unquote(server.username), unquote(server.password or ""))
        return connection.send_message(message)


def smtp_server_name(smtp_url):
    """host:port of the server SMTP_URL names, for messages: never the URL, which carries the password."""
    server = urlsplit(smtp_url)
    return f"{server.hostname}:{server.port or SMTP_DEFAULT_PORTS[server.scheme]}"


def smtp_problem(exc):
    """The server's reason in words; never the URL, which carries the password."""
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {text}"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _refusals(recipients):
    return ", ".join(f"{address} ({code})" for address, (code, _reason) in recipients.items())


def sms_sender():
    """The account's number texts go out from: ALERT_SMS_FROM, else the test caller's."""
    config = current_app.config
    return config["ALERT_SMS_FROM"] or config["TEST_CALLER_ID"]


def _send_texts(notice, numbers, delivery):
    sender = sms_sender()
    if not sender:
        delivery.failures.append("SMS not sent: set ALERT_SMS_FROM to a number of the Twilio account")
        return
    texted = 0
    for number in numbers:
        try:
            twilio().send_sms(to=number, from_=sender, body=notice.sms)
        except TwilioError as exc:
            delivery.failures.append(f"SMS to {_shown(number)} failed: {exc.message}")
        else:
            texted += 1
    if texted:
        delivery.reached.append(f"texted {texted} number{'s' if texted != 1 else ''}")
