"""Twilio webhooks: routing from the database, signatures, idempotency, status ordering, voicemail."""
import xml.etree.ElementTree as ET

import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import Alert, CallRecord
from phoneapp.services import assignments
from phoneapp.services.forward_streaks import failed_forward_streak
from tests.support.apps import make_app
from tests.support.webhooks import CALLER, TRACKING, sign, voice_params


def twiml(response):
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/xml"
    return ET.fromstring(response.data)


def dial_target(document):
    dial = document.find("Dial")
    assert dial is not None, ET.tostring(document)
    return dial.find("Number").text


def count(model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.fixture
def assigned(make_client, make_number):
    client = make_client(phone="+14155550187")
    return make_number(phone_number=TRACKING, client=client)


def test_forwards_to_client_phone_with_dial_callbacks(app, signed_post, assigned):
    document = twiml(signed_post("/twilio/voice", voice_params()))
    dial = document.find("Dial")
    assert dial_target(document) == "+14155550187"
    assert dial.get("action") == "https://calls.example.test/twilio/dial-status"
    assert dial.get("callerId") == CALLER
    assert int(dial.get("timeout")) == app.config["DIAL_TIMEOUT"]
    number = dial.find("Number")
    assert number.get("statusCallback") == "https://calls.example.test/twilio/dial-events"
    assert number.get("statusCallbackEvent") == "initiated ringing answered completed"
    assert dial.get("record") is None


def test_forward_to_override_wins_over_client_phone(signed_post, assigned):
    assigned.forward_to_number = "+14155550166"
    db.session.commit()
    assert dial_target(twiml(signed_post("/twilio/voice", voice_params()))) == "+14155550166"


def test_reassigning_changes_next_call_without_touching_twilio(app, signed_post, assigned, make_client):
    from phoneapp.sandbox.account import SandboxAccount

    account = SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])
    before = account.numbers()
    first_client_id = assigned.client_id
    assert dial_target(twiml(signed_post("/twilio/voice", voice_params("CA" + "a" * 32)))) == "+14155550187"
    other = make_client(name="Brightside Dental", phone="+14155550142")
    assignments.update_assignment(assigned, {"client_id": other.id})
    assert dial_target(twiml(signed_post("/twilio/voice", voice_params("CA" + "b" * 32)))) == "+14155550142"
    assert account.numbers() == before
    history = dict(db.session.execute(sa.select(CallRecord.twilio_call_sid, CallRecord.client_id)).all())
    assert history == {"CA" + "a" * 32: first_client_id, "CA" + "b" * 32: other.id}


def test_caller_record_holds_routing_and_location(signed_post, assigned):
    signed_post("/twilio/voice", voice_params())
    record = db.session.scalars(sa.select(CallRecord)).one()
    assert (record.phone_assignment_id, record.forwarded_to, record.routed_by) == (assigned.id, "+14155550187",
                                                                                    "assignment")
    assert (record.from_number, record.to_number, record.caller_city, record.caller_state) == (
        CALLER, TRACKING, "WASHINGTON", "DC")
    assert record.status == "ringing"
    db.session.refresh(assigned)
    assert assigned.last_call_at is not None


def test_withheld_caller_id_dials_with_tracking_number(signed_post, assigned):
    dial = twiml(signed_post("/twilio/voice", voice_params(caller="anonymous"))).find("Dial")
    assert dial.get("callerId") == TRACKING


def test_record_calls_setting_records_the_forwarded_leg(tmp_path, migrated_postgres):
    app = make_app(tmp_path, RECORD_CALLS="true")
    with app.app_context():
        from phoneapp.models import Client, PhoneAssignment

        client = Client(name="A", phone="+14155550187")
        db.session.add_all([client, PhoneAssignment(twilio_sid="PN" + "1" * 32, phone_number=TRACKING, client=client)])
        db.session.commit()
        params = voice_params()
        url = "https://calls.example.test/twilio/voice"
        response = app.test_client().post("/twilio/voice", data=params,
                                          headers={"X-Twilio-Signature": sign(app, url, params)})
        dial = ET.fromstring(response.data).find("Dial")
        assert dial.get("record") == "record-from-answer-dual"
        assert dial.get("recordingStatusCallback") == "https://calls.example.test/twilio/recording?kind=call"
        db.session.remove()


