"""The rule in force now, in words: hours in the client's own zone, closed dates, overnight ranges, the ring plan."""
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from phoneapp.domain.business_hours import Schedule, parse_closed_dates, parse_hours
from phoneapp.domain.call_plan import ClientRules
from phoneapp.domain.rule_summary import hours_in_words, ring_plan, summarise_rules
from phoneapp.models import utcnow
from phoneapp.services.client_rules import rule_summary

WEEKDAYS = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def rules(hours=None, zone="America/New_York", closed=(), **fields):
    parsed, problems = parse_hours(hours)
    dates, more = parse_closed_dates(list(closed))
    assert problems == more == {}
    return ClientRules(schedule=Schedule(ZoneInfo(zone), parsed, dates), **fields)


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


def now_words(client_rules, moment, home_zone="America/New_York"):
    return summarise_rules(client_rules, moment, 1, home_zone=home_zone).now


@pytest.mark.parametrize("moment, words", [
    (utc(2026, 11, 23, 15, 0), "open until 17:00"),                     # Monday 10:00 in New York
    (utc(2026, 11, 23, 23, 0), "after hours until 9:00 Tue, voicemail"),  # Monday 18:00
    (utc(2026, 11, 27, 23, 0), "after hours until 9:00 Mon, voicemail"),  # Friday 18:00: the weekend
    (utc(2026, 11, 23, 13, 0), "after hours until 9:00, voicemail"),      # Monday 08:00: opens later today
])
def test_the_hours_in_force(moment, words):
    assert now_words(rules(WEEKDAYS), moment) == words


def test_no_schedule_is_always_open():
    assert now_words(ClientRules(), utc(2026, 11, 23, 3, 0)) == "always open"
    assert now_words(rules({}), utc(2026, 11, 23, 3, 0)) == "always open"


def test_a_closed_date_says_so_and_when_the_client_opens_again():
    christmas = rules(WEEKDAYS, closed=["2026-12-25"])
    assert now_words(christmas, utc(2026, 12, 25, 15, 0)) == "closed today (2026-12-25) until 9:00 Mon, voicemail"
    saturday_open = rules({**WEEKDAYS, "sat": [["09:00", "13:00"]]}, closed=["2026-12-25"])
    assert now_words(saturday_open, utc(2026, 12, 25, 15, 0)) == \
        "closed today (2026-12-25) until 9:00 Sat, voicemail"


def test_after_hours_forward_names_the_number():
    forward = rules(WEEKDAYS, after_hours="forward", after_hours_number="+14155550100")
    assert now_words(forward, utc(2026, 11, 23, 23, 0)) == "after hours until 9:00 Tue, forwards to (415) 555-0100"


def test_an_overnight_range_is_open_until_the_next_morning():
    nights = rules({"fri": [["22:00", "06:00"]]})
    assert now_words(nights, utc(2026, 11, 28, 4, 0)) == "open until 6:00 Sat"  # Friday 23:00
    assert now_words(nights, utc(2026, 11, 28, 10, 0)) == "open until 6:00"  # Saturday 05:00
    back_to_back = rules({"mon": [["22:00", "24:00"]], "tue": [["00:00", "06:00"]]})
    assert now_words(back_to_back, utc(2026, 11, 24, 4, 0)) == "open until 6:00 Tue"


def test_a_client_in_another_zone_than_the_apps_is_read_on_its_own_clock_and_says_which():
    tokyo = rules(WEEKDAYS, zone="Asia/Tokyo")
    # Monday 09:30 in Tokyo, Sunday evening in New York.
    assert now_words(tokyo, utc(2026, 11, 23, 0, 30)) == "open until 17:00 (Tokyo time)"
    assert now_words(tokyo, utc(2026, 11, 23, 0, 30), home_zone="Asia/Tokyo") == "open until 17:00"
    assert now_words(tokyo, utc(2026, 11, 23, 9, 0)) == "after hours until 9:00 Tue (Tokyo time), voicemail"


def test_the_day_the_clocks_go_forward_opens_on_the_local_clock():
    # 2027-03-14, New York: 02:00 does not exist. A Sunday opening at 09:00 is still 09:00 local (13:00 UTC).
    sunday = rules({"sun": [["09:00", "17:00"]]})
    assert now_words(sunday, utc(2027, 3, 14, 6, 30)) == "after hours until 9:00, voicemail"
    assert now_words(sunday, utc(2027, 3, 14, 13, 0)) == "open until 17:00"


@pytest.mark.parametrize("count, fields, words", [
    (1, {}, "rings 1 number"),
    (3, {"ring_seconds": 20}, "rings 3 numbers in turn, 20 s each"),
    (3, {}, "rings 3 numbers in turn, 25 s each"),
    (3, {"ring_mode": "simultaneous"}, "rings 3 numbers at once"),
    (2, {"whisper": True}, "rings 2 numbers in turn, 25 s each, whisper"),
    (1, {"whisper": True, "require_accept": True}, "rings 1 number, whisper, press 1 to accept"),
    (0, {}, "rings no number"),
])
def test_the_ring_plan(count, fields, words):
    assert ring_plan(count, ClientRules(**fields), dial_timeout=25) == words


def test_a_schedule_in_words_for_the_audit_trail():
    assert hours_in_words({"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "sat": [["22:00", "06:00"]]}) == \
        "Mon 09:00–12:00, 13:00–17:00; Sat 22:00–06:00"
    assert hours_in_words({}) == "always open"


def test_a_stored_client_summarised_at_a_frozen_time(app, make_client):
    client = make_client(timezone="America/Los_Angeles", business_hours=WEEKDAYS, closed_dates=["2026-12-25"],
                         failover_numbers=["+14155550100", "+14155550101"], ring_seconds=20)
    with time_machine.travel(utc(2026, 12, 25, 18, 0), tick=False):  # Friday 10:00 in Los Angeles, closed
        summary = rule_summary(client, client.phone, utcnow(), app.config)
    assert summary.text == ("closed today (2026-12-25) until 9:00 Mon (Los Angeles time), voicemail · "
                            "rings 3 numbers in turn, 20 s each")
    with time_machine.travel(utc(2026, 12, 24, 18, 0), tick=False):  # Thursday 10:00 there, 18:00 in UTC
        summary = rule_summary(client, client.phone, utcnow(), app.config)
    assert summary.now == "open until 17:00 (Los Angeles time)"
