"""What a tracking number's card shows, gathered for many numbers in a fixed number of queries."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy.orm import joinedload

from phoneapp.domain.call_status import TERMINAL_STATUSES
from phoneapp.domain.number_status import STATUS_GROUPS, NumberStatus, count_by_colour
from phoneapp.domain.rule_summary import RuleSummary
from phoneapp.extensions import db
from phoneapp.models import Alert, CallRecord, Client, PhoneAssignment, TestCall, utcnow
from phoneapp.services.call_tests import running_tests_by_number
from phoneapp.services.client_rules import rule_summary
from phoneapp.services.number_statuses import number_statuses

# A call still "live" after this long lost its final callback; it must not keep a card polling forever.
LIVE_CALL_WINDOW = timedelta(minutes=30)
# Divides into rows of 2, 3 and 4 cards.
NUMBERS_PER_PAGE = 48


@dataclass
class NumberCard:
    number: PhoneAssignment
    status: NumberStatus
    calls_today: int
    live_call: CallRecord | None
    # A test under way on the number: the card shows its steps and keeps Test off, however the page was reached.
    running_test: TestCall | None = None
    # The client's rule in force now, in words; None for a number with no client.
    rules: RuleSummary | None = None
    # Its newest real call: how it ended and the rule that routed it stand beside "Last call".
    last_call: CallRecord | None = None

    @property
    def target_source(self):
        """Whose number calls go to: the card says so, because an override hides the client's phone."""
        if self.number.forward_to_number:
            return "override"
        if self.number.client is not None:
            return "client"
        return None


def local_today():
    """Today's date in APP_TIMEZONE: the day "today" figures count and their links filter on."""
    return datetime.now(ZoneInfo(current_app.config["APP_TIMEZONE"])).date()


def today_start_utc(today=None):
    """Midnight of today (or `today`) in APP_TIMEZONE, as naive UTC like the stored times."""
    zone = ZoneInfo(current_app.config["APP_TIMEZONE"])
    local_midnight = datetime.combine(today or local_today(), time.min, tzinfo=zone)
    return local_midnight.astimezone(UTC).replace(tzinfo=None)


def calls_today_by_number(ids):
    """{number id: real calls since local midnight}, one grouped query."""
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(CallRecord.phone_assignment_id, sa.func.count())
        .where(CallRecord.phone_assignment_id.in_(ids), CallRecord.started_at >= today_start_utc(),
               CallRecord.is_test.is_(False))
        .group_by(CallRecord.phone_assignment_id)
    ).all()
    return dict(rows)


def live_calls_by_number(ids):
    """{number id: its newest call that has not ended yet}, one query."""
    if not ids:
        return {}
    calls = db.session.scalars(
        sa.select(CallRecord)
        .where(CallRecord.phone_assignment_id.in_(ids), CallRecord.status.not_in(TERMINAL_STATUSES),
               CallRecord.started_at >= utcnow() - LIVE_CALL_WINDOW)
        .order_by(CallRecord.started_at.desc())
    ).all()
    live = {}
    for call in calls:
        live.setdefault(call.phone_assignment_id, call)
    return live


def last_calls_by_number(ids):
    """{number id: its newest real call}, one query."""
    if not ids:
        return {}
    newest = (sa.select(sa.func.max(CallRecord.id))
              .where(CallRecord.phone_assignment_id.in_(ids), CallRecord.is_test.is_(False))
              .group_by(CallRecord.phone_assignment_id))
    calls = db.session.scalars(sa.select(CallRecord).where(CallRecord.id.in_(newest))).all()
    return {call.phone_assignment_id: call for call in calls}


def build_cards(numbers, statuses=None):
    """A NumberCard per number, in the given order; a fixed number of queries whatever the count."""
    ids = [number.id for number in numbers]
    statuses = statuses or number_statuses(numbers)
    today = calls_today_by_number(ids)
    live = live_calls_by_number(ids)
    running = running_tests_by_number(ids)
    last = last_calls_by_number(ids)
    now = utcnow()
    return [NumberCard(number, statuses[number.id], today.get(number.id, 0), live.get(number.id),
                       running.get(number.id), rules_in_force(number, now), last.get(number.id))
            for number in numbers]


