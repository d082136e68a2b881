"""A client's business hours (SPEC §3a.2): a weekly schedule in its own time zone, and dates it is closed.

Plain values in and out, no Flask. Every moment is compared as an instant (UTC), never as a wall-clock time,
so the hour that does not exist and the hour that happens twice on the days the clocks change are handled by
the time zone, not by hand.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# How far ahead to look for the next opening: a year of closed dates is the most anyone sets.
_LOOKAHEAD_DAYS = 400
MAX_RANGES_PER_DAY = 6
MAX_CLOSED_DATES = 366


@dataclass(frozen=True)
class Schedule:
    """`hours`: per day, (start, end) local times; an end at or before its start runs past midnight
    (22:00–06:00), and 24:00 is the end of the day. A range belongs to the day it starts on, so a closed date
    closes the ranges that start on it. No ranges at all: always open (but for the closed dates)."""

    zone: ZoneInfo
    hours: dict = field(default_factory=dict)
    closed: frozenset = frozenset()

    @property
    def has_hours(self):
        return any(self.hours.get(day) for day in DAYS)


def is_open(schedule: Schedule, moment: datetime) -> bool:
    """Whether the client takes calls at `moment` (aware, or naive UTC)."""
    instant = _utc(moment)
    local_day = instant.astimezone(schedule.zone).date()
    if not schedule.has_hours:
        return local_day not in schedule.closed
    return any(start <= instant < end for start, end in _ranges_around(schedule, local_day))


def next_opening(schedule: Schedule, moment: datetime) -> datetime | None:
    """When the client next opens after `moment` (aware, in its zone), or None when it never does."""
    instant = _utc(moment)
    day = instant.astimezone(schedule.zone).date()
    for offset in range(_LOOKAHEAD_DAYS):
        candidate = day + timedelta(days=offset)
        if not schedule.has_hours:
            if candidate not in schedule.closed and offset > 0:
                return datetime.combine(candidate, time.min, schedule.zone)
            continue
        starts = sorted(start for start, _ in _ranges_of(schedule, candidate) if start > instant)
        if starts:
            return starts[0].astimezone(schedule.zone)
    return None


def _ranges_around(schedule, local_day):
    # A range that started yesterday may still be running (22:00–06:00).
    return [*_ranges_of(schedule, local_day - timedelta(days=1)), *_ranges_of(schedule, local_day)]


def _ranges_of(schedule, day):
    """The ranges starting on `day`, as UTC instants."""
    if day in schedule.closed:
        return []
    ranges = []
    for start, end in schedule.hours.get(DAYS[day.weekday()], ()):
        opens = datetime.combine(day, start, schedule.zone)
        end_day = day + timedelta(days=1) if end is None or end <= start else day
        closes = datetime.combine(end_day, end or time.min, schedule.zone)
        ranges.append((opens.astimezone(UTC), closes.astimezone(UTC)))
    return ranges


def _utc(moment):
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# -- reading a schedule as staff and the API give it ------------------------------------------------------

def parse_zone(value):
    """(ZoneInfo, None) or (None, why not)."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None, "must be a time zone name such as America/New_York"
    try:
        return ZoneInfo(value.strip()), None
    except (ZoneInfoNotFoundError, ValueError):
        return None, f"{value.strip()!r} is not a time zone (use a name such as America/New_York)"


def parse_hours(value):
    """({day: ((start, end), …)}, {field: why}) from {"mon": [["09:00", "17:00"]], …}; None or {} is always open."""
    if value in (None, ""):
        return {}, {}
    if not isinstance(value, dict):
        return {}, {"business_hours": 'must be an object such as {"mon": [["09:00", "17:00"]]}'}
    hours, problems = {}, {}
    for day, ranges in value.items():
        name = f"business_hours.{day}"
        if day not in DAYS:
            problems["business_hours"] = f"{str(day)[:20]!r} is not a day: use {', '.join(DAYS)}"
            continue
        if not isinstance(ranges, list) or len(ranges) > MAX_RANGES_PER_DAY:
            problems[name] = f'must be a list of at most {MAX_RANGES_PER_DAY} ranges such as [["09:00", "17:00"]]'
            continue
        parsed = []
        for index, pair in enumerate(ranges):
            start, end, why = _parse_range(pair)
            if why:
                problems[f"{name}[{index}]"] = why
            else:
                parsed.append((start, end))
        hours[day] = tuple(sorted(parsed))
    return hours, problems


def _parse_range(pair):
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        return None, None, 'must be a pair of times such as ["09:00", "17:00"]'
    times = []
    for value in pair:
        if not isinstance(value, str) or not _TIME.match(value):
            return None, None, f"{str(value)[:20]!r} is not a time HH:MM (00:00 to 24:00)"
        times.append(None if value == "24:00" else time.fromisoformat(value))
    start, end = times
    if start is None:
        return None, None, "a range cannot start at 24:00"
    if start == end:
        return None, None, "a range must not be empty: its start and end are the same"
    return start, end, None


def parse_closed_dates(value):
    """(frozenset of dates, {field: why}) from ["2026-12-25", …]."""
    if value in (None, ""):
        return frozenset(), {}
    if not isinstance(value, list) or len(value) > MAX_CLOSED_DATES:
        return frozenset(), {"closed_dates": f"must be a list of at most {MAX_CLOSED_DATES} dates YYYY-MM-DD"}
    dates, problems = set(), {}
    for index, text in enumerate(value):
        try:
            if not isinstance(text, str) or not _DATE.match(text):
                raise ValueError
            dates.add(date.fromisoformat(text))
        except ValueError:
            problems[f"closed_dates[{index}]"] = f"{str(text)[:20]!r} is not a date YYYY-MM-DD"
    return frozenset(dates), problems


def hours_as_json(hours):
    """A parsed schedule as the API and the database keep it: {"mon": [["09:00", "17:00"]], …}."""
    return {day: [[start.strftime("%H:%M"), "24:00" if end is None else end.strftime("%H:%M")]
                  for start, end in hours[day]] for day in DAYS if hours.get(day)}
