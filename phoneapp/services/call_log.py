"""The call log: its filters read from a query string, the calls they select, and the export's batches."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from phoneapp.domain.call_status import OUTCOMES, outcome_words
from phoneapp.extensions import db
from phoneapp.models import MAX_ID, CallRecord, Client, PhoneAssignment
from phoneapp.services.call_outcomes import outcome_expression

CALLS_PER_PAGE = 50
# Rows per export query: small enough that memory stays flat, large enough that round trips stay few.
EXPORT_BATCH_SIZE = 1000
TEST_CALL_CHOICES = ("include", "exclude", "only")
FILTER_NAMES = ("number", "client", "outcome", "date_from", "date_to", "tests")
NEWEST_FIRST = (CallRecord.started_at.desc(), CallRecord.id.desc())

# The strict form only: date.fromisoformat also takes 20240501 and 2024-W18-3, which no form sends.
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_ID = re.compile(r"^[0-9]{1,10}$")
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
    outcome = _outcomes(args, problems)
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


def _outcomes(args, problems):
    """One outcome word, or several joined by commas ("voicemail,missed"), written back in OUTCOMES order."""
    raw = _raw(args, "outcome")
    if not raw:
        return None
    words = outcome_words(raw)
    if words is None:
        problems["outcome"] = (f"Ignored: “{raw[:100]}” is not an outcome (one or more of {', '.join(OUTCOMES)}, "
                               "joined by commas).")
        return None
    return ",".join(words)


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
    words = outcome_words(outcome) if isinstance(outcome, str) else outcome
    if words:
        conditions.append(outcome_expression().in_(words))
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


def paginate_calls(query, page, per_page):
    """One page of `query`; past the end it is empty, not an error."""
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def filter_choices():
    """Every number and client for the call log's menus, as plain rows: they can run to thousands."""
    numbers = db.session.execute(
        sa.select(PhoneAssignment.id, PhoneAssignment.phone_number, PhoneAssignment.friendly_name)
        .order_by(PhoneAssignment.phone_number)).all()
    clients = db.session.execute(sa.select(Client.id, Client.name).order_by(Client.name)).all()
    return numbers, clients


def export_batches(filters, batch_size=EXPORT_BATCH_SIZE):
    """The filtered calls as plain rows, newest first, one query per batch walking (started_at, id) down."""
    statement = (
        sa.select(CallRecord.id, CallRecord.started_at, CallRecord.to_number, CallRecord.from_number,
                  CallRecord.caller_city, CallRecord.caller_state, CallRecord.forwarded_to, CallRecord.status,
                  CallRecord.dial_status, CallRecord.dial_leg_status, CallRecord.routed_by, CallRecord.duration,
                  CallRecord.is_test, CallRecord.requires_accept, CallRecord.accepted_by, CallRecord.answered_by,
                  CallRecord.route_rule,
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
