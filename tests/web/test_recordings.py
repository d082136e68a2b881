"""Recordings and voicemail play through phoneapp: streamed from Twilio with the account's credentials, byte ranges
passed on, and Twilio's own address shown nowhere staff look."""
import csv
import io
import uuid
from contextlib import contextmanager

import pytest
import requests
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import CallRecord, PhoneAssignment
from phoneapp.services import assignments, clients, users
from phoneapp.services.simulator import place_simulated_call
from tests.support.apps import PUBLIC_BASE_URL, make_app
from tests.support.fake_twilio import running_fake_twilio, unreachable_twilio
from tests.support.pages import STAFF, login
from tests.support.webhooks import post_signed, setup_routing, voice_params


def recording_url(account_sid, recording_sid):
    return f"https://api.twilio.com/2010-04-01/Accounts/{account_sid}/Recordings/{recording_sid}"


def new_sid(prefix):
    return prefix + uuid.uuid4().hex


def recorded_call(app, account_sid, kind="call"):
    """A call forwarded to Acme whose recording (or voicemail) Twilio reported through the signed webhooks."""
    call_sid, recording_sid = new_sid("CA"), new_sid("RE")
    assert post_signed(app, "/twilio/voice", voice_params(call_sid=call_sid)).status_code == 200
    params = {"AccountSid": account_sid, "CallSid": call_sid, "RecordingSid": recording_sid,
              "RecordingUrl": recording_url(account_sid, recording_sid), "RecordingStatus": "completed",
              "RecordingDuration": "14", "RecordingChannels": "1"}
    assert post_signed(app, f"/twilio/recording?kind={kind}", params).status_code == 200
    db.session.expire_all()
    return db.session.scalars(sa.select(CallRecord).where(CallRecord.twilio_call_sid == call_sid)).one(), recording_sid


def twilio_bytes(fake, recording_sid, **headers):
    """What the Twilio test server itself serves for the recording, asked directly with the account's credentials."""
    answer = requests.get(f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Recordings/{recording_sid}",
                          auth=(fake.account_sid, fake.auth_token), headers=headers, timeout=10)
    assert answer.status_code in (200, 206)
    return answer.content


@pytest.fixture
def twilio_server(tmp_path):
    with running_fake_twilio(tmp_path / "twilio" / "account.json") as fake:
        yield fake


@contextmanager
def app_on(tmp_path, **environ):
    """An app with a staff user; `routed`: TRACKING forwards to Acme (tests.support.webhooks.setup_routing)."""
    app = make_app(tmp_path, **environ)
    with app.app_context():
        setup_routing(app)
        users.create_user(*STAFF, role="staff", name="Sam Staff")
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def twilio_app(tmp_path, migrated_postgres, twilio_server):
    """An app with real credentials whose Twilio API is the local test server, over HTTP."""
    with app_on(tmp_path, TWILIO_ACCOUNT_SID=twilio_server.account_sid, TWILIO_AUTH_TOKEN=twilio_server.auth_token,
                TWILIO_API_BASE_URL=twilio_server.base_url) as app:
        yield app


def staff_of(app):
    client = app.test_client()
    assert login(client, *STAFF).status_code == 303
    return client


@pytest.mark.parametrize("kind, path", [("call", "recording"), ("voicemail", "voicemail")])
def test_the_audio_is_exactly_what_twilio_serves(twilio_app, twilio_server, kind, path):
    record, recording_sid = recorded_call(twilio_app, twilio_server.account_sid, kind)
    twilio_server.requests.clear()
    response = staff_of(twilio_app).get(f"/calls/{record.id}/{path}")
    asked = [path for _, path, _ in twilio_server.requests]
    assert response.status_code == 200
    expected = twilio_bytes(twilio_server, recording_sid)
    assert response.data == expected and len(expected) > 1000
    assert response.headers["Content-Type"] == "audio/x-wav"
    assert response.headers["Content-Length"] == str(len(expected))
    assert response.headers["Accept-Ranges"] == "bytes"
    assert asked == [f"/2010-04-01/Accounts/{twilio_server.account_sid}/Recordings/{recording_sid}"]


