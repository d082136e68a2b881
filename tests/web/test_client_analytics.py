"""The client page's calls-per-day chart: local days, answered / voicemail / missed, its totals and their links."""
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.domain.call_status import call_outcome
from phoneapp.extensions import db
from phoneapp.models import CallRecord
from phoneapp.services.client_stats import ClientCallStats, DayCount, client_call_stats
from tests.support.pages import soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")

NEW_YORK = ZoneInfo("America/New_York")
# (status, dial_status, routed_by, voicemail_url) that call_outcome reads as each outcome.
OUTCOME_FIELDS = {
    "answered": ("completed", "completed", "assignment", None),
    "missed": ("completed", "no-answer", "assignment", None),
    "voicemail": ("completed", "busy", "assignment", "https://media.example.test/voicemail.mp3"),
    "unrouted": ("completed", None, "message", None),
    "in progress": ("ringing", None, "assignment", None),
}


@pytest.fixture
def new_york(app):
    """A zone five hours off UTC, so a UTC day and a local day disagree every evening."""
    app.config["APP_TIMEZONE"] = "America/New_York"
    return NEW_YORK


def utc(day, at=time(12, 0), zone=NEW_YORK):
    """A local wall-clock time as the naive UTC the database stores."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def local_today(zone=NEW_YORK):
    return datetime.now(zone).date()


def add_call(number, started_at, outcome="answered", client=None, is_test=False):
    status, dial_status, routed_by, voicemail = OUTCOME_FIELDS[outcome]
    assert call_outcome(status, dial_status, routed_by, has_voicemail=bool(voicemail)) == outcome
    owner = client or number.client
    db.session.add(CallRecord(twilio_call_sid=f"CA{uuid.uuid4().hex}", phone_assignment_id=number.id,
                              client_id=owner.id, to_number=number.phone_number, status=status,
                              dial_status=dial_status, routed_by=routed_by, voicemail_url=voicemail,
                              is_test=is_test, started_at=started_at))
    db.session.commit()


def analytics_of(admin_client, client):
    page = soup(admin_client.get(url_for("clients.client_detail", client_id=client.id)))
    return page.find(id=f"client-{client.id}-analytics")


def bars(chart):
    """{ISO date: (answered, voicemail, missed)} as the chart's bars carry them."""
    return {bar["data-date"]: (int(bar["data-answered"]), int(bar["data-voicemail"]), int(bar["data-missed"]))
            for bar in chart.select("svg .chart-day")}


def totals(chart):
    return {item["data-total"]: text_of(item.find("dd")) for item in chart.select("[data-total]")}


def test_calls_land_on_their_local_day(admin_client, make_client, make_number, new_york):
    acme = make_client()
    number = make_number(client=acme)
    today = local_today()
    evening = today - timedelta(days=3)
    add_call(number, utc(evening, time(23, 59)), "answered")
    add_call(number, utc(evening + timedelta(days=1), time(0, 1)), "missed")
    add_call(number, utc(today - timedelta(days=29), time(0, 0, 30)), "voicemail")
    add_call(number, utc(today - timedelta(days=30), time(23, 59)), "answered")
    add_call(number, utc(today, time(0, 5)), "answered")

    chart = analytics_of(admin_client, acme)
    per_day = bars(chart)
    assert list(per_day) == [(today - timedelta(days=back)).isoformat() for back in range(29, -1, -1)]
    assert per_day[evening.isoformat()] == (1, 0, 0)
    assert per_day[(evening + timedelta(days=1)).isoformat()] == (0, 0, 1)
    assert per_day[(today - timedelta(days=29)).isoformat()] == (0, 1, 0)
    assert per_day[today.isoformat()] == (1, 0, 0)
    assert sum(sum(counts) for counts in per_day.values()) == 4
    bar = chart.find(attrs={"data-date": evening.isoformat()})
    assert text_of(bar.find("title")) == (f"{evening.strftime('%a %b %-d, %Y')}: 1 call, 1 answered, "
                                          "0 to voicemail, 0 missed")
    assert "America/New_York" in text_of(chart.find(class_="chart-note"))


