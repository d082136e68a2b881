"""A field that does not fit its column costs that field, never the event: the call is still recorded and moves on.

Twilio's values go into typed columns (INTEGER is int4 on PostgreSQL, strings have lengths, PostgreSQL refuses NUL
in text). A value that does not fit is dropped, or cleaned and cut, with a warning naming the field and the call;
nothing is set aside in the webhook log's failed file. Run on SQLite and, with TEST_DATABASE_URL, on PostgreSQL,
where int4 overflow, over-long strings and NUL bytes are refused.
"""
import logging
import xml.etree.ElementTree as ET

import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import Alert, CallRecord, TestCall
from phoneapp.services.routing_table import UNROUTED_ALERT, refresh_routing_cache
from tests.support.webhooks import CALLER, TRACKING, voice_params

SID = "CA" + "1" * 32
CHILD_SID = "CA" + "c" * 32
RECORDING_URL = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"
HUGE = "99999999999999999999"


@pytest.fixture
def assigned(make_client, make_number):
    client = make_client(phone="+14155550187")
    return make_number(phone_number=TRACKING, client=client)


@pytest.fixture
def post(signed_post):
    """POST a signed webhook that Twilio must get a 200 for, whatever the values in it."""

    def send(path, params):
        response = signed_post(path, params)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/xml"
        return response

    return send


@pytest.fixture
def set_aside(app):
    """How many webhooks the log set aside in its failed file."""
    return app.extensions["phoneapp.webhook_log"].quarantined_count


@pytest.fixture
def warnings(caplog):
    caplog.set_level(logging.WARNING, logger="phoneapp")

    def said():
        return [record.getMessage() for record in caplog.records
                if record.name.startswith("phoneapp") and record.levelno == logging.WARNING]

    return said


def the_record(sid=SID):
    db.session.expire_all()
    return db.session.scalars(sa.select(CallRecord).where(CallRecord.twilio_call_sid == sid)).one()


def records():
    db.session.expire_all()
    return db.session.scalars(sa.select(CallRecord)).all()


def warned_about(warnings, field, sid=SID):
    said = warnings()
    assert any(f"call {sid}: {field} " in line and "does not fit" in line for line in said), said


# -- the call's own fields, on its voice webhook and on its status callback ------------------------------

ODD_CALL_FIELDS = [
    # id, what the webhooks carry, the field warned about, what is stored
    ("CallDuration 20 digits", {"CallDuration": HUGE}, "CallDuration", {"duration": None}),
    ("CallDuration 2**31", {"CallDuration": str(2**31)}, "CallDuration", {"duration": None}),
    ("CallDuration negative", {"CallDuration": "-5"}, "CallDuration", {"duration": None}),
    ("CallDuration a word", {"CallDuration": "twelve"}, "CallDuration", {"duration": None}),
    ("FromCity with NUL", {"FromCity": "WASHING\x00TON"}, "FromCity", {"caller_city": "WASHINGTON"}),
    ("FromCity 10000 chars", {"FromCity": "W" * 10_000}, "FromCity", {"caller_city": "W" * 100}),
    ("FromCity only controls", {"FromCity": "\x00\x07"}, "FromCity", {"caller_city": None}),
    ("FromState too long", {"FromState": "D" * 101}, "FromState", {"caller_state": "D" * 100}),
    ("FromZip too long", {"FromZip": "9" * 21}, "FromZip", {"caller_zip": "9" * 20}),
    ("FromCountry too long", {"FromCountry": "UNITED STATES"}, "FromCountry", {"caller_country": "UNITED STA"}),
    ("FromCountry with C1 control", {"FromCountry": "U\x85S"}, "FromCountry", {"caller_country": "US"}),
    ("From too long", {"From": "+1" + "2" * 40}, "From", {"from_number": "+1" + "2" * 30}),
    ("From with NUL", {"From": "+1202555\x000143"}, "From", {"from_number": "+12025550143"}),
    ("To too long", {"To": TRACKING + "0" * 40}, "To", {"to_number": (TRACKING + "0" * 40)[:32]}),
]


@pytest.mark.parametrize(("extra", "field", "stored"), [case[1:] for case in ODD_CALL_FIELDS],
                         ids=[case[0] for case in ODD_CALL_FIELDS])