def test_a_byte_range_is_answered_with_exactly_those_bytes(twilio_app, twilio_server):
    record, recording_sid = recorded_call(twilio_app, twilio_server.account_sid)
    whole = twilio_bytes(twilio_server, recording_sid)
    response = staff_of(twilio_app).get(f"/calls/{record.id}/recording", headers={"Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.data == whole[10:20]
    assert response.headers["Content-Range"] == f"bytes 10-19/{len(whole)}"
    assert response.headers["Content-Length"] == "10"


def test_a_range_past_the_end_is_a_416_not_an_error(twilio_app, twilio_server):
    record, recording_sid = recorded_call(twilio_app, twilio_server.account_sid)
    size = len(twilio_bytes(twilio_server, recording_sid))
    response = staff_of(twilio_app).get(f"/calls/{record.id}/recording", headers={"Range": f"bytes={size + 10}-"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"


def test_wrong_credentials_at_twilio_are_a_502_that_says_so(tmp_path, migrated_postgres, twilio_server):
    with app_on(tmp_path, TWILIO_ACCOUNT_SID=twilio_server.account_sid, TWILIO_AUTH_TOKEN="f" * 32,
                TWILIO_API_BASE_URL=twilio_server.base_url) as app:
        record, _ = recorded_call(app, twilio_server.account_sid)
        response = staff_of(app).get(f"/calls/{record.id}/recording")
    assert response.status_code == 502
    page = response.get_data(as_text=True)
    assert "Twilio did not hand over the recording" in page and "401" in page
    assert "f" * 32 not in page


def test_twilio_out_of_reach_is_a_502(tmp_path, migrated_postgres):
    with app_on(tmp_path, **unreachable_twilio()) as app:
        record, _ = recorded_call(app, app.config["TWILIO_ACCOUNT_SID"], "voicemail")
        response = staff_of(app).get(f"/calls/{record.id}/voicemail")
    assert response.status_code == 502
    assert "Twilio did not hand over the voicemail" in response.get_data(as_text=True)


def test_anonymous_visitors_are_sent_to_log_in(twilio_app, twilio_server):
    record, _ = recorded_call(twilio_app, twilio_server.account_sid)
    twilio_server.requests.clear()
    for path in ("recording", "voicemail"):
        response = twilio_app.test_client().get(f"/calls/{record.id}/{path}")
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert twilio_server.requests == []


def test_a_call_without_one_is_a_404(twilio_app, twilio_server):
    record, _ = recorded_call(twilio_app, twilio_server.account_sid)
    staff = staff_of(twilio_app)
    assert staff.get(f"/calls/{record.id}/voicemail").status_code == 404
    assert staff.get("/calls/999999/recording").status_code == 404


# -- the sandbox plays too, and Twilio's address is nowhere ------------------------------------------------------

@pytest.fixture
def recording_sandbox(tmp_path, migrated_postgres):
    """The sandbox with RECORD_CALLS on and its first number forwarding to a client."""
    app = make_app(tmp_path, RECORD_CALLS="true")
    with app.app_context():
        users.create_user(*STAFF, role="staff", name="Sam Staff")
        client = clients.create_client({"name": "Acme Plumbing", "phone": "+14155550187"}, "US")
        assignments.sync_numbers()
        first = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).first()
        assignments.upsert_assignment({"twilio_sid": first.twilio_sid, "client_id": client.id})
        yield app
        db.session.remove()
        db.engine.dispose()


def sandbox_calls(app):
    """A recorded answered call and a busy one that left a voicemail, placed in the sandbox."""
    number = db.session.scalars(sa.select(PhoneAssignment).where(PhoneAssignment.client_id.is_not(None))).one()
    answered = place_simulated_call(number.phone_number, outcome="answered", background=False, pace=0)
    busy = place_simulated_call(number.phone_number, outcome="busy", background=False, pace=0)
    db.session.expire_all()
    by_sid = {r.twilio_call_sid: r for r in db.session.scalars(sa.select(CallRecord))}
    return by_sid[answered.call_sid], by_sid[busy.call_sid]


def test_the_sandbox_serves_audio_for_its_recordings(recording_sandbox):
    recorded, voicemail = sandbox_calls(recording_sandbox)
    assert recorded.recording_url and voicemail.voicemail_url
    staff = staff_of(recording_sandbox)
    whole = staff.get(f"/calls/{recorded.id}/recording")
    assert whole.status_code == 200 and whole.data[:4] == b"RIFF" and whole.data[8:12] == b"WAVE"
    part = staff.get(f"/calls/{recorded.id}/recording", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == whole.data[100:200]
    message = staff.get(f"/calls/{voicemail.id}/voicemail")
    assert message.status_code == 200 and message.data[:4] == b"RIFF"


def test_twilio_addresses_appear_in_no_page_and_no_export(recording_sandbox):
    recorded, voicemail = sandbox_calls(recording_sandbox)
    assert "api.twilio.com" in recorded.recording_url and "api.twilio.com" in voicemail.voicemail_url
    staff = staff_of(recording_sandbox)
    pages = ["/", "/partials/dashboard", "/partials/recent-calls", "/calls", "/partials/calls",
             f"/calls/{recorded.id}", f"/calls/{voicemail.id}", f"/partials/calls/{recorded.id}",
             f"/numbers/{recorded.phone_assignment_id}", f"/clients/{recorded.client_id}"]
    for path in pages:
        response = staff.get(path)
        assert response.status_code == 200, path
        assert "twilio.com/2010-04-01" not in response.get_data(as_text=True), path
        assert "api.twilio.com" not in response.get_data(as_text=True), path
    log = staff.get("/calls").get_data(as_text=True)
    assert f'href="/calls/{recorded.id}/recording"' in log and f'href="/calls/{voicemail.id}/voicemail"' in log

    export = staff.get("/calls/export.csv", buffered=True)
    assert export.status_code == 200 and "twilio.com" not in export.get_data(as_text=True)
    rows = {row["call_id"]: row for row in csv.DictReader(io.StringIO(export.get_data(as_text=True)))}
    assert rows[str(recorded.id)]["recording_url"] == f"{PUBLIC_BASE_URL}/calls/{recorded.id}/recording"
    assert rows[str(recorded.id)]["voicemail_url"] == ""
    assert rows[str(voicemail.id)]["voicemail_url"] == f"{PUBLIC_BASE_URL}/calls/{voicemail.id}/voicemail"


def test_the_api_names_phoneapps_addresses(recording_sandbox):
    recorded, voicemail = sandbox_calls(recording_sandbox)
    staff = staff_of(recording_sandbox)
    one = staff.get(f"/api/call-records/{recorded.id}").get_json()
    assert one["recording_url"] == f"{PUBLIC_BASE_URL}/calls/{recorded.id}/recording"
    assert one["voicemail_url"] is None and one["recording_sid"] == recorded.recording_sid
    listed = staff.get("/api/call-records").get_data(as_text=True)
    assert "api.twilio.com" not in listed
    assert f"{PUBLIC_BASE_URL}/calls/{voicemail.id}/voicemail" in listed


def test_the_credentials_go_to_twilio_and_nowhere_else(twilio_app, twilio_server):
    record, _ = recorded_call(twilio_app, twilio_server.account_sid)
    record.recording_url = "https://recordings.example.org/2010-04-01/Recordings/RE1"
    db.session.commit()
    twilio_server.requests.clear()
    response = staff_of(twilio_app).get(f"/calls/{record.id}/recording")
    assert response.status_code == 502 and "not an address on Twilio" in response.get_data(as_text=True)
    assert twilio_server.requests == []