@pytest.mark.parametrize("setup", ["unknown", "inactive", "unassigned"])
def test_unroutable_number_hears_a_message_and_raises_an_alert(setup, signed_post, make_number, make_client):
    if setup == "inactive":
        make_number(phone_number=TRACKING, client=make_client(), is_active=False)
    elif setup == "unassigned":
        make_number(phone_number=TRACKING)
    document = twiml(signed_post("/twilio/voice", voice_params()))
    assert document.find("Dial") is None
    assert "cannot connect your call" in document.find("Say").text
    assert document.find("Hangup") is not None
    alert = db.session.scalars(sa.select(Alert)).one()
    assert (alert.kind, alert.subject, alert.severity) == ("unrouted_call", TRACKING, "error")
    expected = {"unknown": "unknown number", "inactive": "inactive", "unassigned": "not assigned"}[setup]
    assert expected in alert.message
    record = db.session.scalars(sa.select(CallRecord)).one()
    assert record.routed_by == "message" and record.forwarded_to is None


@pytest.mark.parametrize("setup", ["unknown", "inactive", "unassigned"])
def test_unroutable_number_goes_to_default_forward_number(setup, tmp_path, migrated_postgres):
    app = make_app(tmp_path, DEFAULT_FORWARD_NUMBER="(415) 555-0199")
    with app.app_context():
        from phoneapp.models import Client, PhoneAssignment

        if setup != "unknown":
            client = Client(name="A", phone="+14155550187") if setup == "inactive" else None
            db.session.add(PhoneAssignment(twilio_sid="PN" + "1" * 32, phone_number=TRACKING, client=client,
                                           is_active=setup != "inactive"))
            db.session.commit()
        params = voice_params()
        response = app.test_client().post("/twilio/voice", data=params, headers={
            "X-Twilio-Signature": sign(app, "https://calls.example.test/twilio/voice", params)})
        assert dial_target(ET.fromstring(response.data)) == "+14155550199"
        alert = db.session.scalars(sa.select(Alert)).one()
        assert (alert.kind, alert.severity) == ("unrouted_call", "warning")
        assert "default number" in alert.message
        assert db.session.scalars(sa.select(CallRecord)).one().routed_by == "default_number"
        db.session.remove()


def test_repeated_unroutable_calls_count_on_one_alert(signed_post):
    for n in range(3):
        signed_post("/twilio/voice", voice_params(call_sid=f"CA{n:032x}"))
    alert = db.session.scalars(sa.select(Alert)).one()
    assert alert.occurrences == 3


WEBHOOK_PATHS = ["/twilio/voice", "/twilio/client-webhook/1", "/twilio/status", "/twilio/dial-status",
                 "/twilio/dial-events", "/twilio/recording?kind=voicemail", "/twilio/fallback"]


@pytest.mark.parametrize("path", WEBHOOK_PATHS)
@pytest.mark.parametrize("signature", ["missing", "forged", "other-url", "tampered"])
def test_bad_signature_is_refused_and_writes_nothing(app, client, path, signature, assigned):
    params = voice_params(CallStatus="completed", CallDuration="30", DialCallStatus="busy",
                          RecordingUrl="https://api.twilio.com/r", ParentCallSid="CA" + "1" * 32)
    headers = {}
    if signature == "forged":
        headers["X-Twilio-Signature"] = "bm90IGEgc2lnbmF0dXJl"
    elif signature == "other-url":
        headers["X-Twilio-Signature"] = sign(app, "https://elsewhere.example" + path, params)
    elif signature == "tampered":
        headers["X-Twilio-Signature"] = sign(app, "https://calls.example.test" + path, params)
        params = {**params, "To": "+14155550111"}
    response = client.post(path, data=params, headers=headers)
    assert response.status_code == 403
    assert count(CallRecord) == 0 and count(Alert) == 0