def test_a_field_that_does_not_fit_costs_that_field_not_the_call(assigned, post, set_aside, warnings, extra, field,
                                                                  stored):
    post("/twilio/voice", voice_params(SID, **extra))
    post("/twilio/status", voice_params(SID, **{"CallStatus": "completed", "CallDuration": "12", **extra}))
    record = the_record()
    assert record.status == "completed"
    assert record.ended_at is not None
    expected = {"duration": 12, "caller_city": "WASHINGTON", **stored}
    assert {name: getattr(record, name) for name in expected} == expected
    assert set_aside() == 0
    warned_about(warnings, field)


def test_status_callback_alone_with_a_huge_duration_completes_the_call(assigned, post, set_aside, warnings):
    # The case: only the status callback, CallDuration past int4 (past int8, too).
    post("/twilio/status", voice_params(SID, CallStatus="completed", CallDuration=HUGE))
    record = the_record()
    assert (record.status, record.duration, record.to_number) == ("completed", None, TRACKING)
    assert set_aside() == 0
    warned_about(warnings, "CallDuration")


def test_fields_phoneapp_does_not_keep_do_not_matter(assigned, post, set_aside, warnings):
    odd = {"SequenceNumber": HUGE, "CallerName": "N" * 10_000 + "\x00", "Caller": "\x00" * 50,
           "Timestamp": "\x00", "ForwardedFrom": "9" * 5_000}
    post("/twilio/voice", voice_params(SID, **odd))
    post("/twilio/status", voice_params(SID, CallStatus="completed", CallDuration="12", **odd))
    record = the_record()
    assert (record.status, record.duration) == ("completed", 12)
    assert set_aside() == 0
    assert warnings() == []


# -- the numbers a call is routed by ---------------------------------------------------------------------

CONTROLS_IN_NUMBERS = [
    # id, To, From: PostgreSQL refuses a NUL in the lookup, SQLite finds no number with it
    ("To ends in NUL", TRACKING + "\x00", CALLER),
    ("To starts with NUL", "\x00" + TRACKING, CALLER),
    ("To with a bell and C1 control", "+1415\x07555\x850100", CALLER),
    ("From with NUL", TRACKING, "+1202555\x000143"),
    ("both with NUL", TRACKING + "\x00", "\x00" + CALLER),
]


@pytest.fixture
def errors(caplog):
    caplog.set_level(logging.ERROR, logger="phoneapp")
    return lambda: [record.getMessage() for record in caplog.records
                    if record.name.startswith("phoneapp") and record.levelno >= logging.ERROR]


@pytest.mark.parametrize(("to", "caller"), [case[1:] for case in CONTROLS_IN_NUMBERS],
                         ids=[case[0] for case in CONTROLS_IN_NUMBERS])
@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/client-webhook/999"])
def test_control_characters_in_to_or_from_do_not_keep_a_call_from_its_client(app, assigned, post, set_aside,
                                                                             errors, path, to, caller):
    # The routing cache is not refreshed by the fixtures: a call routed from it would not reach the client.
    app.config["DEFAULT_FORWARD_NUMBER"] = None
    document = ET.fromstring(post(path, voice_params(SID, to=to, caller=caller)).data)
    dial = document.find("Dial")
    assert dial is not None, ET.tostring(document)
    assert dial.find("Number").text == "+14155550187"
    assert dial.get("callerId") == CALLER
    record = the_record()
    assert (record.routed_by, record.to_number, record.from_number) == ("assignment", TRACKING, CALLER)
    assert errors() == [], "the route was looked up in the database, without an error"
    assert set_aside() == 0


def test_control_characters_in_to_do_not_keep_a_call_from_the_routing_cache(app, assigned, post, set_aside):
    app.config["DEFAULT_FORWARD_NUMBER"] = None
    refresh_routing_cache()
    document = ET.fromstring(post("/twilio/fallback", voice_params(SID, to=TRACKING + "\x00")).data)
    assert document.find("Dial/Number").text == "+14155550187", ET.tostring(document)
    assert the_record().routed_by == "assignment"
    assert set_aside() == 0


# -- the forwarded leg ---------------------------------------------------------------------------------

ODD_DIAL_FIELDS = [
    ("DialCallDuration 2**31", {"DialCallDuration": str(2**31)}, "DialCallDuration", {"dial_duration": None}),
    ("DialCallDuration 20 digits", {"DialCallDuration": HUGE}, "DialCallDuration", {"dial_duration": None}),
    ("DialCallSid too long", {"DialCallSid": CHILD_SID + "0"}, "DialCallSid", {"dial_call_sid": None}),
    ("DialCallSid with NUL", {"DialCallSid": CHILD_SID[:-1] + "\x00"}, "DialCallSid", {"dial_call_sid": None}),
    ("DialCallStatus too long", {"DialCallStatus": "completed" + "!" * 30}, "DialCallStatus",
     {"dial_status": "completed" + "!" * 11}),
    ("DialCallStatus with NUL", {"DialCallStatus": "comp\x00leted"}, "DialCallStatus", {"dial_status": "completed"}),
]


