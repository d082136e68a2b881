"""The client's rules at call time (SPEC §3a): the block list and business hours, through the real signed routes,
from the database and from the routing cache."""
import xml.etree.ElementTree as ET
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from phoneapp.domain.call_status import outcome_of
from phoneapp.extensions import db
from phoneapp.models import Alert, BlockedNumber, CallRecord
from phoneapp.services.dashboard import dashboard_figures
from phoneapp.services.routing_table import write_routing_cache
from tests.support.pages import ADMIN, login
from tests.support.webhooks import CALLER, TRACKING, voice_params

NEW_YORK = ZoneInfo("America/New_York")
TARGET, AFTER_HOURS = "+14155550187", "+14155550190"
MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=NEW_YORK)
MONDAY_NIGHT = datetime(2026, 11, 23, 20, 0, tzinfo=NEW_YORK)
GREETING = "Acme is closed. Please leave a message."


@pytest.fixture
def client_with_hours(make_client, make_number):
    client = make_client(phone=TARGET)
    client.timezone = "America/New_York"
    client.business_hours = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    client.greeting = GREETING
    db.session.commit()
    make_number(phone_number=TRACKING, client=client)
    return client


def answer(signed_post, path="/twilio/voice", moment=MONDAY_NOON, **params):
    with time_machine.travel(moment, tick=False):
        response = signed_post(path, voice_params(**params))
    assert response.status_code == 200, response.data
    return ET.fromstring(response.data)


def the_call(call_sid="CA" + "1" * 32):
    db.session.expire_all()
    return db.session.scalars(sa.select(CallRecord).where(CallRecord.twilio_call_sid == call_sid)).one()


def test_a_blocked_caller_is_rejected_recorded_blocked_and_counted_nowhere(signed_post, client_with_hours):
    db.session.add(BlockedNumber(number="+1202*", reason="robocalls"))
    db.session.commit()
    document = answer(signed_post)
    assert [verb.tag for verb in document] == ["Reject"] and document[0].get("reason") == "busy"
    signed_post("/twilio/status", voice_params(CallStatus="busy", CallDuration="0"))
    call = the_call()
    assert (call.routed_by, call.route_rule, outcome_of(call), call.forwarded_to) == (
        "blocked", "blocked", "blocked", None)
    assert db.session.scalars(sa.select(Alert)).all() == []
    with time_machine.travel(MONDAY_NOON, tick=False):
        assert dashboard_figures().failed_total == 0


def test_a_callers_block_for_another_client_does_not_stop_this_clients_calls(
        signed_post, client_with_hours, make_client):
    other = make_client(name="Other", phone="+14155550111")
    db.session.add(BlockedNumber(number=CALLER, client_id=other.id))
    db.session.commit()
    assert answer(signed_post).find("Dial/Number").text == TARGET


def test_in_hours_the_call_rings_the_client(signed_post, client_with_hours):
    assert answer(signed_post).find("Dial/Number").text == TARGET
    assert (the_call().route_rule, the_call().forwarded_to) == ("open", TARGET)


def test_after_hours_the_caller_hears_the_clients_greeting_and_can_leave_a_message(app, signed_post, client_with_hours,
                                                                                   admin):
    document = answer(signed_post, moment=MONDAY_NIGHT)
    assert document.find("Dial") is None
    assert document.find("Say").text == GREETING and document.find("Record") is not None
    signed_post("/twilio/recording?kind=voicemail", voice_params(
        CallStatus="completed", RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
        RecordingDuration="9", Digits="hangup"))
    call = the_call()
    assert (call.route_rule, call.routed_by, call.forwarded_to, outcome_of(call)) == (
        "after-hours", "assignment", None, "voicemail")
    assert db.session.scalars(sa.select(Alert)).all() == []
    # The dashboard says why nobody took it: nobody was rung.
    with time_machine.travel(MONDAY_NIGHT, tick=False):
        browser = app.test_client()
        assert login(browser, *ADMIN).status_code == 303
        dashboard = browser.get("/partials/dashboard").get_data(as_text=True)
    assert "after hours" in dashboard and "nobody picked up" not in dashboard


def test_after_hours_the_call_goes_to_the_after_hours_number(signed_post, client_with_hours):
    client_with_hours.after_hours, client_with_hours.after_hours_number = "forward", AFTER_HOURS
    db.session.commit()
    assert answer(signed_post, moment=MONDAY_NIGHT).find("Dial/Number").text == AFTER_HOURS
    assert (the_call().route_rule, the_call().forwarded_to) == ("after-hours", AFTER_HOURS)


def test_the_voicemail_after_a_failed_forward_uses_the_clients_greeting(signed_post, client_with_hours):
    answer(signed_post)
    document = ET.fromstring(signed_post("/twilio/dial-status", voice_params(
        CallStatus="in-progress", DialCallStatus="no-answer")).data)
    assert document.find("Say").text == GREETING and document.find("Record") is not None


def test_the_fallback_follows_the_rules_from_the_routing_cache(signed_post, client_with_hours):
    db.session.add(BlockedNumber(number="+19005550100"))
    db.session.commit()
    write_routing_cache()
    after_hours = answer(signed_post, "/twilio/fallback", moment=MONDAY_NIGHT)
    assert after_hours.find("Say").text == GREETING and after_hours.find("Dial") is None
    blocked = answer(signed_post, "/twilio/fallback", call_sid="CA" + "2" * 32, caller="+19005550100")
    assert blocked.find("Reject") is not None
    assert the_call("CA" + "2" * 32).route_rule == "blocked"


@pytest.mark.parametrize("attempt", ["-1", "6", "99999999999999999999999", "x"])
def test_an_attempt_no_plan_can_have_is_taken_for_none(signed_post, client_with_hours, attempt):
    answer(signed_post)
    response = signed_post(f"/twilio/dial-status?attempt={attempt}&target=%2B14155550188", voice_params(
        CallStatus="in-progress", DialCallStatus="completed", DialCallDuration="30"))
    assert response.status_code == 200 and b"<Hangup" in response.data
    call = the_call()
    assert (call.route_rule, call.dial_status, outcome_of(call)) == ("open", "completed", "answered")
