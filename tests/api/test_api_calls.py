"""/api/call-records: newest first, paginated, every filter, outcome words agreeing with call_outcome."""
import itertools
from datetime import datetime

import pytest

from phoneapp.api.calls import CALL_STATUSES, OUTCOME_FILTERS
from phoneapp.domain.call_status import KNOWN_STATUSES, OUTCOMES, call_outcome
from tests.support.api import assert_error


def ids(response):
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


@pytest.fixture
def history(make_client, make_number, make_call):
    """Two clients' numbers and an unassigned one, with calls spread over a few days."""
    acme, birch = make_client(), make_client(name="Birch", phone="+14155550111")
    a, b, loose = make_number(client=acme), make_number(client=birch), make_number()
    return {
        "a": a, "b": b, "acme": acme, "birch": birch,
        "a_answered": make_call(a, started_at=datetime(2024, 5, 1, 9), status="completed", dial_status="completed",
                                duration=60),
        "a_missed": make_call(a, started_at=datetime(2024, 5, 2, 9), status="completed", dial_status="no-answer"),
        "b_voicemail": make_call(b, started_at=datetime(2024, 5, 3, 9), status="completed", dial_status="busy",
                                 voicemail_url="https://api.twilio.com/rec/RE1"),
        "b_test": make_call(b, started_at=datetime(2024, 5, 4, 9), status="completed", dial_status="completed",
                            is_test=True),
        "loose_ringing": make_call(loose, started_at=datetime(2024, 5, 5, 9), status="ringing"),
    }


def test_newest_first_and_paginated(api, history):
    everything = api.get("/api/call-records").get_json()
    assert everything["total"] == 5 and everything["per_page"] == 50
    started = [item["started_at"] for item in everything["items"]]
    assert started == sorted(started, reverse=True) and started[0] == "2024-05-05T09:00:00Z"
    pages = [api.get(f"/api/call-records?per_page=2&page={page}").get_json() for page in (1, 2, 3, 4)]
    assert [len(p["items"]) for p in pages] == [2, 2, 1, 0]
    assert all(p["total"] == 5 and p["per_page"] == 2 for p in pages)
    assert [i["id"] for p in pages for i in p["items"]] == [i["id"] for i in everything["items"]]


def test_same_start_time_is_ordered_by_id(api, make_number, make_call):
    number = make_number()
    moment = datetime(2024, 5, 1, 9)
    first, second = make_call(number, started_at=moment), make_call(number, started_at=moment)
    assert ids(api.get("/api/call-records")) == [second.id, first.id]


@pytest.mark.parametrize("query, expected", [
    ("phone_assignment_id={a.id}", ["a_missed", "a_answered"]),
    ("client_id={birch.id}", ["b_test", "b_voicemail"]),
    ("status=ringing", ["loose_ringing"]),
    ("status=completed", ["b_test", "b_voicemail", "a_missed", "a_answered"]),
    ("status=answered", ["b_test", "a_answered"]),
    ("status=missed", ["a_missed"]),
    ("status=voicemail", ["b_voicemail"]),
    ("since=2024-05-03", ["loose_ringing", "b_test", "b_voicemail"]),
    ("since=2024-05-03T09:00:00Z", ["loose_ringing", "b_test", "b_voicemail"]),
    ("since=2024-05-03T09:00:01", ["loose_ringing", "b_test"]),
    ("until=2024-05-02T09:00:00Z", ["a_answered"]),
    ("until=2024-05-02T11:00:00%2B02:00", ["a_answered"]),
    ("since=2024-05-02T03:00:00-07:00&until=2024-05-04", ["b_voicemail"]),
    ("is_test=true", ["b_test"]),
    ("is_test=false", ["loose_ringing", "b_voicemail", "a_missed", "a_answered"]),
    ("client_id={acme.id}&status=answered&is_test=false", ["a_answered"]),
    ("client_id=9999", []),
])
def test_filters(api, history, query, expected):
    response = api.get("/api/call-records?" + query.format(**history))
    assert ids(response) == [history[name].id for name in expected]
    assert response.get_json()["total"] == len(expected)


