"""/api/call-records searched by caller (`q`), sorted (`sort`) and filtered by outcome, with the caller's name."""
from datetime import datetime

import pytest

from tests.support.api import assert_error
from tests.support.callers import JANE, call_in, four_callers, number_of


@pytest.fixture
def calls(app):
    four_callers(app)


def sids(response):
    assert response.status_code == 200, response.get_json()
    return [number_of(item["twilio_call_sid"]) for item in response.get_json()["items"]]


@pytest.mark.parametrize("q, expected", [
    ("555 01", [3, 1]),
    ("(415) 555", [1]),
    ("415-555-0142", [1]),
    ("+1 617", [4]),
    ("5550178", [3]),
    ("jane", [4, 1]),
    ("acme", [2]),
    ("ACME cor", [2]),
    ("  Doe ", [4]),
    ("_", []),
    ("%", []),
    ("999", []),
])
def test_q_finds_callers_by_part_of_their_number_in_any_format_or_of_their_name(api, calls, q, expected):
    assert sids(api.get("/api/call-records", query_string={"q": q})) == expected


@pytest.mark.parametrize("sort, expected", [
    (None, [4, 3, 2, 1]),
    ("-started_at", [4, 3, 2, 1]),
    ("started_at", [1, 2, 3, 4]),
    ("duration", [1, 2, 3, 4]),
    ("-duration", [3, 2, 1, 4]),
])
def test_sort_orders_by_start_or_duration_both_ways_calls_without_a_duration_last(api, calls, sort, expected):
    assert sids(api.get("/api/call-records", query_string={"sort": sort} if sort else {})) == expected


def test_outcome_combines_with_q_and_sort(api, calls):
    def found(**args):
        return sids(api.get("/api/call-records", query_string=args))

    assert found(outcome="missed") == [1]
    assert found(outcome="missed", q="jane") == [1]
    assert found(outcome="answered", q="jane") == []
    assert found(outcome="answered", q="555", sort="duration") == [2, 3]
    assert found(outcome="answered,in progress", q="555", sort="-duration") == [3, 2, 4]


def test_ties_go_by_id_the_same_way_across_pages(api, make_number, make_call):
    number = make_number()
    moment = datetime(2024, 5, 1, 9)
    same = [make_call(number, started_at=moment, duration=30).id for _ in range(5)]

    def walk(sort):
        return [item["id"] for page in (1, 2, 3)
                for item in api.get("/api/call-records", query_string={"sort": sort, "per_page": 2, "page": page})
                .get_json()["items"]]

    assert walk("duration") == walk("started_at") == same
    assert walk("-duration") == walk("-started_at") == same[::-1]


def test_each_call_says_its_callers_name_and_whether_they_called_before(api, app, calls):
    call_in(app, 5, JANE, "SMITH JANE")
    items = {number_of(item["twilio_call_sid"]): item for item in api.get("/api/call-records").get_json()["items"]}

    assert (items[1]["caller_name"], items[1]["first_time_caller"]) == ("SMITH JANE", True)
    assert (items[5]["caller_name"], items[5]["first_time_caller"]) == ("SMITH JANE", False)
    assert (items[3]["caller_name"], items[3]["first_time_caller"]) == (None, True)


@pytest.mark.parametrize("args, bad", [
    ({"sort": "longest"}, "sort"),
    ({"sort": "duration desc"}, "sort"),
    ({"outcome": "lost"}, "outcome"),
    ({"outcome": "missed,lost"}, "outcome"),
    ({"q": "5" * 101}, "q"),
    ({"q": "555\x00"}, "q"),
])
def test_a_bad_parameter_is_a_400_naming_it(api, calls, args, bad):
    body = assert_error(api.get("/api/call-records", query_string={"q": "jane", **args}), 400)
    assert set(body["details"]) == {bad}


def test_q_and_sort_are_documented(api):
    listing = api.get("/api/openapi.json").get_json()["paths"]["/api/call-records"]["get"]
    documented = {param["name"]: param["schema"] for param in listing["parameters"] if "name" in param}
    assert documented["sort"]["enum"] == ["-started_at", "started_at", "-duration", "duration"]
    assert documented["q"]["maxLength"] == 100