def test_totals_and_answer_rate(admin_client, make_client, make_number):
    acme = make_client()
    number = make_number(client=acme)
    yesterday = local_today(UTC) - timedelta(days=1)
    for outcome in ("answered", "answered", "answered", "answered", "missed", "voicemail", "voicemail", "unrouted"):
        add_call(number, utc(yesterday, zone=UTC), outcome)

    chart = analytics_of(admin_client, acme)
    # An unrouted call reached nobody of the client's: it is no call the client missed.
    assert totals(chart) == {"calls": "7", "answered": "4", "voicemail": "2", "missed": "1", "answer-rate": "57%"}
    assert bars(chart)[yesterday.isoformat()] == (4, 2, 1)
    svg = chart.find("svg")
    assert svg["role"] == "img"
    assert "7 calls, 4 answered, 2 to voicemail, 1 missed, answer rate 57%" in svg["aria-label"]
    table_rows = chart.select("details table tbody tr")
    assert len(table_rows) == 30
    assert [text_of(cell) for cell in table_rows[1].find_all("td")][1:] == ["4", "2", "1", "7"]


def test_test_calls_and_unfinished_calls_are_left_out(admin_client, make_client, make_number):
    acme = make_client()
    number = make_number(client=acme)
    today = local_today(UTC)
    add_call(number, utc(today, time(0, 1), zone=UTC), "answered")
    add_call(number, utc(today, time(0, 2), zone=UTC), "answered", is_test=True)
    add_call(number, utc(today, time(0, 3), zone=UTC), "missed", is_test=True)
    add_call(number, utc(today, time(0, 4), zone=UTC), "in progress")

    chart = analytics_of(admin_client, acme)
    assert bars(chart)[today.isoformat()] == (1, 0, 0)
    assert totals(chart) == {"calls": "1", "answered": "1", "voicemail": "0", "missed": "0", "answer-rate": "100%"}
    assert "still in progress and test calls are not counted" in text_of(chart.find(class_="chart-note"))


def test_every_outcome_is_counted_as_the_badge_reads_it(app, make_client, make_number):
    acme = make_client()
    number = make_number(client=acme)
    now = datetime(2025, 6, 15, 12, 0)
    combos = [("completed", "completed", "assignment", None), ("completed", "busy", "assignment", "https://x/vm"),
              ("completed", "no-answer", "assignment", None), ("completed", None, "message", None),
              ("no-answer", None, "assignment", None), ("completed", "canceled", "assignment", None),
              ("completed", None, "assignment", None), ("ringing", None, "assignment", None),
              ("in-progress", "answered", "default_number", None), ("failed", "failed", "assignment", None)]
    for status, dial_status, routed_by, voicemail in combos:
        db.session.add(CallRecord(twilio_call_sid=f"CA{uuid.uuid4().hex}", phone_assignment_id=number.id,
                                  client_id=acme.id, status=status, dial_status=dial_status, routed_by=routed_by,
                                  voicemail_url=voicemail, started_at=now - timedelta(hours=1)))
    db.session.commit()
    outcomes = [call_outcome(s, d, r, has_voicemail=bool(v)) for s, d, r, v in combos]
    # Every call has a decided outcome: no word outside the one vocabulary.
    assert set(outcomes) <= {"answered", "voicemail", "missed", "unrouted", "in progress"}

    stats = client_call_stats(acme.id, now=now)
    assert (stats.answered, stats.voicemail, stats.missed) == (
        outcomes.count("answered"), outcomes.count("voicemail"), outcomes.count("missed"))
    assert stats.calls + outcomes.count("in progress") + outcomes.count("unrouted") == len(combos)


