"""A test on a number's card stays true: a reloaded page shows the test still running, the Test button stays off
while it runs (a second press starts nothing), and a call that ends after the result is in leaves the card at once."""
import re

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.jobs.on_demand import start_test_call
from phoneapp.models import CallRecord, TestCall, utcnow
from phoneapp.services import call_tests
from tests.support.jobs import run_queued_jobs
from tests.support.pages import HX, card, csrf_headers, soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")


def seconds_until_refresh(shown):
    """How soon a card asks for itself again: "every 2s" -> 2, "load delay:30s" -> 30, none -> None."""
    trigger = shown.get("hx-trigger") or ""
    found = re.search(r"(?:every |delay:)(\d+)s", trigger)
    return int(found.group(1)) if found else None


def the_test_button(shown):
    return shown.find("button", string="Test")


def count_of_tests():
    return db.session.scalar(sa.select(sa.func.count()).select_from(TestCall))


def test_a_call_still_on_after_the_result_leaves_the_card_as_soon_as_it_ends(app, admin_client, assigned, admin):
    test = start_test_call(assigned, admin, live=False)
    run_queued_jobs(app)
    # The test phone's call to the number: the result is in, but Twilio has not yet said the call ended.
    call = CallRecord(twilio_call_sid="CA" + "7" * 32, phone_assignment_id=assigned.id, client_id=assigned.client_id,
                      from_number="+14155550100", to_number=assigned.phone_number, forwarded_to=assigned.client.phone,
                      routed_by="assignment", status="in-progress", dial_leg_status="in-progress", is_test=True,
                      started_at=utcnow())
    db.session.add(call)
    db.session.commit()
    shown = soup(admin_client.get(url_for("numbers.number_card", number_id=assigned.id, test_call=test.id),
                                  headers=HX)).find(id=f"number-{assigned.id}")
    assert "Test passed" in text_of(shown.select_one(".test-call"))
    assert "Call in progress from (415) 555-0100" in text_of(shown)
    # It looks again within the page's poll interval, keeping its test...
    assert seconds_until_refresh(shown) <= 3
    assert f"test_call={test.id}" in shown["hx-get"]

    call.status = "completed"
    db.session.commit()
    shown = soup(admin_client.get(shown["hx-get"], headers=HX)).find(id=f"number-{assigned.id}")
    # ...and that look no longer shows the call, while the result stays.
    assert "Call in progress" not in text_of(shown)
    assert "Test passed" in text_of(shown.select_one(".test-call"))


def test_a_reloaded_page_shows_the_running_test_and_keeps_test_off(app, admin_client, assigned, admin):
    test = start_test_call(assigned, admin)
    shown = card(soup(admin_client.get(url_for("numbers.numbers"))), assigned)
    assert "testing…" in text_of(shown.find(class_="status"))
    assert "Testing…" in text_of(shown.select_one(".test-call"))
    assert [step["data-step"] for step in shown.select(".check-step[data-step]")] == ["queued"]
    assert the_test_button(shown).has_attr("disabled")
    # It follows the test to its result, out of the page's poll meanwhile (that poll knows nothing of tests).
    assert shown["hx-get"] == url_for("numbers.number_card", number_id=assigned.id, test_call=test.id)
    assert seconds_until_refresh(shown) == 1
    assert shown.find("input", {"name": "card"}) is None
    run_queued_jobs(app)
    shown = soup(admin_client.get(shown["hx-get"], headers=HX)).find(id=f"number-{assigned.id}")
    assert "Test passed" in text_of(shown.select_one(".test-call"))
    assert not the_test_button(shown).has_attr("disabled")


def test_a_card_brought_back_by_the_page_poll_shows_a_test_started_elsewhere(admin_client, assigned, admin):
    before = utcnow()
    # Started in another tab, or through the API: the page's next poll brings the card back with it.
    test = start_test_call(assigned, admin)
    answer = soup(admin_client.get(url_for("numbers.number_changes", since=before.isoformat(), card=[assigned.id]),
                                   headers=HX))
    shown = answer.find(id=f"number-{assigned.id}")
    assert "Testing…" in text_of(shown.select_one(".test-call"))
    assert the_test_button(shown).has_attr("disabled")
    assert f"test_call={test.id}" in shown["hx-get"]


