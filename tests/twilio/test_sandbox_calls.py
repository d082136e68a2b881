"""Sandbox mode end to end: simulated Twilio calls through phoneapp's real, signed webhook routes."""
import sqlalchemy as sa

from phoneapp.domain.call_status import call_outcome, outcome_of
from phoneapp.extensions import db
from phoneapp.models import CallRecord, PhoneAssignment
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.services import assignments
from phoneapp.services.simulator import place_simulated_call


def assigned_sandbox_number(app, make_client):
    assignments.sync_numbers()
    number = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).first()
    client = make_client(phone="+14155550187")
    assignments.upsert_assignment({"twilio_sid": number.twilio_sid, "client_id": client.id})
    return number


def test_sync_brings_in_the_sandbox_numbers_as_pending(app):
    counts = assignments.sync_numbers()
    assert counts == {"added": 4, "updated": 0, "missing": 0, "total": 4}
    numbers = db.session.scalars(sa.select(PhoneAssignment)).all()
    assert {n.config_state for n in numbers} == {"unverified"} and all(n.client_id is None for n in numbers)
    assert assignments.sync_numbers()["added"] == 0


def test_a_number_gone_from_the_account_is_marked_missing_with_an_alert(app):
    assignments.sync_numbers()
    account = SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])
    gone = account.numbers()[0]
    account.remove_number(gone["sid"])
    assert assignments.sync_numbers()["missing"] == 1
    number = db.session.scalars(sa.select(PhoneAssignment).where(PhoneAssignment.twilio_sid == gone["sid"])).one()
    assert number.config_state == "missing"
    from phoneapp.models import Alert
    assert db.session.scalars(sa.select(Alert.kind)).all() == ["number_missing"]


def test_answered_sandbox_call_is_recorded_completed(app, make_client):
    number = assigned_sandbox_number(app, make_client)
    account = SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])
    assert account.get_number(number.twilio_sid)["voice_url"] == "https://calls.example.test/twilio/voice"
    call = place_simulated_call(number.phone_number, outcome="answered", background=False, pace=0)
    assert all(request.ok for request in call.requests), [(r.url, r.status, r.error) for r in call.requests]
    record = db.session.scalars(sa.select(CallRecord)).one()
    assert record.twilio_call_sid == call.call_sid and record.dial_call_sid == call.child_sid
    assert (record.status, record.dial_status, record.dial_leg_status) == ("completed", "completed", "completed")
    assert record.forwarded_to == "+14155550187" and record.duration > 0 and record.answered_at is not None
    assert call_outcome(record.status, record.dial_status, record.routed_by, bool(record.voicemail_url)) == "answered"


def test_busy_sandbox_call_leaves_a_voicemail(app, make_client):
    number = assigned_sandbox_number(app, make_client)
    place_simulated_call(number.phone_number, outcome="busy", background=False, pace=0)
    record = db.session.scalars(sa.select(CallRecord)).one()
    assert record.dial_status == "busy" and record.status == "completed"
    assert record.voicemail_url and record.voicemail_duration
    assert call_outcome(record.status, record.dial_status, record.routed_by, True) == "voicemail"


def test_number_not_pointed_at_phoneapp_loses_the_call_and_twilio_reports_it(app, make_client):
    assignments.sync_numbers()
    account = SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])
    stray = account.numbers()[1]
    account.update_number(stray["sid"], voice_url="https://old-tracker.example/voice")
    call = place_simulated_call(stray["phone_number"], outcome="answered", background=False, pace=0)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CallRecord)) == 0
    assert [alert["error_code"] for alert in account.alerts()] == ["11200"]
    assert call.requests[0].error


def test_sync_keeps_a_name_staff_gave_and_renames_are_audited(app):
    from phoneapp.models import AuditEvent

    assignments.sync_numbers()
    number = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).first()
    assignments.update_assignment(number, {"friendly_name": "Spring campaign"})
    assignments.sync_numbers()
    db.session.refresh(number)
    assert number.friendly_name == "Spring campaign"
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "rename")).one()
    assert (event.before, event.after) == ({"friendly_name": "Sandbox line 1"}, {"friendly_name": "Spring campaign"})


def test_a_sandbox_caller_who_hangs_up_while_it_rings_is_missed_offered_nothing_and_times_agree(app, make_client):
    number = assigned_sandbox_number(app, make_client)
    call = place_simulated_call(number.phone_number, outcome="canceled", background=False, pace=0)
    assert not call.requests_of("recording") and not call.requests_of("record-action")
    record = db.session.scalars(sa.select(CallRecord)).one()
    assert (record.dial_status, record.dial_leg_status, record.caller_hung_up) == ("canceled", "canceled", True)
    assert (record.status, record.ended_by, outcome_of(record)) == ("completed", "status-callback", "missed")
    # The callbacks' Timestamps agree with the durations they carry: the call lasted the seconds it rang (a
    # Timestamp is to the whole second).
    assert record.duration == call.duration
    assert abs((record.ended_at - record.started_at).total_seconds() - call.duration) <= 1
    db.session.refresh(number)
    assert number.failed_forward_streak == 0