def test_a_call_stays_with_the_client_it_was_routed_for(admin_client, make_client, make_number):
    acme = make_client()
    brightside = make_client(name="Brightside Dental", phone="+14155550142")
    number = make_number(client=acme)
    add_call(number, utc(local_today(UTC), time(0, 1), zone=UTC), "answered")
    number.client_id = brightside.id
    db.session.commit()

    assert totals(analytics_of(admin_client, acme))["calls"] == "1"
    moved_to = analytics_of(admin_client, brightside)
    assert totals(moved_to)["calls"] == "0"
    assert moved_to.find("svg") is None


def test_no_calls_in_the_window_shows_an_empty_state(admin_client, make_client, make_number):
    acme = make_client()
    number = make_number(client=acme)
    add_call(number, utc(local_today(UTC) - timedelta(days=45), zone=UTC), "answered")

    chart = analytics_of(admin_client, acme)
    assert chart.find("svg") is None
    assert text_of(chart.find(class_="empty-title")) == "No calls in the last 30 days"
    assert totals(chart) == {"calls": "0", "answered": "0", "voicemail": "0", "missed": "0", "answer-rate": "—"}


@pytest.mark.parametrize(("now", "calls", "expected"), [
    # Spring forward on March 9: the week before is five hours off UTC, the day itself 23 hours long.
    (datetime(2025, 3, 20, 16, 0),
     [(date(2025, 3, 5), time(23, 30)), (date(2025, 3, 9), time(0, 30)), (date(2025, 3, 9), time(23, 30)),
      (date(2025, 3, 10), time(0, 30))],
     {date(2025, 3, 5): 1, date(2025, 3, 9): 2, date(2025, 3, 10): 1}),
    # Fall back on November 2: a 25-hour day, and the window's first days still four hours off UTC.
    (datetime(2025, 11, 10, 3, 0),
     [(date(2025, 10, 11), time(0, 0)), (date(2025, 10, 10), time(23, 59)), (date(2025, 11, 2), time(23, 30)),
      (date(2025, 11, 3), time(0, 0)), (date(2025, 11, 9), time(23, 59))],
     {date(2025, 10, 11): 1, date(2025, 11, 2): 1, date(2025, 11, 3): 1, date(2025, 11, 9): 1}),
])
def test_days_follow_the_clocks_when_they_change(make_client, make_number, new_york, now, calls, expected):
    acme = make_client()
    number = make_number(client=acme)
    for day, at in calls:
        add_call(number, utc(day, at), "answered")

    stats = client_call_stats(acme.id, now=now)
    today = now.replace(tzinfo=UTC).astimezone(NEW_YORK).date()
    assert [day.day for day in stats.days] == [today - timedelta(days=back) for back in range(29, -1, -1)]
    assert {day.day: day.answered for day in stats.days if day.answered} == expected


def test_stats_take_one_query_whatever_the_data(app, make_client, make_number):
    acme = make_client()
    number = make_number(client=acme)
    today = local_today(UTC)
    for back in range(40):
        for outcome in OUTCOME_FIELDS:
            add_call(number, utc(today - timedelta(days=back), zone=UTC), outcome)
    client_id = acme.id
    statements = []

    def count(*args):
        statements.append(args[2])

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        stats = client_call_stats(client_id)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == 1
    assert (stats.answered, stats.voicemail, stats.missed) == (30, 30, 30)


@pytest.mark.parametrize(("peak", "gridlines"), [
    (1, [0, 1]), (5, [0, 1, 2, 3, 4, 5]), (7, [0, 2, 4, 6, 8]), (12, [0, 5, 10, 15]), (260, [0, 100, 200, 300]),
])
def test_the_y_axis_ends_on_a_round_gridline_above_the_busiest_day(peak, gridlines):
    stats = ClientCallStats(days=[DayCount(date(2025, 6, 1), answered=peak - peak // 3, missed=peak // 3),
                                  DayCount(date(2025, 6, 2), answered=1)])
    assert stats.gridlines == gridlines
    assert stats.axis_top == gridlines[-1] >= stats.peak