@pytest.mark.parametrize("query, field", [
    ("status=bogus", "status"), ("status=", "status"), ("status=%00", "status"), ("since=yesterday", "since"),
    ("until=2024-13-01", "until"), ("since=2024-05-02&until=2024-05-01", "until"), ("is_test=yes", "is_test"),
    ("client_id=abc", "client_id"), ("phone_assignment_id=-1", "phone_assignment_id"),
    ("phone_assignment_id=99999999999", "phone_assignment_id"), ("per_page=201", "per_page"),
    ("since=0001-01-01T00:00:00%2B05:00", "since"), ("sort=asc", "sort"),
])
def test_bad_filters_are_400(api, history, query, field):
    assert field in assert_error(api.get("/api/call-records?" + query), 400)["details"]


def test_record_has_every_field_and_the_outcome(api, history):
    call = history["b_voicemail"]
    body = api.get(f"/api/call-records/{call.id}").get_json()
    assert body["twilio_call_sid"] == call.twilio_call_sid
    assert (body["phone_assignment_id"], body["client_id"]) == (history["b"].id, history["birch"].id)
    assert (body["status"], body["dial_status"], body["outcome"]) == ("completed", "busy", "voicemail")
    # phoneapp's own address of the voicemail, which staff play through phoneapp; never Twilio's.
    assert body["voicemail_url"] == f"https://calls.example.test/calls/{call.id}/voicemail"
    assert body["started_at"] == "2024-05-03T09:00:00Z" and body["answered_at"] is None
    for field in ("from_number", "to_number", "forwarded_to", "duration", "recording_url", "caller_city",
                  "caller_state", "caller_zip", "caller_country", "is_test", "ended_at", "created_at"):
        assert field in body
    assert_error(api.get("/api/call-records/999999"), 404)
    assert_error(api.get("/api/call-records/" + "9" * 25), 404)


def test_status_filter_words_are_exactly_statuses_and_outcomes():
    assert set(CALL_STATUSES) == KNOWN_STATUSES
    assert not set(OUTCOME_FILTERS) & KNOWN_STATUSES


def test_outcome_filter_agrees_with_call_outcome(api, make_number, make_call):
    """Every combination of what Twilio may have told us gets one word, and the SQL filter agrees with it."""
    number = make_number()
    combos = itertools.product(sorted(KNOWN_STATUSES), [None, "completed", "answered", "busy", "no-answer",
                                                       "failed", "canceled"],
                               [None, "assignment", "message", "blocked"], [None, "", "https://api.twilio.com/rec/RE9"],
                               [None, "completed", "no-answer"])
    expected = {word: set() for word in OUTCOMES}
    for status, dial_status, routed_by, voicemail_url, leg in combos:
        call = make_call(number, status=status, dial_status=dial_status, routed_by=routed_by,
                         voicemail_url=voicemail_url, dial_leg_status=leg)
        expected[call_outcome(status, dial_status, routed_by, bool(voicemail_url), leg)].add(call.id)
    assert all(expected.values()), "every outcome word is reachable"

    def listed(query):
        items = []
        for page in itertools.count(1):
            body = api.get(f"/api/call-records?{query}&per_page=200&page={page}").get_json()
            items += body["items"]
            if len(body["items"]) < 200:
                return body["total"], items

    for word, wanted in expected.items():
        for query in [f"outcome={word}"] + ([f"status={word}"] if word in OUTCOME_FILTERS else []):
            total, items = listed(query)
            assert total == len(wanted), query
            assert {item["id"] for item in items} == wanted, query
            assert {item["outcome"] for item in items} == {word}
    total, items = listed("outcome=missed,voicemail")
    assert {item["id"] for item in items} == expected["voicemail"] | expected["missed"]
    assert total == len(items)
    assert_error(api.get("/api/call-records?outcome=ended"), 400)
    assert_error(api.get("/api/call-records?outcome=missed,not+forwarded"), 400)
