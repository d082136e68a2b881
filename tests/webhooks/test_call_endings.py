"""Calls Twilio told us about in pieces: a leg before its parent, a fallback's error, a call never heard to end."""
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from phoneapp.domain.call_status import outcome_of
from phoneapp.extensions import db
from phoneapp.jobs.queues import enqueue
from phoneapp.models import Alert, CallRecord, utcnow
from phoneapp.services.dashboard import dashboard_figures
from phoneapp.services.number_cards import calls_today_by_number, live_calls_by_number
from phoneapp.services.number_statuses import number_statuses
from phoneapp.services.routing_table import write_routing_cache
from tests.support.jobs import run_queued_jobs
from tests.support.webhooks import CALLER, TRACKING, voice_params

TARGET = "+14155550187"
PARENT = "CA" + "a" * 32
CHILD = "CA" + "b" * 32


@pytest.fixture
def assigned(make_client, make_number):
    client = make_client(phone=TARGET)
    return make_number(phone_number=TRACKING, client=client)


def run_silent_call_sweep(app):
    """The periodic job as a worker runs it; its one-line summary."""
    run = enqueue("end_silent_calls")
    run_queued_jobs(app)
    db.session.refresh(run)
    assert run.status == "succeeded", run.error
    return run.summary


def record_of(call_sid=PARENT):
    db.session.expire_all()
    return db.session.scalar(sa.select(CallRecord).where(CallRecord.twilio_call_sid == call_sid))


def leg_params(status, **extra):
    return {"CallSid": CHILD, "ParentCallSid": PARENT, "AccountSid": "AC" + "0" * 32, "CallStatus": status,
            "Direction": "outbound-dial", "From": CALLER, "To": TARGET, **extra}


def test_a_leg_heard_of_before_its_parent_builds_the_parent_which_its_own_webhook_completes(signed_post, assigned):
    signed_post("/twilio/dial-events", leg_params("in-progress"))
    built = record_of()
    assert (built.from_number, built.forwarded_to, built.status) == (CALLER, TARGET, "in-progress")

    signed_post("/twilio/voice", voice_params(call_sid=PARENT))
    record = record_of()
    assert (record.from_number, record.to_number) == (CALLER, TRACKING)
    assert (record.phone_assignment_id, record.client_id) == (assigned.id, assigned.client_id)
    assert (record.caller_city, record.caller_state) == ("WASHINGTON", "DC")
    assert record.routed_by == "assignment"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CallRecord)) == 1


def test_the_fallback_url_answering_turns_the_number_red_with_twilios_error_until_the_voice_url_answers(
        app, signed_post, assigned):
    failed_url = app.config["PUBLIC_BASE_URL"] + "/twilio/voice"
    write_routing_cache()  # as every web process does as it starts: the fallback answers from it
    signed_post("/twilio/fallback", voice_params(call_sid=PARENT, ErrorCode="11200", ErrorUrl=failed_url))
    record = record_of()
    assert (record.error_code, record.error_url) == ("11200", failed_url)
    assert (record.phone_assignment_id, record.routed_by, record.forwarded_to) == (assigned.id, "assignment", TARGET)
    status = number_statuses([assigned])[assigned.id]
    assert status.label == "Error"
    assert "11200" in status.reason and failed_url in status.reason and "fallback" in status.reason

    signed_post("/twilio/voice", voice_params(call_sid="CA" + "c" * 32))
    db.session.expire_all()
    assert number_statuses([assigned])[assigned.id].label != "Error"
    assert db.session.scalar(sa.select(Alert.resolved_at).where(Alert.subject == f"number:{assigned.id}"))