@pytest.mark.parametrize(("extra", "field", "stored"), [case[1:] for case in ODD_DIAL_FIELDS],
                         ids=[case[0] for case in ODD_DIAL_FIELDS])
def test_an_odd_dial_result_keeps_the_rest_of_it(assigned, post, set_aside, warnings, extra, field, stored):
    post("/twilio/voice", voice_params(SID))
    post("/twilio/dial-status", voice_params(SID, **{
        "CallStatus": "in-progress", "DialCallStatus": "completed", "DialCallSid": CHILD_SID,
        "DialCallDuration": "30", **extra}))
    post("/twilio/status", voice_params(SID, CallStatus="completed", CallDuration="35"))
    record = the_record()
    assert (record.status, record.duration) == ("completed", 35)
    expected = {"dial_status": "completed", "dial_call_sid": CHILD_SID, "dial_duration": 30, **stored}
    assert {name: getattr(record, name) for name in expected} == expected
    assert set_aside() == 0
    warned_about(warnings, field)


def test_an_odd_child_leg_callback_still_ends_the_leg(assigned, post, set_aside, warnings):
    post("/twilio/voice", voice_params(SID))
    post("/twilio/dial-events", {"CallSid": CHILD_SID, "ParentCallSid": SID, "CallStatus": "completed",
                                 "CallDuration": HUGE, "SequenceNumber": HUGE, "To": "+14155550187\x00"})
    post("/twilio/status", voice_params(SID, CallStatus="completed", CallDuration="35"))
    record = the_record()
    assert (record.status, record.dial_leg_status, record.dial_call_sid, record.dial_duration) == (
        "completed", "completed", CHILD_SID, None)
    assert set_aside() == 0
    warned_about(warnings, "CallDuration")


def test_a_child_leg_with_an_unusable_parent_sid_is_found_by_its_own(assigned, post, set_aside, warnings):
    post("/twilio/voice", voice_params(SID))
    post("/twilio/dial-status", voice_params(SID, CallStatus="in-progress", DialCallStatus="completed",
                                             DialCallSid=CHILD_SID))
    post("/twilio/dial-events", {"CallSid": CHILD_SID, "ParentCallSid": SID + "\x00", "CallStatus": "completed",
                                 "CallDuration": "30"})
    record = the_record()
    assert (record.dial_leg_status, record.dial_duration) == ("completed", 30)
    assert len(records()) == 1
    assert set_aside() == 0
    warned_about(warnings, "ParentCallSid", sid=CHILD_SID)


@pytest.mark.parametrize("sids", [{"CallSid": "\x00" * 40}, {"CallSid": "CA" + "c" * 40, "ParentCallSid": "\x00"}, {}],
                         ids=["NUL", "both too long or NUL", "none"])
def test_a_child_leg_callback_without_any_usable_sid_touches_no_call(assigned, post, set_aside, warnings, sids):
    post("/twilio/voice", voice_params(SID))
    post("/twilio/dial-events", {**sids, "CallStatus": "completed", "CallDuration": "30"})
    record = the_record()
    # Without a SID the leg was looked up by `dial_call_sid IS NULL`, and landed on any call that had none yet.
    assert (record.dial_call_sid, record.dial_leg_status, record.dial_duration) == (None, None, None)
    assert set_aside() == 0
    assert any("CallSid" in line and "not recorded" in line for line in warnings()), warnings()


# -- recordings ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("duration", ["-5", HUGE, str(2**31)])
def test_a_voicemail_with_an_odd_duration_is_kept(assigned, post, set_aside, warnings, duration):
    post("/twilio/voice", voice_params(SID))
    post("/twilio/recording?kind=voicemail", voice_params(
        SID, CallStatus="completed", RecordingUrl=RECORDING_URL, RecordingStatus="completed",
        RecordingSid="RE" + "1" * 32, RecordingDuration=duration))
    post("/twilio/status", voice_params(SID, CallStatus="completed", CallDuration="40"))
    record = the_record()
    assert (record.status, record.voicemail_url, record.voicemail_duration) == ("completed", RECORDING_URL, None)
    assert set_aside() == 0
    warned_about(warnings, "RecordingDuration")


