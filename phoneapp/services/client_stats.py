"""A client's calls per local day, answered against voicemail and missed, for the chart on its page."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from phoneapp.extensions import db
from phoneapp.models import CallRecord, utcnow
from phoneapp.services.call_outcomes import outcome_expression

# The outcomes the chart counts, in the call log's words: "in progress" has not ended yet, and
# blocked or unrouted calls were never forwarded to the client.
COUNTED_OUTCOMES = ("answered", "voicemail", "missed")
# Enough gridlines to read a bar against, few enough that their labels never crowd.
MAX_AXIS_STEPS = 5


@dataclass(frozen=True)
class DayCount:
    day: date
    answered: int = 0
    voicemail: int = 0
    missed: int = 0

    @property
    def calls(self):
        return self.answered + self.voicemail + self.missed


@dataclass(frozen=True)
class ClientCallStats:
    days: list[DayCount]

    @property
    def answered(self):
        return sum(day.answered for day in self.days)

    @property
    def voicemail(self):
        return sum(day.voicemail for day in self.days)

    @property
    def missed(self):
        return sum(day.missed for day in self.days)

    @property
    def calls(self):
        return self.answered + self.voicemail + self.missed

    @property
    def first_day(self):
        return self.days[0].day

    @property
    def last_day(self):
        return self.days[-1].day

    @property
    def answer_rate(self):
        """Answered share of the counted calls, 0.0 to 1.0; None when there were none."""
        return self.answered / self.calls if self.calls else None

    @property
    def axis_top(self):
        """The y-axis maximum: the busiest day rounded up to a whole gridline step."""
        step = axis_step(self.peak)
        return step * max(1, math.ceil(self.peak / step))

    @property
    def gridlines(self):
        return list(range(0, self.axis_top + 1, axis_step(self.peak)))

    @property
    def peak(self):
        return max((day.calls for day in self.days), default=0)


def axis_step(peak):
    """The smallest 1, 2 or 5 × 10ⁿ step that spans `peak` in at most MAX_AXIS_STEPS steps."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if peak <= step * MAX_AXIS_STEPS:
                return step
        magnitude *= 10


def local_day_starts(first_day, count, zone):
    """Local midnights from `first_day` on, as naive UTC: a day is 23 or 25 hours when the clocks change."""
    return [datetime.combine(first_day + timedelta(days=offset), time.min, tzinfo=zone)
            .astimezone(UTC).replace(tzinfo=None)
            for offset in range(count)]


def client_call_stats(client_id, days=30, now=None):
    """Real calls routed for a client over the last `days` local days, today included; one query."""
    zone = ZoneInfo(current_app.config["APP_TIMEZONE"])
    today = (now or utcnow()).replace(tzinfo=UTC).astimezone(zone).date()
    first_day = today - timedelta(days=days - 1)
    starts = local_day_starts(first_day, days + 1, zone)
    # Day boundaries are bound values, not SQL date functions: SQLite and PostgreSQL agree on them,
    # and started_at stays a plain range on the (client_id, started_at) index.
    day_index = sa.case(*[(CallRecord.started_at < end, index) for index, end in enumerate(starts[1:])])
    calls = (
        sa.select(day_index.label("day"), outcome_expression().label("outcome"))
        .where(CallRecord.client_id == client_id, CallRecord.is_test.is_(False),
               CallRecord.started_at >= starts[0], CallRecord.started_at < starts[-1])
        .subquery()
    )
    # Grouped outside so PostgreSQL need not match the two CASE expressions with their parameters.
    rows = db.session.execute(
        sa.select(calls.c.day, calls.c.outcome, sa.func.count()).group_by(calls.c.day, calls.c.outcome)
    ).all()
    counts = {outcome: [0] * days for outcome in COUNTED_OUTCOMES}
    for index, outcome, count in rows:
        if outcome in counts:
            counts[outcome][index] += count
    return ClientCallStats(days=[
        DayCount(first_day + timedelta(days=index), *(counts[outcome][index] for outcome in COUNTED_OUTCOMES))
        for index in range(days)])
