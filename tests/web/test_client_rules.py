"""The routing rules on the client page: the form (each bad rule shown by its field, nothing saved), the rules in
words, the rule in force now on the client page and on its numbers' cards, and the change in the audit trail."""
from datetime import UTC, datetime

import pytest
import time_machine
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import Client
from phoneapp.services.routing_table import LOOP_REFUSAL
from tests.support.pages import STAFF, card, form_token, login, soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")

EMPTY_FORM = {f"hours_{day}": "" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")} | {
    "timezone": "UTC", "closed_dates": "", "after_hours": "voicemail", "after_hours_number": "",
    "failover_numbers": "", "ring_mode": "sequential", "ring_seconds": "", "greeting": ""}
GOOD_FORM = EMPTY_FORM | {
    "hours_mon": "9:00-12:00, 13:00-17:00", "hours_tue": "09:00-17:00", "hours_wed": "09:00-17:00",
    "hours_thu": "09:00-17:00", "hours_fri": "09:00-17:00, 22:00-06:00", "timezone": "America/New_York",
    "closed_dates": "2026-12-25\n2027-01-01", "after_hours": "forward", "after_hours_number": "(415) 555-0100",
    "failover_numbers": "(415) 555-0101\n+14155550102", "ring_mode": "sequential", "ring_seconds": "20",
    "whisper": "1", "require_accept": "1", "greeting": "Thanks for calling Acme."}


def page_at(app, moment, endpoint, **values):
    """A page as it reads at `moment`, to a browser logged in then: a session cannot predate its login."""
    browser = app.test_client()
    with time_machine.travel(moment, tick=False):
        assert login(browser, *STAFF).status_code == 303
        response = browser.get(url_for(endpoint, **values))
    assert response.status_code == 200
    return soup(response)


def post_rules(browser, client, form):
    token = form_token(browser, "clients.edit_client_rules", client_id=client.id)
    return browser.post(url_for("clients.update_client_rules", client_id=client.id), data={**form, "csrf_token": token})


def test_the_form_starts_from_the_apps_zone_and_the_clients_rules(staff_client, make_client):
    client = make_client(business_hours={"fri": [["22:00", "06:00"]]}, failover_numbers=["+14155550101"])
    page = soup(staff_client.get(url_for("clients.edit_client_rules", client_id=client.id)))
    assert page.find(id="rules-timezone").find("option", selected=True)["value"] == "UTC"
    assert page.find(id="rules-hours_fri")["value"] == "22:00-06:00"
    assert text_of(page.find(id="rules-failover_numbers")) == "(415) 555-0101"
    assert page.find("input", {"name": "csrf_token"})


def test_good_rules_are_saved_shown_in_words_and_audited(app, staff_client, make_client):
    client = make_client()
    saved = post_rules(staff_client, client, GOOD_FORM)
    assert saved.status_code == 303, saved.get_data(as_text=True)
    db.session.expire_all()
    client = db.session.get(Client, client.id)
    assert client.business_hours["mon"] == [["09:00", "12:00"], ["13:00", "17:00"]]
    assert client.business_hours["fri"] == [["09:00", "17:00"], ["22:00", "06:00"]]
    assert client.timezone == "America/New_York"
    assert client.closed_dates == ["2026-12-25", "2027-01-01"]
    assert (client.after_hours, client.after_hours_number) == ("forward", "+14155550100")
    assert client.failover_numbers == ["+14155550101", "+14155550102"]
    assert client.ring_seconds == 20
    assert (client.whisper, client.require_accept) == (True, True)

    # Monday 18:00 in New York.
    page = page_at(app, datetime(2026, 11, 23, 23, 0, tzinfo=UTC), "clients.client_detail",
                   client_id=client.id)
    rules = page.find(id="client-rules")
    assert text_of(rules.find(attrs={"data-rule-summary": True})) == (
        "Now: after hours until 9:00 Tue (New York time), forwards to (415) 555-0100 · "
        "rings 3 numbers in turn, 20 s each, whisper, press 1 to accept")
    assert "Mon 09:00–12:00, 13:00–17:00" in text_of(rules)
    assert text_of(rules.find(attrs={"data-screening": True})) == (
        "Hears who is calling, and takes the call by pressing 1")
    changes = text_of(page.find(attrs={"aria-labelledby": "client-changes"}))
    assert "Routing rules changed" in changes and "none → (415) 555-0101, (415) 555-0102" in changes

    # The form shows the saved rules back as they were typed, normalised.
    form = soup(staff_client.get(url_for("clients.edit_client_rules", client_id=client.id)))
    assert form.find(id="rules-hours_mon")["value"] == "09:00-12:00, 13:00-17:00"
    assert form.find(id="rules-ring_seconds")["value"] == "20"
    assert all(form.find(id=box).has_attr("checked") for box in ("rules-whisper", "rules-require_accept"))

    # Unticked boxes are not sent: the client stops screening its calls.
    assert post_rules(staff_client, client, {key: value for key, value in GOOD_FORM.items()
                                             if key not in ("whisper", "require_accept")}).status_code == 303
    db.session.expire_all()
    client = db.session.get(Client, client.id)
    assert (client.whisper, client.require_accept) == (False, False)


