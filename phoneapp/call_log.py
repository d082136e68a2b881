"""The call log: its filters read from the query string, the calls they select, and the CSV export."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, request
from sqlalchemy.orm import joinedload

from phoneapp.call_status import call_outcome
from phoneapp.extensions import db
from phoneapp.models import MAX_ID, CallRecord, Client, PhoneAssignment
from phoneapp.number_cards import OUTCOMES, outcome_expression

CALLS_PER_PAGE = 50
# Rows per export query: small enough that memory stays flat, large enough that round trips stay few.
EXPORT_BATCH_SIZE = 1000
TEST_CALL_CHOICES = ("include", "exclude", "only")
FILTER_NAMES = ("number", "client", "outcome", "date_from", "date_to", "tests")
NEWEST_FIRST = (CallRecord.started_at.desc(), CallRecord.id.desc())

# The strict form only: date.fromisoformat also takes 20240501 and 2024-W18-3, which no form sends.
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_ID = re.compile(r"^[0-9]{1,10}$")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

EXPORT_HEADER = (
    "call_id", "started_at", "tracking_number", "number_name", "client", "caller", "caller_city", "caller_state",
    "forwarded_to", "outcome", "status", "dial_status", "duration_seconds", "test", "recording_url",
    "voicemail_url", "twilio_call_sid",
)


@dataclass(frozen=True)
class CallFilters:
    """What the call log is narrowed to; None, or "include" for test calls, narrows nothing."""

    number: int | None = None
    client: int | None = None
    outcome: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    tests: str = "include"

    def query_args(self):
        """The filters as query-string values, defaults left out, for links that keep them."""
        values = {
            "number": self.number, "client": self.client, "outcome": self.outcome,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "tests": None if self.tests == "include" else self.tests,
        }
        return {name: value for name, value in values.items() if value is not None}

    def select_args(self):
        """The filters as calls_select's keyword arguments, days turned into naive-UTC bounds."""
        return {
            "number_id": self.number, "client_id": self.client, "outcome": self.outcome,
            "since": local_midnight_utc(self.date_from) if self.date_from else None,
            "until": local_midnight_utc(self.date_to + timedelta(days=1)) if self.date_to else None,
            "tests": self.tests,
        }


def local_midnight_utc(day):
    """The first instant of `day` in APP_TIMEZONE, as naive UTC like the stored times."""
    zone = ZoneInfo(current_app.config["APP_TIMEZONE"])
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def read_filters(args):
    """(CallFilters, {field: why its value was ignored}) from a query string; bad values never raise."""
    problems = {}
    number = _existing_id(args, "number", PhoneAssignment, "tracking number", problems)
    client = _existing_id(args, "client", Client, "client", problems)
    outcome = _choice(args, "outcome", OUTCOMES, "an outcome", problems)
    tests = _choice(args, "tests", TEST_CALL_CHOICES, "a test-call choice", problems) or "include"
    date_from = _day(args, "date_from", problems)
    date_to = _day(args, "date_to", problems)
    if date_from and date_to and date_to < date_from:
        problems["date_to"] = f"Ignored: “To” ({date_to}) is before “From” ({date_from})."
        date_to = None
    return CallFilters(number, client, outcome, date_from, date_to, tests), problems


def _raw(args, name):
    return (args.get(name) or "").strip()


def _existing_id(args, name, model, label, problems):
    raw = _raw(args, name)
    if not raw:
        return None
    if not _ID.match(raw) or not 1 <= int(raw) <= MAX_ID:
        problems[name] = f"Ignored: “{raw}” is not a {label}."
        return None
    if db.session.get(model, int(raw)) is None:
        problems[name] = f"Ignored: there is no {label} #{raw}."
        return None
    return int(raw)


def _choice(args, name, choices, label, problems):
    raw = _raw(args, name)
    if not raw:
        return None
    if raw not in choices:
        problems[name] = f"Ignored: “{raw}” is not {label} (one of {', '.join(choices)})."
        return None
    return raw


def _day(args, name, problems):
    raw = _raw(args, name)
    if not raw:
        return None
    try:
        if not _ISO_DATE.match(raw):
            raise ValueError(raw)
        day = date.fromisoformat(raw)
        # Both ends of the day must exist as UTC times: 0001-01-01 east of UTC or 9999-12-31 do not.
        local_midnight_utc(day)
        local_midnight_utc(day + timedelta(days=1))
    except (ValueError, OverflowError):
        problems[name] = f"Ignored: “{raw}” is not a date written as YYYY-MM-DD."
        return None
    return day


def call_conditions(*, number_id=None, client_id=None, outcome=None, since=None, until=None, tests="include"):
    """The WHERE conditions for calls matching these filters; `until` is exclusive."""
    conditions = []
    if number_id is not None:
        conditions.append(CallRecord.phone_assignment_id == number_id)
    if client_id is not None:
        conditions.append(CallRecord.client_id == client_id)
    if outcome in OUTCOMES:
        conditions.append(outcome_expression() == outcome)
    if since is not None:
        conditions.append(CallRecord.started_at >= since)
    if until is not None:
        conditions.append(CallRecord.started_at < until)
    if tests == "exclude":
        conditions.append(CallRecord.is_test.is_(False))
    elif tests == "only":
        conditions.append(CallRecord.is_test.is_(True))
    return conditions