def test_signature_for_public_url_validates_behind_a_proxy(tmp_path, migrated_postgres):
    """Twilio signs https://public.example/…; the app sees http://10.0.0.5:8000/… from the proxy."""
    app = make_app(tmp_path, PUBLIC_BASE_URL="https://public.example")
    with app.app_context():
        params = voice_params()
        good = sign(app, "https://public.example/twilio/voice", params)
        proxied = app.test_client()
        response = proxied.post("/twilio/voice", data=params, base_url="http://10.0.0.5:8000",
                                headers={"X-Twilio-Signature": good, "X-Forwarded-Proto": "https",
                                         "X-Forwarded-Host": "public.example"})
        assert response.status_code == 200
        internal = sign(app, "http://10.0.0.5:8000/twilio/voice", params)
        response = proxied.post("/twilio/voice", data={**params, "CallSid": "CA" + "2" * 32},
                                base_url="http://10.0.0.5:8000", headers={"X-Twilio-Signature": internal})
        assert response.status_code == 403
        db.session.remove()


def test_same_call_sid_three_times_is_one_record(signed_post, assigned):
    for _ in range(3):
        assert dial_target(twiml(signed_post("/twilio/voice", voice_params()))) == "+14155550187"
    assert count(CallRecord) == 1


def test_status_callbacks_out_of_order_end_completed_with_duration(signed_post, assigned):
    sid = "CA" + "1" * 32
    signed_post("/twilio/voice", voice_params(sid))
    for status, extra in (("completed", {"CallDuration": "73"}), ("ringing", {}), ("in-progress", {})):
        assert signed_post("/twilio/status", voice_params(sid, CallStatus=status, **extra)).status_code == 200
    record = db.session.scalars(sa.select(CallRecord)).one()
    assert (record.status, record.duration) == ("completed", 73)
    assert record.ended_at is not None


def test_callback_before_the_voice_webhook_still_makes_one_record(signed_post, assigned):
    sid = "CA" + "3" * 32
    signed_post("/twilio/status", voice_params(sid, CallStatus="completed", CallDuration="12"))
    signed_post("/twilio/voice", voice_params(sid))
    record = db.session.scalars(sa.select(CallRecord)).one()
    assert (record.status, record.duration, record.forwarded_to) == ("completed", 12, "+14155550187")


def child_params(parent, status, sequence, **extra):
    return {"CallSid": "CA" + "c" * 32, "ParentCallSid": parent, "AccountSid": "AC" + "0" * 32,
            "From": CALLER, "To": "+14155550187", "Direction": "outbound-dial", "CallStatus": status,
            "SequenceNumber": str(sequence), "CallbackSource": "call-progress-events", **extra}


def test_forwarded_leg_callbacks_tie_to_the_parent_call_and_never_go_back(signed_post, assigned):
    parent = "CA" + "1" * 32
    signed_post("/twilio/voice", voice_params(parent))
    for status, sequence, extra in (("initiated", 0, {}), ("completed", 3, {"CallDuration": "40"}),
                                    ("ringing", 1, {}), ("in-progress", 2, {})):
        assert signed_post("/twilio/dial-events", child_params(parent, status, sequence, **extra)).status_code == 200
    record = db.session.scalars(sa.select(CallRecord)).one()
    assert record.dial_call_sid == "CA" + "c" * 32
    assert (record.dial_leg_status, record.dial_duration) == ("completed", 40)
    assert record.answered_at is not None
    assert count(CallRecord) == 1