def test_the_number_page_keeps_test_off_while_a_test_runs(admin_client, assigned, admin):
    start_test_call(assigned, admin)
    page = soup(admin_client.get(url_for("numbers.number_detail", number_id=assigned.id)))
    shown = page.find(id=f"number-{assigned.id}")
    assert the_test_button(shown).has_attr("disabled")
    # The steps show once, in the Tests panel, which the card points to.
    assert len(page.select(".test-call")) == 1 and page.select_one("#test-panel .test-call")
    assert shown.find("a", href="#tests")


def test_a_second_test_while_one_runs_starts_nothing_and_says_why(admin_client, assigned, admin):
    running = start_test_call(assigned, admin)
    headers = csrf_headers(admin_client)
    response = admin_client.post(url_for("numbers.test_number", number_id=assigned.id), headers=headers)
    assert response.status_code == 200
    shown = soup(response).find(id=f"number-{assigned.id}")
    assert "already running" in text_of(shown.select_one(".card-note"))
    assert shown.select_one(f"#test-call-{running.id}") is not None
    assert the_test_button(shown).has_attr("disabled")
    # The note stays while the card follows the test.
    again = soup(admin_client.get(shown["hx-get"], headers=HX)).find(id=f"number-{assigned.id}")
    assert "already running" in text_of(again.select_one(".card-note"))

    panel = soup(admin_client.post(url_for("numbers.test_number", number_id=assigned.id),
                                   data={"panel": "detail", "live": "0"}, headers=headers))
    assert "already running" in text_of(panel)
    assert panel.select_one(f"#test-call-{running.id}") is not None

    plain = admin_client.post(url_for("numbers.test_number", number_id=assigned.id),
                              data={"csrf_token": headers["X-CSRFToken"]})
    assert plain.status_code == 303
    page = soup(admin_client.get(plain.headers["Location"]))
    assert "already running" in text_of(page.select_one(".flashes"))
    assert count_of_tests() == 1


def test_the_api_answers_409_to_a_second_test_while_one_runs(admin_client, assigned, admin):
    running = start_test_call(assigned, admin)
    headers = {"X-CSRFToken": csrf_headers(admin_client)["X-CSRFToken"]}
    response = admin_client.post(f"/api/phone-assignments/{assigned.id}/test-call", json={}, headers=headers)
    assert response.status_code == 409
    body = response.get_json()
    assert "already running" in body["error"]
    assert body["details"] == {"test_call": str(running.id)}
    assert f"/api/test-calls/{running.id}" in body["error"]
    assert count_of_tests() == 1


def test_a_new_test_can_start_once_the_last_one_ended(app, admin_client, assigned, admin):
    start_test_call(assigned, admin, live=False)
    run_queued_jobs(app)
    second = start_test_call(assigned, admin, live=False)
    assert second.finished_at is None and count_of_tests() == 2


@pytest.mark.parametrize("status, words", [("in-progress", "in progress"), ("ringing", "ringing"),
                                           ("initiated", "dialling")])
def test_the_test_phones_call_status_reads_in_words(app, admin_client, assigned, admin, signed_post, status, words):
    test = start_test_call(assigned, admin)
    call_tests.advance(test, "calling", None, "Calling")
    db.session.commit()
    response = signed_post(f"/twilio/test-call-status?test_call={test.id}",
                           {"CallSid": "CA" + "8" * 32, "CallStatus": status, "To": assigned.phone_number,
                            "From": app.config["TEST_CALLER_ID"]})
    assert response.status_code in (200, 204)
    shown = soup(admin_client.get(url_for("numbers.number_card", number_id=assigned.id, test_call=test.id),
                                  headers=HX))
    calling = text_of(shown.select_one(".check-step[data-step=calling]"))
    assert calling == f"• Calling the number : Calling (415) 555-0101 from (415) 555-0100: {words}"
