"""Business hours in the client's own time zone: weekdays, overnight ranges, closed dates, and both days a year
the clocks change (the hour that does not exist, the hour that happens twice)."""
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from phoneapp.domain.block_list import BlockEntry, blocking_entry, parse_block_pattern
from phoneapp.domain.business_hours import (
    Schedule,
    hours_as_json,
    is_open,
    next_opening,
    parse_closed_dates,
    parse_hours,
    parse_zone,
)

NEW_YORK = ZoneInfo("America/New_York")


def schedule(hours, zone="America/New_York", closed=()):
    parsed, problems = parse_hours(hours)
    assert problems == {}
    dates, problems = parse_closed_dates(list(closed))
    assert problems == {}
    return Schedule(ZoneInfo(zone), parsed, dates)


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


WEEKDAYS = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


@pytest.mark.parametrize("moment, open_", [
    (utc(2026, 11, 23, 13, 59), False),  # Monday 08:59 EST
    (utc(2026, 11, 23, 14, 0), True),    # 09:00
    (utc(2026, 11, 23, 21, 59), True),   # 16:59
    (utc(2026, 11, 23, 22, 0), False),   # 17:00: the end is not part of the range
    (utc(2026, 11, 28, 15, 0), False),   # Saturday
])
def test_a_weekday_schedule_in_the_clients_zone(moment, open_):
    assert is_open(schedule(WEEKDAYS), moment) is open_


def test_a_client_in_another_zone_than_the_apps_is_open_on_its_own_clock():
    tokyo = schedule(WEEKDAYS, zone="Asia/Tokyo")
    assert is_open(tokyo, utc(2026, 11, 23, 0, 0))  # Monday 09:00 in Tokyo, Sunday evening in New York
    assert not is_open(tokyo, utc(2026, 11, 23, 14, 0))  # Monday 09:00 in New York, 23:00 in Tokyo


def test_an_overnight_range_runs_past_midnight_and_belongs_to_the_day_it_starts():
    nights = schedule({"fri": [["22:00", "06:00"]]})
    assert not is_open(nights, datetime(2026, 11, 27, 21, 59, tzinfo=NEW_YORK))
    assert is_open(nights, datetime(2026, 11, 27, 22, 0, tzinfo=NEW_YORK))
    assert is_open(nights, datetime(2026, 11, 28, 5, 59, tzinfo=NEW_YORK))  # Saturday morning, Friday's range
    assert not is_open(nights, datetime(2026, 11, 28, 6, 0, tzinfo=NEW_YORK))
    assert not is_open(nights, datetime(2026, 11, 28, 23, 0, tzinfo=NEW_YORK))  # Saturday night: no range


def test_24_00_is_the_end_of_the_day_and_several_ranges_a_day_leave_a_gap():
    split = schedule({"mon": [["13:00", "24:00"], ["08:00", "12:00"]]})
    assert is_open(split, datetime(2026, 11, 23, 11, 59, tzinfo=NEW_YORK))
    assert not is_open(split, datetime(2026, 11, 23, 12, 30, tzinfo=NEW_YORK))
    assert is_open(split, datetime(2026, 11, 23, 23, 59, tzinfo=NEW_YORK))
    assert not is_open(split, datetime(2026, 11, 24, 0, 0, tzinfo=NEW_YORK))
    assert hours_as_json(split.hours) == {"mon": [["08:00", "12:00"], ["13:00", "24:00"]]}


def test_a_closed_date_closes_the_ranges_that_start_on_it():
    christmas = schedule({**WEEKDAYS, "thu": [["22:00", "06:00"]]}, closed=["2026-12-25"])
    assert not is_open(christmas, datetime(2026, 12, 25, 10, 0, tzinfo=NEW_YORK))  # a Friday
    assert is_open(christmas, datetime(2026, 12, 25, 3, 0, tzinfo=NEW_YORK))  # Thursday night's range runs on
    assert is_open(christmas, datetime(2026, 12, 28, 10, 0, tzinfo=NEW_YORK))
    always = schedule({}, closed=["2026-12-25"])
    assert is_open(always, datetime(2026, 12, 24, 23, 59, tzinfo=NEW_YORK))
    assert not is_open(always, datetime(2026, 12, 25, 0, 0, tzinfo=NEW_YORK))


