"""Twilio Monitor alerts about phoneapp's webhooks, turned into Alerts on the number they hurt.

Each Monitor alert is counted once ever: its sid is kept in ImportedMonitorAlert, whose unique sid
also makes a second import running at the same time count nothing.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from flask import current_app

from phoneapp.domain.phones import display_phone
from phoneapp.extensions import db
from phoneapp.models import MAX_ID, CallRecord, ImportedMonitorAlert, PhoneAssignment, utcnow
from phoneapp.services.alerts import raise_alert
from phoneapp.services.db_utils import insert_for
from phoneapp.twilio.gateway import TwilioError

ALERT_KIND = "twilio_webhook_error"
ACCOUNT_SUBJECT = "account"
# Twilio may file an alert a little after the moment it carries; the sid keeps re-reads harmless.
WATERMARK_OVERLAP = timedelta(minutes=10)
FIRST_LOOKBACK = timedelta(hours=24)
# Twilio keeps alerts queryable for 30 days.
OLDEST_QUERYABLE = timedelta(days=30)
MAX_ALERTS_PER_RUN = 5000

# Errors where Twilio could not get usable TwiML from a webhook, or could not carry out phoneapp's
# <Dial>: each means a caller was let down (https://www.twilio.com/docs/api/errors).
# 12200 (schema validation warning) is left out: Twilio still runs the document.
WEBHOOK_ERROR_NAMES = {
    "11100": "invalid URL",
    "11200": "HTTP retrieval failure",
    "11205": "HTTP connection failure",
    "11206": "HTTP protocol violation",
    "11210": "HTTP bad host name",
    "11215": "too many redirects",
    "11220": "TLS handshake failure",
    "11750": "TwiML response body too large",
    "12100": "TwiML document parse failure",
    "12300": "invalid Content-Type",
    "13214": "Dial: invalid callerId",
    "13224": "Dial: invalid phone number",
    "15003": "status callback answered with an error",
}
# Every 111xx/112xx is a failure reaching the URL and every 13xxx a TwiML verb Twilio refused.
_WEBHOOK_ERROR_CODE = re.compile(r"^(11[12]\d\d|11750|12100|12300|13\d{3}|1500[23])$")
_CLIENT_WEBHOOK_PATH = re.compile(r"/twilio/client-webhook/(\d{1,10})$")
_CHUNK = 500


def is_webhook_error(error_code) -> bool:
    """True for the Twilio error codes that mean a call to a tracking number went wrong at a webhook."""
    return bool(_WEBHOOK_ERROR_CODE.match(str(error_code or "").strip()))


def import_monitor_alerts(gateway) -> dict:
    """Read new Monitor alerts into Alerts; returns counts: seen, imported, skipped.

    A TwilioError (listing, or asking about a call) is raised before anything is written, so the
    job that runs this can be retried.
    """
    listed = gateway.list_monitor_alerts(start_date=_watermark(), limit=MAX_ALERTS_PER_RUN)
    # Oldest first, so each open alert ends up carrying the newest message. Twilio lists newest first
    # and its times are whole seconds: reversing before a stable sort keeps its order within a second.
    listed.reverse()
    listed.sort(key=lambda alert: _naive_utc(alert.get("date_created")))
    done = _already_imported([alert["sid"] for alert in listed])
    numbers = _NumberFinder(gateway)
    wanted, others = [], []
    for alert in listed:
        if alert["sid"] in done:
            continue
        if is_webhook_error(alert.get("error_code")):
            wanted.append((alert, numbers.number_for(alert)))
        else:
            others.append(alert)

    for start in range(0, len(others), _CHUNK):
        # Kept too, so the watermark moves past them and they are never read again.
        rows = [_imported_row(alert, None) for alert in others[start:start + _CHUNK]]
        db.session.execute(insert_for(ImportedMonitorAlert).values(rows).on_conflict_do_nothing(index_elements=["sid"]))
    db.session.commit()
    imported = 0
    for alert, number in wanted:
        # One transaction per alert: the sid row and the count it adds stand or fall together.
        claimed = db.session.execute(
            insert_for(ImportedMonitorAlert).values(_imported_row(alert, number))
            .on_conflict_do_nothing(index_elements=["sid"]).returning(ImportedMonitorAlert.id)).scalar()
        if claimed is not None:
            _raise_for(alert, number, numbers.call_sid_of(alert))
            imported += 1
        db.session.commit()
    return {"seen": len(listed), "imported": imported, "skipped": len(listed) - imported}


def _watermark() -> datetime:
    now = utcnow()
    newest = db.session.scalar(sa.select(sa.func.max(ImportedMonitorAlert.alert_created_at)))
    since = now - FIRST_LOOKBACK if newest is None else newest - WATERMARK_OVERLAP
    return max(since, now - OLDEST_QUERYABLE).replace(tzinfo=UTC)


def _naive_utc(moment) -> datetime:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return utcnow()


def _already_imported(sids) -> set:
    done = set()
    for start in range(0, len(sids), _CHUNK):
        chunk = sids[start:start + _CHUNK]
        done.update(db.session.scalars(sa.select(ImportedMonitorAlert.sid).where(ImportedMonitorAlert.sid.in_(chunk))))
    return done


def _imported_row(alert, number) -> dict:
    return {"sid": alert["sid"], "error_code": str(alert.get("error_code") or "")[:10],
            "phone_assignment_id": number.id if number is not None else None,
            "alert_created_at": _naive_utc(alert.get("date_created")), "imported_at": utcnow()}


def _raise_for(alert, number, call_sid):
    text = parse_qs(alert.get("alert_text") or "")
    code = str(alert.get("error_code") or "").strip()
    name = WEBHOOK_ERROR_NAMES.get(code)
    url = alert.get("request_url") or _first(text, "url") or "an unknown URL"
    status = _first(text, "httpResponse")
    what = f"Twilio error {code}" + (f" ({name})" if name else "") + f" reaching {url}"
    if status:
        what += f", which answered HTTP {status}"
    said = _first(text, "Msg") or _first(text, "msg")
    if number is not None:
        created = _naive_utc(alert.get("date_created"))
        # phoneapp has answered a call to this number since Twilio's error (whose time is to the second).
        if number.last_call_at is not None and created is not None and \
                created + timedelta(seconds=1) <= number.last_call_at:
            return
        shown = display_phone(number.phone_number, current_app.config["PHONE_REGION"])
        message = f"Calls to {shown}: {what}" + (f": {said}" if said else "")
        raise_alert(ALERT_KIND, f"number:{number.id}", message[:500], severity="error", phone_assignment_id=number.id)
    else:
        whose = f" on call {call_sid}" if call_sid else ""
        message = f"{what}{whose}, for no tracking number phoneapp knows" + (f": {said}" if said else "")
        raise_alert(ALERT_KIND, ACCOUNT_SUBJECT, message[:500], severity="error")


def _first(parsed, key):
    values = parsed.get(key)
    return values[0].strip() if values and values[0].strip() else None


class _NumberFinder:
    """Which tracking number a Monitor alert is about, asking Twilio at most once per call."""

    def __init__(self, gateway):
        self.gateway = gateway
        self._calls = {}

    @staticmethod
    def call_sid_of(alert):
        sid = alert.get("resource_sid") or ""
        return sid if sid.startswith("CA") else None

    def number_for(self, alert):
        """The PhoneAssignment the alert is about, or None."""
        for sid in (alert.get("service_sid"), alert.get("resource_sid")):
            if sid and sid.startswith("PN"):
                number = db.session.scalars(sa.select(PhoneAssignment).where(PhoneAssignment.twilio_sid == sid)).first()
                if number is not None:
                    return number
        call_sid = self.call_sid_of(alert)
        number = self._number_of_call(call_sid) if call_sid else None
        return number or self._only_number_of_client(alert.get("request_url") or "")

    def _number_of_call(self, call_sid, *, follow_parent=True):
        number = self._recorded_number(call_sid)
        if number is not None:
            return number
        call = self._fetch(call_sid)
        if call is None:
            return None
        number = self._number_called(call.get("to"))
        if number is None and follow_parent and call.get("parent_call_sid"):
            # A forwarded leg rings the client's phone; the leg that rang the tracking number is its parent.
            number = self._number_of_call(call["parent_call_sid"], follow_parent=False)
        return number

    def _recorded_number(self, call_sid):
        return db.session.scalars(
            sa.select(PhoneAssignment).join(CallRecord, CallRecord.phone_assignment_id == PhoneAssignment.id)
            .where(sa.or_(CallRecord.twilio_call_sid == call_sid, CallRecord.dial_call_sid == call_sid))).first()

    def _fetch(self, call_sid):
        if call_sid not in self._calls:
            try:
                self._calls[call_sid] = self.gateway.fetch_call(call_sid)
            except TwilioError as exc:
                # A call Twilio no longer has is simply unknown; any other failure is worth a retry.
                if exc.status != 404:
                    raise
                self._calls[call_sid] = None
        return self._calls[call_sid]

    @staticmethod
    def _number_called(phone_number):
        if not phone_number:
            return None
        return db.session.scalars(
            sa.select(PhoneAssignment).where(PhoneAssignment.phone_number == phone_number)).first()

    @staticmethod
    def _only_number_of_client(request_url):
        # Numbers on the older per-client URL name their client, not themselves: only a sole number is certain.
        match = _CLIENT_WEBHOOK_PATH.search(urlsplit(request_url).path)
        client_id = int(match.group(1)) if match else None
        if client_id is None or client_id > MAX_ID:
            return None
        numbers = db.session.scalars(
            sa.select(PhoneAssignment).where(PhoneAssignment.client_id == client_id).limit(2)).all()
        return numbers[0] if len(numbers) == 1 else None


def raise_fallback_alert(phone_assignment_id, error_code, error_url):
    """Twilio answered a call to the number from its fallback URL: the voice URL failed, and says why."""
    number = db.session.get(PhoneAssignment, phone_assignment_id)
    if number is None:
        return
    name = WEBHOOK_ERROR_NAMES.get(error_code or "")
    what = f"Twilio error {error_code}" if error_code else "Twilio could not use the voice URL"
    what += (f" ({name})" if name else "") + f" reaching {error_url or 'the voice URL'}"
    shown = display_phone(number.phone_number, current_app.config["PHONE_REGION"])
    raise_alert(ALERT_KIND, f"number:{number.id}", f"Calls to {shown}: {what}; the fallback URL answered"[:500],
                severity="error", phone_assignment_id=number.id)
