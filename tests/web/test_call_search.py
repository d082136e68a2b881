"""The call log searched by caller, sorted by its column headers, and exported as searched and sorted; each call
with its caller's name and a mark on a caller's first call."""
import csv
import io
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import CallRecord
from phoneapp.services import call_log
from tests.support.callers import JANE, call_in, four_callers, number_of
from tests.support.pages import HX, soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")


@pytest.fixture
def calls(app):
    four_callers(app)


def listed(response):
    """The calls the log shows, top to bottom, as the n of each sid(n)."""
    assert response.status_code == 200
    return [number_of(row["data-call-sid"]) for row in soup(response).select("#calls-table tbody tr")]


def query_of(href):
    parts = urlsplit(href)
    return parts.path, {name: values[0] for name, values in parse_qs(parts.query).items()}


def header(page, label):
    """The call table's column header that reads `label`."""
    return next(th for th in page.select("#calls-table thead th") if text_of(th) == label)


@pytest.mark.parametrize("q, expected", [
    ("555 01", [3, 1]),
    ("(415) 555", [1]),
    ("415.555.0142", [1]),
    ("jane", [4, 1]),
    ("Acme", [2]),
    ("nobody", []),
])
def test_the_search_box_finds_callers_by_number_in_any_format_or_by_name(staff_client, calls, q, expected):
    response = staff_client.get(url_for("calls.calls", q=q))
    assert listed(response) == expected
    assert soup(response).find("input", {"name": "q"})["value"] == q
    partial = staff_client.get(url_for("calls.calls", fragment=True, q=q), headers=HX)
    assert listed(partial) == expected


def test_column_headers_sort_both_ways_and_keep_the_other_filters(staff_client, calls):
    page = soup(staff_client.get(url_for("calls.calls", q="555", outcome="answered,missed,in progress")))
    assert header(page, "Time")["aria-sort"] == "descending"
    assert not header(page, "Duration").has_attr("aria-sort")

    duration_link = header(page, "Duration").find("a")["href"]
    assert query_of(duration_link) == (url_for("calls.calls"), {
        "q": "555", "outcome": "answered,missed,in progress", "sort": "-duration"})
    longest_first = staff_client.get(duration_link)
    assert listed(longest_first) == [3, 2, 1, 4]
    page = soup(longest_first)
    assert header(page, "Duration")["aria-sort"] == "descending"
    assert not header(page, "Time").has_attr("aria-sort")

    shortest_first = staff_client.get(header(page, "Duration").find("a")["href"])
    assert listed(shortest_first) == [1, 2, 3, 4]
    page = soup(shortest_first)
    assert header(page, "Duration")["aria-sort"] == "ascending"
    # The filter form and the live table keep the order too.
    assert page.find("form", class_="filters").find("input", {"name": "sort"})["value"] == "duration"
    assert query_of(page.find(id="calls-table")["hx-get"])[1]["sort"] == "duration"

    oldest_first = staff_client.get(header(page, "Time").find("a")["href"])
    assert query_of(header(page, "Time").find("a")["href"])[1].get("sort") is None, "newest first is the default"
    assert listed(oldest_first) == [4, 3, 2, 1]
    ascending = staff_client.get(header(soup(oldest_first), "Time").find("a")["href"])
    assert listed(ascending) == [1, 2, 3, 4]
    assert header(soup(ascending), "Time")["aria-sort"] == "ascending"


def test_a_bad_order_or_search_is_ignored_and_said_why(staff_client, calls):
    response = staff_client.get(url_for("calls.calls", sort="loudest"))
    assert response.status_code == 200 and listed(response) == [4, 3, 2, 1]
    assert "“loudest” is not an order" in text_of(soup(response).find(id="sort-error"))

    response = staff_client.get(url_for("calls.calls", q="5" * 101))
    assert response.status_code == 200 and listed(response) == [4, 3, 2, 1]
    assert text_of(soup(response).find(id="q-error")).startswith("Ignored: the search must be at most 100")


def test_the_log_names_callers_and_marks_their_first_call(app, staff_client, calls):
    call_in(app, 5, JANE, "SMITH JANE", "completed", 40)
    rows = {number_of(row["data-call-sid"]): row
            for row in soup(staff_client.get(url_for("calls.calls"))).select("#calls-table tbody tr")}

    caller = rows[1].find("td", class_="call-caller")
    assert text_of(caller.find(class_="caller-name")) == "SMITH JANE"
    assert caller.find(class_="first-call") is not None
    assert rows[5].find(class_="first-call") is None
    assert text_of(rows[5].find(class_="caller-name")) == "SMITH JANE"
    assert rows[3].find(class_="caller-name") is None and rows[3].find(class_="first-call") is not None


def test_the_export_is_searched_and_sorted_like_the_log(staff_client, calls):
    args = {"q": "555", "sort": "-duration"}
    response = staff_client.get(url_for("calls.export_calls", **args), buffered=True)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="calls-matching-555.csv"'
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [number_of(row["twilio_call_sid"]) for row in rows] == listed(staff_client.get(url_for("calls.calls",
                                                                                                   **args)))
    assert [row["duration_seconds"] for row in rows] == ["95", "30", "12", ""]

    jane = staff_client.get(url_for("calls.export_calls", q="jane", sort="started_at"), buffered=True)
    assert [number_of(row["twilio_call_sid"]) for row in csv.DictReader(io.StringIO(jane.get_data(as_text=True)))] \
        == [1, 4]


@pytest.mark.parametrize("sort", call_log.SORTS)
def test_export_batches_walk_every_order_without_losing_or_repeating_a_call(app, make_number, sort):
    """Batches of two through equal times, equal durations and calls without one: the same calls, in the log's
    order, as one query of them all."""
    number = make_number()
    moments = [datetime(2024, 3, 1, 15), datetime(2024, 3, 1, 15), datetime(2024, 3, 2, 9)]
    durations = [30, None, 30, 5, None, 30, 61]
    db.session.execute(sa.insert(CallRecord), [
        {"twilio_call_sid": f"CA{i:032x}", "phone_assignment_id": number.id, "from_number": "+12025550143",
         "to_number": number.phone_number, "status": "completed", "started_at": moments[i % 3],
         "duration": duration} for i, duration in enumerate(durations)])
    db.session.commit()
    filters, problems = call_log.read_filters({"sort": sort})
    assert problems == {}

    batched = [row.id for rows in call_log.export_batches(filters, batch_size=2) for row in rows]

    expected = db.session.scalars(sa.select(CallRecord.id).order_by(*call_log.sort_order(sort))).all()
    assert batched == expected and len(set(batched)) == len(durations)
    if sort.endswith("duration"):
        durations_in_order = [db.session.get(CallRecord, call_id).duration for call_id in batched]
        assert durations_in_order[-2:] == [None, None]
