"""The dashboard's figures, gathered in a fixed number of queries whatever the size of the account."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from phoneapp.domain.call_status import FAILED_OUTCOMES, TERMINAL_STATUSES
from phoneapp.domain.number_status import count_by_colour
from phoneapp.extensions import db
from phoneapp.models import CallRecord, utcnow
from phoneapp.services.call_log import calls_select
from phoneapp.services.call_outcomes import outcome_expression
from phoneapp.services.number_cards import LIVE_CALL_WINDOW, all_numbers, local_today, today_start_utc
from phoneapp.services.number_statuses import number_statuses

# The dashboard names this many; the rest are a click away on the phone numbers page.
ATTENTION_SHOWN = 8
FAILED_SHOWN = 6


@dataclass
class Attention:
    number: object
    status: object


@dataclass
class DashboardFigures:
    # The local day the "today" figures count: their links filter the call log on this same day.
    today: date
    counts: dict
    total_numbers: int
    calls_today: int
    live_calls: int
    failed_calls: list
    failed_total: int
    attention: list
    attention_total: int


def real_calls():
    return sa.select(sa.func.count()).select_from(CallRecord).where(CallRecord.is_test.is_(False))


def failed_forwards_query(since, until):
    """Real calls nobody took (voicemail or missed), newest first: what the call log shows for those outcomes."""
    return (sa.select(CallRecord).options(joinedload(CallRecord.phone_assignment), joinedload(CallRecord.client))
            .where(CallRecord.started_at >= since, CallRecord.started_at < until, CallRecord.is_test.is_(False),
                   outcome_expression().in_(FAILED_OUTCOMES))
            .order_by(CallRecord.started_at.desc(), CallRecord.id.desc()))


def dashboard_figures():
    """Everything the dashboard's live panel shows."""
    numbers = all_numbers()
    statuses = number_statuses(numbers)
    # Red before yellow, then by number, so the worst problems are the ones named first.
    needing = sorted((Attention(number, statuses[number.id]) for number in numbers
                      if statuses[number.id].colour in ("red", "yellow")),
                     key=lambda item: (item.status.colour != "red", item.number.phone_number))
    today = local_today()
    since, until = today_start_utc(today), today_start_utc(today + timedelta(days=1))
    failed_total = db.session.scalar(real_calls().where(
        CallRecord.started_at >= since, CallRecord.started_at < until, outcome_expression().in_(FAILED_OUTCOMES)))
    return DashboardFigures(
        today=today,
        counts=count_by_colour(statuses.values()),
        total_numbers=len(numbers),
        calls_today=db.session.scalar(
            real_calls().where(CallRecord.started_at >= since, CallRecord.started_at < until)),
        live_calls=db.session.scalar(real_calls().where(
            CallRecord.started_at >= utcnow() - LIVE_CALL_WINDOW, CallRecord.status.not_in(TERMINAL_STATUSES))),
        failed_calls=db.session.scalars(failed_forwards_query(since, until).limit(FAILED_SHOWN)).unique().all(),
        failed_total=failed_total,
        attention=needing[:ATTENTION_SHOWN],
        attention_total=len(needing),
    )


def recent_calls(limit=10):
    """The latest calls, test calls included, with their number and client loaded."""
    return db.session.scalars(calls_select().limit(limit)).unique().all()