def calls_select(*, number_id=None, client_id=None, outcome=None, since=None, until=None, tests="include"):
    """Calls newest first, with their number and client loaded for display."""
    return (sa.select(CallRecord)
            .options(joinedload(CallRecord.phone_assignment), joinedload(CallRecord.client))
            .where(*call_conditions(number_id=number_id, client_id=client_id, outcome=outcome,
                                    since=since, until=until, tests=tests))
            .order_by(*NEWEST_FIRST))


def requested_page():
    """The page number asked for; never below 1, nor so large its offset overflows a database integer."""
    page = request.args.get("page", type=int) or 1
    return min(max(page, 1), MAX_ID)


def paginate_calls(query, per_page):
    """One page of `query` for the requested page number; past the end it is empty, not an error."""
    return db.paginate(query, page=requested_page(), per_page=per_page, error_out=False)


def call_log_filters():
    """This request's call log filters and the reasons any of its values were ignored."""
    return read_filters(request.args)


def call_log_context():
    """Everything the call log table needs; shared with its polling partial."""
    filters, problems = call_log_filters()
    pagination = paginate_calls(calls_select(**filters.select_args()), CALLS_PER_PAGE)
    return {"pagination": pagination, "filters": filters, "filter_problems": problems,
            "page_args": filters.query_args(), "show_count": True}


def export_filename(filters):
    """calls-2024-05-01-to-2024-05-31.csv and the like: the days the file covers."""
    if filters.date_from and filters.date_to:
        span = f"{filters.date_from}-to-{filters.date_to}"
    elif filters.date_from:
        span = f"from-{filters.date_from}"
    elif filters.date_to:
        span = f"until-{filters.date_to}"
    else:
        span = "all"
    return f"calls-{span}.csv"


def export_batches(filters, batch_size=EXPORT_BATCH_SIZE):
    """The filtered calls as plain rows, newest first, one query per batch walking (started_at, id) down."""
    statement = (
        sa.select(CallRecord.id, CallRecord.started_at, CallRecord.to_number, CallRecord.from_number,
                  CallRecord.caller_city, CallRecord.caller_state, CallRecord.forwarded_to, CallRecord.status,
                  CallRecord.dial_status, CallRecord.routed_by, CallRecord.duration, CallRecord.is_test,
                  CallRecord.recording_url, CallRecord.voicemail_url, CallRecord.twilio_call_sid,
                  PhoneAssignment.phone_number, PhoneAssignment.friendly_name, Client.name.label("client_name"))
        .select_from(CallRecord)
        .outerjoin(PhoneAssignment, CallRecord.phone_assignment_id == PhoneAssignment.id)
        .outerjoin(Client, CallRecord.client_id == Client.id)
        .where(*call_conditions(**filters.select_args()))
        .order_by(*NEWEST_FIRST)
        .limit(batch_size)
    )
    query = statement
    while True:
        rows = db.session.execute(query).all()
        # The client may read slowly: hold no transaction or pooled connection between batches.
        db.session.rollback()
        if rows:
            yield rows
        if len(rows) < batch_size:
            return
        last = rows[-1]
        # The started_at <= bound alone lets an index on started_at serve the query; the OR breaks ties.
        query = statement.where(CallRecord.started_at <= last.started_at,
                                sa.or_(CallRecord.started_at < last.started_at, CallRecord.id < last.id))


def spreadsheet_safe(value):
    """Text a spreadsheet shows as text: a leading apostrophe before anything it would run as a formula."""
    if value is None:
        return ""
    if value.startswith(_FORMULA_STARTS) and not _E164.match(value):
        return "'" + value
    return value


def export_row(row, zone):
    """One call as the export's cells, in EXPORT_HEADER's order."""
    safe = spreadsheet_safe
    started = row.started_at.replace(tzinfo=UTC).astimezone(zone).isoformat(timespec="seconds")
    outcome = call_outcome(row.status, row.dial_status, row.routed_by, has_voicemail=bool(row.voicemail_url))
    return (row.id, started, safe(row.phone_number or row.to_number), safe(row.friendly_name),
            safe(row.client_name), safe(row.from_number), safe(row.caller_city), safe(row.caller_state),
            safe(row.forwarded_to), outcome, safe(row.status), safe(row.dial_status),
            "" if row.duration is None else row.duration, "yes" if row.is_test else "no",
            safe(row.recording_url), safe(row.voicemail_url), safe(row.twilio_call_sid))


def csv_text(rows):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def calls_csv(filters, batch_size=EXPORT_BATCH_SIZE):
    """The filtered calls as CSV text: the header, then one chunk per batch, so memory stays flat."""
    zone = ZoneInfo(current_app.config["APP_TIMEZONE"])
    yield csv_text([EXPORT_HEADER])
    for rows in export_batches(filters, batch_size):
        yield csv_text(export_row(row, zone) for row in rows)