def rules_in_force(number, now):
    """The summary from the client already loaded with the number (numbers_query), so no query per card."""
    if number.client is None:
        return None
    return rule_summary(number.client, number.target_number, now, current_app.config)


def all_numbers():
    return db.session.scalars(numbers_query()).unique().all()


def status_counts():
    """How many numbers show each colour, without the per-card call figures."""
    return count_by_colour(number_statuses(all_numbers()).values())


class ListPagination(Pagination):
    """Flask-SQLAlchemy's pagination over a list already filtered in Python (statuses are not SQL)."""

    def __init__(self, rows, page, per_page):
        self._rows = rows
        super().__init__(page=page, per_page=per_page, max_per_page=None, error_out=False)

    def _query_items(self):
        return self._rows[self._query_offset:self._query_offset + self.per_page]

    def _query_count(self):
        return len(self._rows)


@dataclass
class NumbersPage:
    cards: list
    counts: dict
    pagination: ListPagination


def numbers_page(*, status=None, search="", page=1, per_page=NUMBERS_PER_PAGE):
    """The phone numbers page: every number's status counted, one page of the matching ones as cards."""
    numbers = all_numbers()
    statuses = number_statuses(numbers)
    counts = count_by_colour(statuses.values())
    if status:
        keys = STATUS_GROUPS.get(status, (status,))
        numbers = [number for number in numbers if statuses[number.id].key in keys]
    if search:
        numbers = [number for number in numbers if matches(number, search)]
    pagination = ListPagination(numbers, page, per_page)
    cards = build_cards(pagination.items, statuses)
    return NumbersPage(cards, counts, pagination)


def matches(number, search):
    """Staff find a number by any part of it, its name or its client's name."""
    needle = search.casefold()
    digits = "".join(ch for ch in search if ch.isdigit())
    if digits and digits in number.phone_number:
        return True
    haystack = [number.friendly_name or ""] + ([number.client.name] if number.client else [])
    return any(needle in text.casefold() for text in haystack)


def changed_number_ids(ids, since):
    """Which of `ids` have anything on their card changed after `since`: one query."""
    if not ids:
        return set()
    changes = sa.union(
        sa.select(PhoneAssignment.id).where(PhoneAssignment.id.in_(ids), PhoneAssignment.updated_at > since),
        sa.select(CallRecord.phone_assignment_id)
        .where(CallRecord.phone_assignment_id.in_(ids), CallRecord.updated_at > since),
        sa.select(PhoneAssignment.id).join(Client, PhoneAssignment.client)
        .where(PhoneAssignment.id.in_(ids), Client.updated_at > since),
        sa.select(Alert.phone_assignment_id)
        .where(Alert.phone_assignment_id.in_(ids),
               sa.or_(Alert.last_seen_at > since, Alert.resolved_at > since)),
        # A test started elsewhere (another tab, the API): the card comes back showing it and Test off.
        sa.select(TestCall.phone_assignment_id)
        .where(TestCall.phone_assignment_id.in_(ids), TestCall.created_at > since),
    )
    return set(db.session.scalars(changes))


def numbers_query():
    """Every tracking number with its client loaded, in a stable order."""
    return (sa.select(PhoneAssignment).options(joinedload(PhoneAssignment.client))
            .order_by(PhoneAssignment.phone_number))


def card_for(number):
    return build_cards([number])[0]


def client_choices(selected_id=None):
    """Clients offered in the assignment form: active ones, plus the current one even if switched off."""
    condition = Client.is_active.is_(True)
    if selected_id is not None:
        condition = sa.or_(condition, Client.id == selected_id)
    return db.session.scalars(sa.select(Client).where(condition).order_by(Client.name)).all()
