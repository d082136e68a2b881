"""Only a person who took the call answered it (SPEC §3a.4): with acceptance required, a leg that was merely picked
up counts nowhere as answered: not in the badge, the API's outcome filter, the client's figures, the CSV, nor the
number's failed-forward streak; the person who pressed 1 does, even when Twilio's <Dial> result is lost."""
import csv
import io
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.domain.call_status import outcome_of
from phoneapp.extensions import db
from phoneapp.models import CallRecord, PhoneAssignment
from phoneapp.services.call_log import calls_select
from phoneapp.services.call_outcomes import outcome_expression
from phoneapp.services.client_stats import client_call_stats
from tests.support.webhooks import CALLER, TRACKING, voice_params

pytestmark = pytest.mark.usefixtures("request_context")
TARGET = "+14155550187"
PICKED_UP, ACCEPTED = "CA" + "1" * 32, "CA" + "2" * 32


@pytest.fixture
def screened(make_client, make_number):
    client = make_client(phone=TARGET)
    client.whisper, client.require_accept = True, True
    db.session.commit()
    return make_number(phone_number=TRACKING, client=client)


def leg(call_sid, **extra):
    return {"CallSid": "CB" + call_sid[2:], "ParentCallSid": call_sid, "From": CALLER, "To": TARGET,
            "Direction": "outbound-dial", **extra}


def call_whose_dial_result_is_lost(signed_post, call_sid, *, presses_1):
    """Voice webhook, the leg picked up and whispered to, (1 pressed or not), the leg's end, the call's end."""
    assert signed_post("/twilio/voice", voice_params(call_sid=call_sid)).status_code == 200
    signed_post("/twilio/dial-events", leg(call_sid, CallStatus="in-progress"))
    signed_post("/twilio/whisper?" + urlencode({"target": TARGET, "accept": 1}),
                leg(call_sid, CallStatus="in-progress"))
    if presses_1:
        signed_post("/twilio/accept?" + urlencode({"target": TARGET}),
                    leg(call_sid, CallStatus="in-progress", Digits="1"))
    signed_post("/twilio/dial-events", leg(call_sid, CallStatus="completed", CallDuration="30"))
    signed_post("/twilio/status", voice_params(call_sid=call_sid, CallStatus="completed", CallDuration="38"))


def record(call_sid):
    db.session.expire_all()
    return db.session.scalars(sa.select(CallRecord).where(CallRecord.twilio_call_sid == call_sid)).one()


def test_a_pickup_without_1_is_no_answer_anywhere_and_a_1_is_an_answer_everywhere(
        signed_post, screened, admin_client, api):
    call_whose_dial_result_is_lost(signed_post, PICKED_UP, presses_1=False)
    call_whose_dial_result_is_lost(signed_post, ACCEPTED, presses_1=True)
    picked_up, accepted = record(PICKED_UP), record(ACCEPTED)
    assert (outcome_of(picked_up), picked_up.answered_by, picked_up.answered_at) == ("missed", None, None)
    assert (outcome_of(accepted), accepted.answered_by, accepted.accepted_by) == ("answered", TARGET, TARGET)
    assert accepted.answered_at is not None

    # The SQL the lists and figures use says the same.
    in_sql = dict(db.session.execute(sa.select(CallRecord.twilio_call_sid, outcome_expression())).all())
    assert in_sql == {PICKED_UP: "missed", ACCEPTED: "answered"}
    stats = client_call_stats(screened.client_id)
    assert (stats.answered, stats.voicemail, stats.missed) == (1, 0, 1)
    failed = db.session.scalars(calls_select(outcome=("voicemail", "missed"))).all()
    assert [call.twilio_call_sid for call in failed] == [PICKED_UP]
    answered = api.get("/api/call-records?outcome=answered").get_json()
    assert [call["twilio_call_sid"] for call in answered["items"]] == [ACCEPTED]
    assert answered["items"][0]["answered_by"] == TARGET

    rows = list(csv.DictReader(io.StringIO(admin_client.get(url_for("calls.export_calls"), buffered=True)
                                           .get_data(as_text=True))))
    assert {(row["twilio_call_sid"], row["outcome"], row["answered_by"]) for row in rows} == {
        (PICKED_UP, "missed", ""), (ACCEPTED, "answered", TARGET)}

    # The picked-up call says nothing of the target (its result is lost); the accepted one clears the streak.
    assert db.session.get(PhoneAssignment, screened.id).failed_forward_streak == 0


def test_without_acceptance_the_same_pickup_is_an_answer(signed_post, screened):
    client = screened.client
    client.require_accept = False
    db.session.commit()
    call_whose_dial_result_is_lost(signed_post, PICKED_UP, presses_1=False)
    picked_up = record(PICKED_UP)
    assert (outcome_of(picked_up), picked_up.answered_by, picked_up.requires_accept) == ("answered", TARGET, False)


@pytest.mark.parametrize("with_dial_result", [True, False], ids=["dial result", "dial result lost"])
def test_while_the_failover_rings_the_call_is_in_progress_not_missed(signed_post, screened, with_dial_result):
    client = screened.client
    client.failover_numbers = ["+14155550188"]
    db.session.commit()
    call = PICKED_UP
    signed_post("/twilio/voice", voice_params(call_sid=call))
    # The first phone's voicemail picked up and nobody pressed 1: phoneapp rings the failover.
    answer = signed_post("/twilio/dial-status?" + urlencode({"attempt": 0, "target": TARGET}), voice_params(
        call_sid=call, CallStatus="in-progress", DialCallStatus="completed", DialBridged="false",
        DialCallSid="CB" + "3" * 32, DialCallDuration="5"))
    assert "+14155550188" in answer.get_data(as_text=True)
    assert outcome_of(record(call)) == "in progress"
    assert db.session.scalars(calls_select(outcome=("voicemail", "missed"))).all() == []
    second_leg = {**leg(call, CallStatus="in-progress"), "CallSid": "CB" + "4" * 32, "To": "+14155550188"}
    signed_post("/twilio/accept?" + urlencode({"target": "+14155550188", "attempt": 1}),
                {**second_leg, "Digits": "1"})
    taken = record(call)
    assert (outcome_of(taken), taken.answered_by, taken.route_rule) == ("in progress", "+14155550188", "failover 2")
    if with_dial_result:
        signed_post("/twilio/dial-status?" + urlencode({"attempt": 1, "target": "+14155550188"}), voice_params(
            call_sid=call, CallStatus="in-progress", DialCallStatus="completed", DialBridged="true",
            DialCallSid=second_leg["CallSid"], DialCallDuration="50"))
    signed_post("/twilio/status", voice_params(call_sid=call, CallStatus="completed", CallDuration="60"))
    over = record(call)
    assert (outcome_of(over), over.answered_by, over.route_rule) == ("answered", "+14155550188", "failover 2")
    assert over.dial_status == ("completed" if with_dial_result else None)
    # An answered call: the number's failed-forward streak is not fed by the first phone's voicemail.
    assert db.session.get(PhoneAssignment, screened.id).failed_forward_streak == 0
