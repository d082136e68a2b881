"""What a tracking number's card shows, gathered for many numbers in a fixed number of queries."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from phoneapp.call_status import FAILED_DIAL_STATUSES, TERMINAL_STATUSES, is_failed_forward
from phoneapp.extensions import db
from phoneapp.models import Alert, CallRecord, Client, PhoneAssignment, utcnow
from phoneapp.number_status import FAILING_STREAK, NumberStatus, number_status

# A call still "live" after this long lost its final callback; it must not keep a card polling forever.
LIVE_CALL_WINDOW = timedelta(minutes=30)


@dataclass
class NumberCard:
    number: PhoneAssignment
    status: NumberStatus
    calls_today: int
    live_call: CallRecord | None

    @property
    def target_source(self):
        """Whose number calls go to: the card says so, because an override hides the client's phone."""
        if self.number.forward_to_number:
            return "override"
        if self.number.client is not None:
            return "client"
        return None


def today_start_utc():
    """Midnight of today in APP_TIMEZONE, as naive UTC like the stored times."""
    zone = ZoneInfo(current_app.config["APP_TIMEZONE"])
    local_midnight = datetime.combine(datetime.now(zone).date(), time.min, tzinfo=zone)
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


def open_errors_by_number(ids):
    """{number id: message of its newest open error alert}, one query."""
    if not ids:
        return {}
    alerts = db.session.scalars(
        sa.select(Alert)
        .where(Alert.phone_assignment_id.in_(ids), Alert.resolved_at.is_(None), Alert.severity == "error")
        .order_by(Alert.last_seen_at.desc())
    ).all()
    errors = {}
    for alert in alerts:
        errors.setdefault(alert.phone_assignment_id, alert.message)
    return errors


def failed_streaks_by_number(ids, limit=FAILING_STREAK):
    """{number id: failed forwards in a row}; the same rule as services.calls.failed_forward_streak, batched."""
    if not ids:
        return {}
    position = sa.func.row_number().over(
        partition_by=CallRecord.phone_assignment_id,
        order_by=(CallRecord.started_at.desc(), CallRecord.id.desc()),
    ).label("position")
    latest = (
        sa.select(CallRecord.phone_assignment_id, CallRecord.dial_status, position)
        .where(CallRecord.phone_assignment_id.in_(ids), CallRecord.dial_status.is_not(None),
               CallRecord.is_test.is_(False))
        .subquery()
    )
    rows = db.session.execute(
        sa.select(latest.c.phone_assignment_id, latest.c.dial_status)
        .where(latest.c.position <= limit)
        .order_by(latest.c.phone_assignment_id, latest.c.position)
    ).all()
    streaks, broken = {}, set()
    for number_id, dial_status in rows:
        if number_id in broken:
            continue
        if is_failed_forward(dial_status):
            streaks[number_id] = streaks.get(number_id, 0) + 1
        else:
            broken.add(number_id)
    return streaks


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


def build_cards(numbers):
    """A NumberCard per number, in the given order; five queries whatever the count."""
    config = current_app.config
    ids = [number.id for number in numbers]
    today = calls_today_by_number(ids)
    errors = open_errors_by_number(ids)
    streaks = failed_streaks_by_number(ids)
    live = live_calls_by_number(ids)
    now = utcnow()
    cards = []
    for number in numbers:
        status = number_status(number, now=now, verify_max_age=config["VERIFY_MAX_AGE"],
                               open_error=errors.get(number.id), recent_failed_streak=streaks.get(number.id, 0),
                               region=config["PHONE_REGION"])
        cards.append(NumberCard(number, status, today.get(number.id, 0), live.get(number.id)))
    return cards


def count_by_colour(cards):
    counts = dict.fromkeys(("green", "yellow", "red", "grey"), 0)
    for card in cards:
        counts[card.status.colour] += 1
    return counts


def numbers_query():
    """Every tracking number with its client loaded, in a stable order."""
    return (sa.select(PhoneAssignment).options(joinedload(PhoneAssignment.client))
            .order_by(PhoneAssignment.phone_number))


def all_cards():
    return build_cards(db.session.scalars(numbers_query()).unique().all())


def card_for(number):
    return build_cards([number])[0]


def client_choices(selected_id=None):
    """Clients offered in the assignment form: active ones, plus the current one even if switched off."""
    condition = Client.is_active.is_(True)
    if selected_id is not None:
        condition = sa.or_(condition, Client.id == selected_id)
    return db.session.scalars(sa.select(Client).where(condition).order_by(Client.name)).all()


def outcome_expression():
    """call_status.call_outcome as SQL, so the call log can filter on what staff see in the badge."""
    failed = CallRecord.dial_status.in_(FAILED_DIAL_STATUSES)
    has_voicemail = sa.and_(CallRecord.voicemail_url.is_not(None), CallRecord.voicemail_url != "")
    ended = CallRecord.status.in_(TERMINAL_STATUSES)
    return sa.case(
        (sa.and_(failed, has_voicemail), "voicemail"),
        (failed, "missed"),
        (CallRecord.dial_status.in_(("completed", "answered")), "answered"),
        (CallRecord.routed_by == "message", "not forwarded"),
        (sa.and_(ended, sa.or_(CallRecord.status != "completed", CallRecord.dial_status == "canceled")), "missed"),
        (ended, "ended"),
        else_="in progress",
    )


OUTCOMES = ("answered", "missed", "voicemail", "not forwarded", "ended", "in progress")