def test_the_spring_change_moves_the_opening_with_the_clock_and_a_missing_hour_opens_when_it_would_have():
    sunday = schedule({"sun": [["09:00", "17:00"]]})
    # 8 March 2026: clocks go from 02:00 EST to 03:00 EDT, so 09:00 is 13:00 UTC, not 14:00.
    assert not is_open(sunday, utc(2026, 3, 8, 12, 59))
    assert is_open(sunday, utc(2026, 3, 8, 13, 0))
    assert not is_open(sunday, utc(2026, 3, 8, 21, 0))  # 17:00 EDT
    missing = schedule({"sun": [["02:30", "05:00"]]})
    # 02:30 does not exist that night: the range opens at the instant 02:30 EST would be, 03:30 EDT.
    assert not is_open(missing, utc(2026, 3, 8, 7, 29))
    assert is_open(missing, utc(2026, 3, 8, 7, 30))
    assert not is_open(missing, utc(2026, 3, 8, 9, 0))  # 05:00 EDT


def test_the_autumn_change_counts_the_hour_that_happens_twice_once_for_each_time_it_happens():
    # 1 November 2026: clocks go back from 02:00 EDT to 01:00 EST; 01:00 to 02:00 happens twice.
    night = schedule({"sun": [["01:00", "03:00"]]})
    assert is_open(night, utc(2026, 11, 1, 5, 0))    # 01:00 EDT, the first time
    assert is_open(night, utc(2026, 11, 1, 6, 30))   # 01:30 EST, the second time
    assert is_open(night, utc(2026, 11, 1, 7, 59))   # 02:59 EST
    assert not is_open(night, utc(2026, 11, 1, 8, 0))  # 03:00 EST: three real hours
    early = schedule({"sun": [["00:00", "01:30"]]})
    assert is_open(early, utc(2026, 11, 1, 5, 29))  # 01:29 EDT
    assert not is_open(early, utc(2026, 11, 1, 6, 15))  # 01:15 EST: the range ended at the first 01:30


def test_the_next_opening_skips_the_weekend_and_closed_dates():
    weekdays = schedule(WEEKDAYS, closed=["2026-11-30"])
    friday_evening = datetime(2026, 11, 27, 18, 0, tzinfo=NEW_YORK)
    assert next_opening(weekdays, friday_evening) == datetime(2026, 12, 1, 9, 0, tzinfo=NEW_YORK)
    assert next_opening(schedule({}, closed=["2026-12-25"]), datetime(2026, 12, 25, 8, 0, tzinfo=NEW_YORK)) \
        == datetime(2026, 12, 26, 0, 0, tzinfo=NEW_YORK)


@pytest.mark.parametrize("hours, field, words", [
    ({"mon": [["25:00", "17:00"]]}, "business_hours.mon[0]", "'25:00' is not a time"),
    ({"mon": [["9", "17:00"]]}, "business_hours.mon[0]", "'9' is not a time"),
    ({"funday": [["09:00", "17:00"]]}, "business_hours", "'funday' is not a day"),
    ({"mon": [["09:00", "09:00"]]}, "business_hours.mon[0]", "must not be empty"),
    ({"mon": [["24:00", "09:00"]]}, "business_hours.mon[0]", "cannot start at 24:00"),
    ({"mon": "09:00-17:00"}, "business_hours.mon", "must be a list"),
    (["09:00"], "business_hours", "must be an object"),
])
def test_a_bad_schedule_is_refused_naming_the_field(hours, field, words):
    _, problems = parse_hours(hours)
    assert words in problems[field]


def test_bad_zones_and_dates_are_refused_naming_what_is_wrong():
    assert "not a time zone" in parse_zone("Mars/Olympus_Mons")[1]
    assert parse_zone("Europe/Paris")[0] == ZoneInfo("Europe/Paris")
    _, problems = parse_closed_dates(["2026-12-25", "2026-13-01", "tomorrow"])
    assert set(problems) == {"closed_dates[1]", "closed_dates[2]"}


def test_the_block_list_turns_away_numbers_and_prefixes_for_every_client_or_one():
    entries = [BlockEntry("+19005550100"), BlockEntry("+1888*", client_id=7)]
    assert blocking_entry("+19005550100", 3, entries) == entries[0]
    assert blocking_entry("+18885550100", 7, entries) == entries[1]
    assert blocking_entry("+18885550100", 3, entries) is None  # another client's entry
    assert blocking_entry("+12025550143", 7, entries) is None
    assert blocking_entry("", 7, [BlockEntry("+1*")]) is None


@pytest.mark.parametrize("value, pattern, words", [
    ("(202) 555-0143", "+12025550143", None),
    ("+1900*", "+1900*", None),
    ("+1 900 *", "+1900*", None),
    ("1900*", None, "is not a prefix"),
    ("+19*00*", None, "is not a prefix"),
    ("12", None, "too short"),
    ("", None, "must be a phone number"),
])
def test_block_patterns_are_numbers_or_prefixes(value, pattern, words):
    parsed, why = parse_block_pattern(value)
    assert parsed == pattern
    assert (why is None) if words is None else (words in why)
