"""Whisper and press 1 end to end (SPEC §3a.4): the sandbox plays the person who picks up, or their phone's own
voicemail, through phoneapp's real signed routes; a call is answered only when a person took it."""
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from phoneapp.domain.call_status import outcome_of
from phoneapp.extensions import db
from phoneapp.models import BlockedNumber, CallEvent, PhoneAssignment
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.sandbox.caller import simulate_inbound_call
from phoneapp.services import assignments
from phoneapp.services.call_log import calls_select
from phoneapp.services.client_stats import client_call_stats
from phoneapp.services.dashboard import dashboard_figures
from phoneapp.services.simulator import in_process_transport, place_simulated_call
from tests.support.sandbox_calls import rung, the_call

FIRST, SECOND, THIRD = "+14155550187", "+14155550188", "+14155550189"
GREETING = "Nobody at Acme could take your call. Please leave a message."
BLOCKED_CALLER = "+19005550100"


@pytest.fixture
def account(app):
    return SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])


@pytest.fixture
def screened_number(app, make_client):
    """A number whose client rings three people in turn, announces the call and wants 1 pressed."""
    assignments.sync_numbers()
    number = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).first()
    client = make_client(phone=FIRST)
    client.failover_numbers, client.greeting = [SECOND, THIRD], GREETING
    client.whisper, client.require_accept = True, True
    number.friendly_name = "Acme Google Ads"
    db.session.commit()
    assignments.upsert_assignment({"twilio_sid": number.twilio_sid, "client_id": client.id})
    return number


def heard(call, kind):
    """What phoneapp told the legs in their `kind` requests (whisper, accept): each answer's verbs and words."""
    return [[(verb.tag, " ".join(verb.itertext()).strip()) for verb in ET.fromstring(request.body)]
            for request in call.requests_of(kind)]


def test_the_first_does_not_answer_the_second_hears_who_calls_presses_1_and_takes_the_call(
        account, screened_number):
    account.set_target_behaviour(FIRST, "no-answer")
    call = place_simulated_call(screened_number.phone_number, background=False, pace=0)
    assert rung(call) == [[FIRST], [SECOND]]
    assert heard(call, "whisper") == [[("Gather", "Call from Acme Google Ads. Press 1 to accept."), ("Hangup", "")]]
    assert heard(call, "accept") == [[]]  # an empty answer: the two are put through
    whisper_query = parse_qs(urlsplit(call.requests_of("whisper")[0].url).query)
    assert whisper_query["target"] == [SECOND]
    record = the_call()
    assert (outcome_of(record), record.answered_by, record.accepted_by, record.route_rule) == (
        "answered", SECOND, SECOND, "failover 2")
    assert record.answered_at is not None and record.answered_at == record.accepted_at
    kinds = db.session.scalars(sa.select(CallEvent.kind).where(CallEvent.call_sid == call.call_sid)).all()
    assert {"whisper", "accept"} <= set(kinds)


def test_voicemails_that_pick_up_never_press_1_so_each_next_target_rings_and_the_caller_leaves_a_message(
        account, screened_number):
    for target in (FIRST, SECOND, THIRD):
        account.set_target_behaviour(target, "voicemail")
    call = place_simulated_call(screened_number.phone_number, background=False, pace=0)
    assert rung(call) == [[FIRST], [SECOND], [THIRD]]
    assert len(call.requests_of("whisper")) == 3 and call.requests_of("accept") == []
    # Twilio said each leg was picked up ("completed") but never put through.
    assert [(action.params["DialCallStatus"], action.params["DialBridged"])
            for action in call.requests_of("dial-action")] == [("completed", "false")] * 3
    voicemail = [ET.fromstring(request.body) for request in call.requests if request.body and "<Record" in request.body]
    assert voicemail and voicemail[0].find("Say").text == GREETING
    record = the_call()
    assert (outcome_of(record), record.answered_by, record.answered_at, record.route_rule) == (
        "voicemail", None, None, "failover 3")
    assert record.dial_status == "no-answer"
    db.session.refresh(screened_number)
    assert screened_number.failed_forward_streak == 1


def test_voicemails_that_pick_up_and_a_caller_who_leaves_no_message_make_a_missed_call(
        app, account, screened_number):
    for target in (FIRST, SECOND, THIRD):
        account.set_target_behaviour(target, "voicemail")
    call = simulate_inbound_call(account, in_process_transport(app), from_number="+12025550143",
                                 to_number=screened_number.phone_number, leave_voicemail=False)
    assert len(rung(call)) == 3
    record = the_call()
    assert (outcome_of(record), record.answered_by) == ("missed", None)


def test_without_acceptance_a_voicemail_that_picks_up_is_put_through_and_counts_as_answered(
        account, screened_number):
    """What acceptance is for: the same call, the client not asking for 1, is the overstated answer."""
    client = screened_number.client
    client.require_accept = False
    db.session.commit()
    account.set_target_behaviour(FIRST, "voicemail")
    call = place_simulated_call(screened_number.phone_number, background=False, pace=0)
    assert heard(call, "whisper") == [[("Say", "Call from Acme Google Ads")]]
    record = the_call()
    assert (outcome_of(record), record.answered_by, record.route_rule) == ("answered", FIRST, "open")


def test_at_once_the_person_who_picks_up_first_presses_1_and_takes_the_call(account, screened_number):
    client = screened_number.client
    client.ring_mode = "simultaneous"
    db.session.commit()
    account.set_target_behaviour(FIRST, "voicemail")
    account.set_target_behaviour(SECOND, "answered")
    call = place_simulated_call(screened_number.phone_number, background=False, pace=0)
    assert rung(call) == [[FIRST, SECOND, THIRD]]
    record = the_call()
    assert (outcome_of(record), record.answered_by, record.route_rule) == ("answered", SECOND, "open")


def test_at_once_a_voicemail_that_picks_up_first_and_does_not_accept_sends_the_caller_to_voicemail(
        account, screened_number):
    client = screened_number.client
    client.ring_mode = "simultaneous"
    db.session.commit()
    for target in (FIRST, SECOND, THIRD):
        account.set_target_behaviour(target, "voicemail")
    call = place_simulated_call(screened_number.phone_number, background=False, pace=0)
    # Twilio hung up the others as the first picked up: nobody is left ringing, so the caller is offered voicemail.
    assert rung(call) == [[FIRST, SECOND, THIRD]]
    record = the_call()
    assert (outcome_of(record), record.answered_by) == ("voicemail", None)


def test_a_blocked_caller_is_turned_away_recorded_blocked_and_absent_from_failed_forwards_and_analytics(
        account, screened_number):
    db.session.add(BlockedNumber(number="+1900*", reason="premium-rate robocalls"))
    db.session.commit()
    call = place_simulated_call(screened_number.phone_number, from_number=BLOCKED_CALLER, background=False,
                                pace=0)
    assert [verb.tag for verb in ET.fromstring(call.requests_of("voice")[0].body)] == ["Reject"]
    assert rung(call) == [] and call.requests_of("whisper") == []
    record = the_call()
    assert (outcome_of(record), record.route_rule, record.answered_by) == ("blocked", "blocked", None)
    assert record.client_id == screened_number.client_id, "in the client's history, counted nowhere"
    assert dashboard_figures().failed_total == 0
    stats = client_call_stats(screened_number.client_id)
    assert (stats.calls, stats.answered, stats.voicemail, stats.missed) == (0, 0, 0, 0)
    failed = db.session.scalars(calls_select(outcome=("voicemail", "missed"))).all()
    assert failed == []