def test_a_recording_with_an_unusable_sid_is_kept_without_it(assigned, post, set_aside, warnings):
    post("/twilio/voice", voice_params(SID))
    post("/twilio/recording?kind=call", voice_params(
        SID, CallStatus="completed", RecordingUrl=RECORDING_URL, RecordingStatus="completed",
        RecordingSid="RE" + "1" * 40, RecordingDuration="20"))
    record = the_record()
    assert (record.recording_url, record.recording_sid) == (RECORDING_URL, None)
    assert set_aside() == 0
    warned_about(warnings, "RecordingSid")


# -- a CallSid that cannot be a key ----------------------------------------------------------------------

@pytest.mark.parametrize("call_sid", [SID + "0" * 10, SID[:-1] + "\x00", "CA 1", "C" * 10_000],
                         ids=["too long", "NUL", "space", "10000 chars"])
def test_a_call_sid_that_cannot_be_a_key_is_answered_and_not_recorded(assigned, post, set_aside, warnings,
                                                                       call_sid):
    document = post("/twilio/voice", voice_params(call_sid)).get_data(as_text=True)
    assert "<Dial" in document  # the caller is forwarded all the same
    post("/twilio/dial-status", voice_params(call_sid, DialCallStatus="completed", DialCallDuration="5"))
    post("/twilio/status", voice_params(call_sid, CallStatus="completed", CallDuration="9"))
    post("/twilio/recording?kind=voicemail", voice_params(call_sid, RecordingUrl=RECORDING_URL,
                                                          RecordingStatus="completed"))
    assert records() == []
    assert set_aside() == 0
    said = [line for line in warnings() if "CallSid" in line and "the event is not recorded" in line]
    assert len(said) == 4, warnings()


def test_other_calls_written_with_an_unusable_one_are_kept(assigned, post, set_aside, warnings):
    post("/twilio/voice", voice_params(SID[:-1] + "\x00"))
    post("/twilio/voice", voice_params(SID))
    assert [record.twilio_call_sid for record in records()] == [SID]
    assert set_aside() == 0


# -- what else the event writes -------------------------------------------------------------------------

def test_an_unrouted_call_to_an_over_long_number_is_recorded_and_alerted(app, post, set_aside, warnings):
    app.config["DEFAULT_FORWARD_NUMBER"] = None
    to = "+1415555" + "9" * 120
    post("/twilio/voice", voice_params(SID, To=to))
    post("/twilio/status", voice_params(SID, To=to, CallStatus="completed", CallDuration="3"))
    record = the_record()
    assert (record.status, record.to_number, record.routed_by) == ("completed", to[:32], "message")
    db.session.expire_all()
    alert = db.session.scalars(sa.select(Alert).where(Alert.kind == UNROUTED_ALERT)).one()
    assert alert.subject == to[:32]
    assert set_aside() == 0
    warned_about(warnings, "To")


def test_an_odd_test_caller_callback_is_kept(app, post, set_aside, warnings, make_number):
    number = make_number(phone_number=TRACKING)
    test = TestCall(phone_assignment_id=number.id, live=True, step="calling", detail="Calling", steps=[])
    db.session.add(test)
    db.session.commit()
    test_id = test.id
    post(f"/twilio/test-call-status?test_call={test_id}",
         {"CallSid": SID, "CallStatus": "ringing", "To": TRACKING + "\x00", "From": "+1202555" + "0" * 600})
    post(f"/twilio/test-call-status?test_call={test_id}",
         {"CallSid": SID, "CallStatus": "busy", "ErrorCode": "13224\x00"})
    post(f"/twilio/test-call-status?test_call={10**20}", {"CallSid": SID, "CallStatus": "busy"})
    post(f"/twilio/test-call-status?test_call={test_id}", {"CallSid": "\x00" * 40, "CallStatus": "busy"})
    db.session.expire_all()
    test = db.session.get(TestCall, test_id)
    assert (test.call_sid, test.step, test.result) == (SID, "failed", "failed")
    assert "\x00" not in test.detail and "13224" in test.detail
    assert all("\x00" not in step["detail"] for step in test.steps)
    assert set_aside() == 0
    warned_about(warnings, "To")
    warned_about(warnings, "ErrorCode")
    assert any("test_call" in line for line in warnings()), warnings()