@pytest.mark.parametrize("dial_status", ["busy", "no-answer", "failed"])
def test_unanswered_forward_offers_voicemail_and_links_the_recording(signed_post, assigned, dial_status):
    sid = "CA" + "1" * 32
    signed_post("/twilio/voice", voice_params(sid))
    document = twiml(signed_post("/twilio/dial-status", voice_params(
        sid, CallStatus="in-progress", DialCallStatus=dial_status, DialCallSid="CA" + "c" * 32)))
    assert "leave a message" in document.find("Say").text
    record_verb = document.find("Record")
    voicemail_url = "https://calls.example.test/twilio/recording?kind=voicemail"
    assert record_verb.get("action") == voicemail_url
    assert record_verb.get("recordingStatusCallback") == voicemail_url
    recording = voice_params(sid, CallStatus="completed", RecordingSid="RE" + "9" * 32,
                             RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE9",
                             RecordingStatus="completed", RecordingDuration="14", RecordingSource="RecordVerb")
    assert twiml(signed_post("/twilio/recording?kind=voicemail", recording)).find("Hangup") is not None
    record = db.session.scalars(sa.select(CallRecord)).one()
    assert record.dial_status == dial_status
    assert record.voicemail_url.endswith("/Recordings/RE9")
    assert record.voicemail_duration == 14
    assert failed_forward_streak(assigned.id) == 1


def test_answered_forward_hangs_up_after_the_call(signed_post, assigned):
    sid = "CA" + "1" * 32
    signed_post("/twilio/voice", voice_params(sid))
    document = twiml(signed_post("/twilio/dial-status", voice_params(
        sid, CallStatus="in-progress", DialCallStatus="completed", DialCallDuration="61")))
    assert document.find("Record") is None and document.find("Hangup") is not None
    record = db.session.scalars(sa.select(CallRecord)).one()
    assert (record.dial_status, record.dial_duration) == ("completed", 61)


def test_failed_forwards_in_a_row_raise_one_error_alert_and_an_answer_resolves_it(signed_post, assigned):
    for n in range(4):
        sid = f"CA{n:032x}"
        signed_post("/twilio/voice", voice_params(sid))
        signed_post("/twilio/dial-status", voice_params(sid, DialCallStatus="no-answer"))
    alert = db.session.scalars(sa.select(Alert).where(Alert.kind == "failed_forwards")).one()
    assert (alert.severity, alert.occurrences, alert.resolved_at) == ("error", 2, None)
    signed_post("/twilio/voice", voice_params("CA" + "f" * 32))
    signed_post("/twilio/dial-status", voice_params("CA" + "f" * 32, DialCallStatus="completed"))
    db.session.refresh(alert)
    assert alert.resolved_at is not None


def test_client_webhook_routes_by_to_then_by_client_in_path(signed_post, assigned, make_client):
    legacy_client = make_client(name="Legacy", phone="+14155550166")
    assert dial_target(twiml(signed_post(f"/twilio/client-webhook/{legacy_client.id}", voice_params()))) == (
        "+14155550187")
    document = twiml(signed_post(f"/twilio/client-webhook/{legacy_client.id}",
                                 voice_params("CA" + "5" * 32, to="+14155550177")))
    assert dial_target(document) == "+14155550166"


def test_callback_without_call_sid_is_a_clear_400(signed_post):
    response = signed_post("/twilio/status", {"CallStatus": "completed"})
    assert response.status_code == 400
    assert count(CallRecord) == 0


@pytest.mark.parametrize("link", ["javascript:alert(document.cookie)", "https://evil.example/Recordings/RE9",
                                  "http://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE9",
                                  "https://api.twilio.com.evil.example/Recordings/RE9"])
@pytest.mark.parametrize("kind", ["voicemail", "call"])
def test_a_recording_link_that_is_not_twilios_is_not_kept(signed_post, assigned, link, kind):
    sid = "CA" + "1" * 32
    signed_post("/twilio/voice", voice_params(sid))
    recording = voice_params(sid, CallStatus="completed", RecordingSid="RE" + "9" * 32, RecordingUrl=link,
                             RecordingStatus="completed", RecordingDuration="14")
    assert signed_post(f"/twilio/recording?kind={kind}", recording).status_code == 200
    record = db.session.scalars(sa.select(CallRecord)).one()
    assert (record.recording_url, record.voicemail_url) == (None, None)
