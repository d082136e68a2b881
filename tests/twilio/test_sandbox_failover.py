"""Failover end to end: the sandbox rings the client's targets as phoneapp's TwiML says, through the real signed
routes, and the call is recorded with the target that took it and the rule that decided it."""
import xml.etree.ElementTree as ET

import pytest
import sqlalchemy as sa

from phoneapp.domain.call_status import outcome_of
from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.services import assignments
from phoneapp.services.simulator import place_simulated_call
from tests.support.sandbox_calls import rung, the_call

FIRST, SECOND, THIRD = "+14155550187", "+14155550188", "+14155550189"
GREETING = "Nobody at Acme could take your call. Please leave a message."


@pytest.fixture
def account(app):
    return SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])


@pytest.fixture
def failover_number(app, make_client):
    assignments.sync_numbers()
    number = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).first()
    client = make_client(phone=FIRST)
    client.failover_numbers, client.greeting = [SECOND, THIRD], GREETING
    db.session.commit()
    assignments.upsert_assignment({"twilio_sid": number.twilio_sid, "client_id": client.id})
    return number


def test_in_turn_the_first_does_not_answer_the_second_does(account, failover_number):
    account.set_target_behaviour(FIRST, "no-answer")
    call = place_simulated_call(failover_number.phone_number, background=False, pace=0)
    assert rung(call) == [[FIRST], [SECOND]]
    record = the_call()
    assert (outcome_of(record), record.answered_by, record.route_rule) == ("answered", SECOND, "failover 2")
    assert (record.dial_status, record.forwarded_to) == ("completed", FIRST)


def test_in_turn_nobody_answers_the_caller_hears_the_greeting_and_leaves_a_message(account, failover_number):
    for target in (FIRST, SECOND, THIRD):
        account.set_target_behaviour(target, "busy")
    call = place_simulated_call(failover_number.phone_number, background=False, pace=0)
    assert rung(call) == [[FIRST], [SECOND], [THIRD]]
    voicemail = [ET.fromstring(request.body) for request in call.requests
                 if request.body and "<Record" in request.body]
    assert voicemail and voicemail[0].find("Say").text == GREETING
    record = the_call()
    assert (outcome_of(record), record.answered_by, record.route_rule) == ("voicemail", None, "failover 3")


def test_at_once_every_target_rings_and_the_one_who_answers_takes_the_call(account, failover_number):
    client = failover_number.client
    client.ring_mode = "simultaneous"
    db.session.commit()
    account.set_target_behaviour(FIRST, "busy")
    call = place_simulated_call(failover_number.phone_number, background=False, pace=0)
    assert rung(call) == [[FIRST, SECOND, THIRD]]
    record = the_call()
    assert (outcome_of(record), record.answered_by, record.route_rule) == ("answered", SECOND, "open")