@pytest.mark.parametrize("change, field, words", [
    ({"hours_mon": "9-5pm"}, "hours_mon", "is not a range such as 09:00-17:00"),
    ({"hours_tue": "09:00-17:00, 13:00-25:00"}, "hours_tue", "range 2:"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone", "is not a time zone"),
    ({"ring_mode": "round-robin"}, "ring_mode", "must be one of"),
    ({"ring_seconds": "3"}, "ring_seconds", "from 5 to 600"),
    ({"ring_seconds": "twenty"}, "ring_seconds", "whole number"),
    ({"after_hours": "forward", "after_hours_number": ""}, "after_hours_number", "a number is required"),
    ({"failover_numbers": "(415) 555-0101\nnot a phone"}, "failover_numbers", "line 2:"),
    ({"failover_numbers": "\n".join(f"+1415555010{n}" for n in range(6))}, "failover_numbers", "at most 5"),
    ({"greeting": "x" * 501}, "greeting", "at most 500"),
    ({"closed_dates": "2026-13-01"}, "closed_dates", "line 1:"),
])
def test_each_bad_rule_shows_by_its_field_and_nothing_is_saved(staff_client, make_client, change, field, words):
    client = make_client()
    refused = post_rules(staff_client, client, GOOD_FORM | change)
    assert refused.status_code == 422
    page = soup(refused)
    assert words in text_of(page.find(id=f"{field}-error"))
    assert "Nothing was saved" in text_of(page.find(class_="form-error"))
    db.session.expire_all()
    stored = db.session.get(Client, client.id)
    assert (stored.business_hours, stored.failover_numbers, stored.ring_seconds) == (None, None, None)
    # What was typed stays in the form.
    assert page.find(id="rules-hours_wed")["value"] == GOOD_FORM["hours_wed"]


def test_a_tracking_number_as_failover_is_refused_as_a_loop(staff_client, assigned):
    client = db.session.get(Client, assigned.client_id)
    refused = post_rules(staff_client, client, EMPTY_FORM | {"failover_numbers": assigned.phone_number})
    assert refused.status_code == 422
    assert LOOP_REFUSAL in text_of(soup(refused).find(id="failover_numbers-error"))


def test_the_numbers_card_shows_the_rule_in_force(app, staff, assigned):
    client = db.session.get(Client, assigned.client_id)
    client.timezone = "Asia/Tokyo"
    client.business_hours = {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]]}
    client.failover_numbers = ["+14155550101", "+14155550102"]
    client.ring_mode = "simultaneous"
    db.session.commit()
    page = page_at(app, datetime(2026, 11, 23, 0, 30, tzinfo=UTC), "numbers.numbers")  # Mon 09:30, Tokyo
    summary = card(page, assigned).find(attrs={"data-rule-summary": True})
    assert text_of(summary) == "Now: open until 17:00 (Tokyo time) · rings 3 numbers at once"
    detail = page_at(app, datetime(2026, 11, 23, 9, 0, tzinfo=UTC), "numbers.number_detail",
                     number_id=assigned.id)
    assert "after hours until 9:00 Tue (Tokyo time), voicemail" in text_of(
        card(detail, assigned).find(attrs={"data-rule-summary": True}))


def test_saving_the_form_unchanged_keeps_a_client_on_the_apps_zone_and_records_nothing(staff_client, make_client):
    client = make_client()
    assert post_rules(staff_client, client, EMPTY_FORM).status_code == 303
    db.session.expire_all()
    assert db.session.get(Client, client.id).timezone is None
    changes = soup(staff_client.get(url_for("clients.client_detail", client_id=client.id)))
    assert "Routing rules changed" not in text_of(changes.find(attrs={"aria-labelledby": "client-changes"}))