def test_a_call_nothing_is_heard_of_for_longer_than_any_call_lasts_is_ended_by_the_worker(
        app, signed_post, assigned):
    signed_post("/twilio/voice", voice_params(call_sid=PARENT))
    signed_post("/twilio/dial-events", leg_params("in-progress"))
    assert live_calls_by_number([assigned.id])
    # Its last callback came five hours ago, and none since: the final status callback was lost.
    heard = utcnow() - timedelta(hours=5)
    db.session.execute(sa.update(CallRecord).values(started_at=heard - timedelta(minutes=1), answered_at=heard,
                                                    updated_at=heard))
    db.session.commit()

    assert "1 silent call ended" in run_silent_call_sweep(app)
    record = record_of()
    assert (record.status, record.ended_by) == ("completed", "timeout")
    assert record.ended_at == heard and record.duration == 60
    assert not live_calls_by_number([assigned.id])
    assert "0 silent calls ended" in run_silent_call_sweep(app)


def test_a_call_still_within_the_longest_call_is_left_running(app, signed_post, assigned):
    signed_post("/twilio/voice", voice_params(call_sid=PARENT))
    signed_post("/twilio/dial-events", leg_params("in-progress"))
    db.session.execute(sa.update(CallRecord).values(updated_at=utcnow() - timedelta(hours=3)))
    db.session.commit()
    assert "0 silent calls ended" in run_silent_call_sweep(app)
    assert record_of().status == "in-progress"


def test_a_call_heard_of_only_by_its_final_callback_is_filed_on_its_number_on_the_day_it_began(
        app, signed_post, assigned):
    """23:59 to 00:02 local, its voice webhook lost: yesterday's call on both the card and the dashboard."""
    zone = ZoneInfo(app.config["APP_TIMEZONE"])
    ended = datetime(2026, 11, 21, 0, 2, tzinfo=zone)
    with time_machine.travel(ended + timedelta(seconds=20), tick=False):
        signed_post("/twilio/status", voice_params(
            call_sid=PARENT, CallStatus="completed", CallDuration="180", SequenceNumber="0",
            Timestamp=format_datetime(ended.astimezone(UTC), usegmt=True)))
        record = record_of()
        assert (record.phone_assignment_id, record.client_id) == (assigned.id, assigned.client_id)
        assert record.started_at == datetime(2026, 11, 20, 23, 59, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
        assert (record.duration, record.ended_by, outcome_of(record)) == (180, "status-callback", "missed")
        assert dashboard_figures().calls_today == 0
        assert calls_today_by_number([assigned.id]) == {}
        assert assigned.last_call_at is not None
    with time_machine.travel(datetime(2026, 11, 20, 23, 59, 30, tzinfo=zone), tick=False):
        assert dashboard_figures().calls_today == 1
        assert calls_today_by_number([assigned.id]) == {assigned.id: 1}


def play_forward(signed_post, n, dial_status, call_status="in-progress"):
    """A call whose forward ends `dial_status`, reported by the <Dial action> as the caller still is (or is not) on."""
    call_sid = f"CA{n:032x}"
    signed_post("/twilio/voice", voice_params(call_sid=call_sid))
    return signed_post("/twilio/dial-status", voice_params(
        call_sid=call_sid, CallStatus=call_status, DialCallStatus=dial_status, DialCallSid=f"CA{n:016x}{'f' * 16}",
        DialCallDuration="0"))


@pytest.mark.parametrize("dial_status, call_status", [("canceled", "completed"), ("no-answer", "completed")])
def test_a_caller_hanging_up_while_it_rings_neither_clears_the_targets_failures_nor_is_offered_voicemail(
        signed_post, assigned, dial_status, call_status):
    for n in range(3):
        play_forward(signed_post, n, "busy")
    db.session.refresh(assigned)
    assert assigned.failed_forward_streak == 3

    answer = play_forward(signed_post, 3, dial_status, call_status)
    assert b"<Record" not in answer.data and b"<Hangup" in answer.data
    db.session.refresh(assigned)
    assert assigned.failed_forward_streak == 3
    assert number_statuses([assigned])[assigned.id].label == "Error"
    assert outcome_of(record_of(f"CA{3:032x}")) == "missed"
