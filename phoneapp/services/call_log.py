"""The call log: its filters read from a query string, the calls they select, and the export's batches."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from phoneapp.domain.call_status import OUTCOMES, outcome_words
from phoneapp.domain.phones import InvalidPhoneNumber, parse_phone
from phoneapp.extensions import db
from phoneapp.models import MAX_ID, CallRecord, Client, PhoneAssignment
from phoneapp.services.call_outcomes import outcome_expression

CALLS_PER_PAGE = 50
# Rows per export query: small enough that memory stays flat, large enough that round trips stay few.
EXPORT_BATCH_SIZE = 1000
TEST_CALL_CHOICES = ("include", "exclude", "only")
FILTER_NAMES = ("number", "client", "outcome", "date_from", "date_to", "tests", "q", "sort")
NEWEST_FIRST = (CallRecord.started_at.desc(), CallRecord.id.desc())
SORTS = ("-started_at", "started_at", "-duration", "duration")
DEFAULT_SORT = "-started_at"
MAX_SEARCH_LENGTH = 100
# What people type for a phone number: digits and the punctuation of any national format.
_TYPED_NUMBER = re.compile(r"^[0-9\s+().\-/]+$")

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
    q: str | None = None
    sort: str = DEFAULT_SORT

    @property
    def narrowed(self):
        """Whether any filter leaves calls out; the order alone does not."""
        return any(name != "sort" for name in self.query_args())

    def query_args(self):
        """The filters as query-string values, defaults left out, for links that keep them."""
        values = {
            "number": self.number, "client": self.client, "outcome": self.outcome,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "tests": None if self.tests == "include" else self.tests,
            "q": self.q, "sort": None if self.sort == DEFAULT_SORT else self.sort,
        }
        return {name: value for name, value in values.items() if value is not None}

    def condition_args(self):
        """The filters as call_conditions' keyword arguments, days turned into naive-UTC bounds."""
        return {
            "number_id": self.number, "client_id": self.client, "outcome": self.outcome,
            "since": local_midnight_utc(self.date_from) if self.date_from else None,
            "until": local_midnight_utc(self.date_to + timedelta(days=1)) if self.date_to else None,
            "tests": self.tests, "q": self.q,
        }

    def select_args(self):
        """The filters and the order as calls_select's keyword arguments."""
        return {**self.condition_args(), "sort": self.sort}


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
    q = _search(args, problems)
    sort = _choice(args, "sort", SORTS, "an order", problems) or DEFAULT_SORT
    return CallFilters(number, client, outcome, date_from, date_to, tests, q, sort), problems


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


def _search(args, problems):
    raw = _raw(args, "q")
    if not raw:
        return None
    problem = search_problem(raw)
    if problem:
        problems["q"] = f"Ignored: the search {problem}."
        return None
    return raw


def search_problem(text):
    """Why `text` cannot be searched for, or None."""
    if len(text) > MAX_SEARCH_LENGTH:
        return f"must be at most {MAX_SEARCH_LENGTH} characters"
    # PostgreSQL refuses NUL in text; the other controls never appear in a number or a name.
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        return "must not contain control characters"
    return None


def search_condition(text, region="US"):
    """Calls whose caller's number holds the digits of `text`, typed in any format, or whose name holds `text`.

    "(415) 555" and "555 01" both find +14155550142; a whole national number ("020 7946 0000") finds its E.164.
    """
    text = text.strip()
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    matches = [CallRecord.caller_name.ilike(f"%{escaped}%", escape="\\")]
    digits = re.sub(r"[^0-9]", "", text)
    if digits and _TYPED_NUMBER.match(text):
        matches.append(CallRecord.from_number.contains(digits))
        try:
            matches.append(CallRecord.from_number == parse_phone(text, region))
        except InvalidPhoneNumber:
            pass
    return sa.or_(*matches)


def sort_order(sort):
    """ORDER BY for one of SORTS; ties go by id the same way, and calls without a duration (yet) come last."""
    descending = sort.startswith("-")
    column = CallRecord.duration if sort.endswith("duration") else CallRecord.started_at
    ordered = (column.desc(), CallRecord.id.desc()) if descending else (column.asc(), CallRecord.id.asc())
    return (column.is_(None), *ordered) if column is CallRecord.duration else ordered


def _after(sort, last):
    """The calls after `last` in `sort`'s order (sort_order's), as a condition an index on the column can serve."""
    descending = sort.startswith("-")
    column = CallRecord.duration if sort.endswith("duration") else CallRecord.started_at
    value = getattr(last, column.key)
    later_id = CallRecord.id < last.id if descending else CallRecord.id > last.id
    if value is None:
        return sa.and_(column.is_(None), later_id)
    within = column <= value if descending else column >= value
    beyond = column < value if descending else column > value
    after = sa.and_(within, sa.or_(beyond, later_id))
    return sa.or_(after, column.is_(None)) if column is CallRecord.duration else after


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


def call_conditions(*, number_id=None, client_id=None, outcome=None, since=None, until=None, tests="include",
                    q=None):
    """The WHERE conditions for calls matching these filters; `until` is exclusive, `q` is search_condition's."""
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
    if q:
        conditions.append(search_condition(q, current_app.config["PHONE_REGION"]))
    return conditions


def calls_select(*, number_id=None, client_id=None, outcome=None, since=None, until=None, tests="include", q=None,
                 sort=DEFAULT_SORT):
    """Calls in `sort`'s order (newest first unless told), with their number and client loaded for display."""
    return (sa.select(CallRecord)
            .options(joinedload(CallRecord.phone_assignment), joinedload(CallRecord.client))
            .where(*call_conditions(number_id=number_id, client_id=client_id, outcome=outcome,
                                    since=since, until=until, tests=tests, q=q))
            .order_by(*sort_order(sort)))


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
    """The filtered calls as plain rows in the log's order, one query per batch walking on from the last row."""
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
        .where(*call_conditions(**filters.condition_args()))
        .order_by(*sort_order(filters.sort))
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
        query = statement.where(_after(filters.sort, rows[-1]))
