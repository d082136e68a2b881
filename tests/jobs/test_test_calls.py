"""Test calls (SPEC §7): the dry check and the live call through the sandbox's real webhooks, run by a worker."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from phoneapp.extensions import db
from phoneapp.jobs import on_demand
from phoneapp.models import CallRecord, JobRun, TestCall, utcnow
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.services import call_tests
from phoneapp.services.client_stats import client_call_stats
from tests.support.jobs import run_queued_jobs
from tests.support.pages import HX, csrf_headers, soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")


@pytest.fixture
def account(app):
    return SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])


def steps_of(test):
    return [step["step"] for step in test.steps]


def finished(test_id):
    db.session.expire_all()
    return db.session.get(TestCall, test_id)


def test_a_live_test_call_on_an_assigned_number_is_answered_with_every_step_recorded(app, assigned, admin):
    test = on_demand.start_test_call(assigned, admin)
    assert (test.step, test.result) == ("queued", None)
    run_queued_jobs(app)

    test = finished(test.id)
    assert (test.step, test.result) == ("answered", "passed"), test.steps
    assert steps_of(test) == ["queued", "checking", "checking", "checking", "calling", "webhook reached",
                              "forwarding", "answered"]
    assert all(step["ok"] is not False for step in test.steps)
    assert test.call_sid and test.inbound_call_sid and test.finished_at is not None
    # The inbound leg is a real call record, marked as a test and kept out of the client's figures.
    record = db.session.scalars(sa.select(CallRecord).where(CallRecord.twilio_call_sid == test.inbound_call_sid)).one()
    assert record.is_test and record.from_number == app.config["TEST_CALLER_ID"]
    assert record.forwarded_to == assigned.client.phone and record.dial_status == "completed"
    stats = client_call_stats(assigned.client_id)
    assert (stats.answered, stats.voicemail, stats.missed) == (0, 0, 0)
    assert db.session.get(type(assigned), assigned.id).last_call_at is None
    # The worker ran it as a recorded job.
    run = db.session.scalars(sa.select(JobRun).where(JobRun.name == "run_test_call")).one()
    assert (run.status, run.args) == ("succeeded", [test.id])


def test_a_target_that_does_not_answer_ends_the_test_no_answer(app, assigned, account, admin):
    account.set_target_behaviour(assigned.client.phone, "no-answer")
    test = on_demand.start_test_call(assigned, admin)
    run_queued_jobs(app)
    test = finished(test.id)
    assert (test.step, test.result) == ("no-answer", "failed")
    assert "did not answer" in test.detail
    assert steps_of(test)[-3:] == ["webhook reached", "forwarding", "no-answer"]


def test_a_busy_target_ends_the_test_busy(app, assigned, account, admin):
    account.set_target_behaviour(assigned.client.phone, "busy")
    test = on_demand.start_test_call(assigned, admin)
    run_queued_jobs(app)
    assert finished(test.id).step == "busy"


def test_a_failing_dry_check_places_no_call(app, assigned, account, admin):
    account.update_number(assigned.twilio_sid, voice_url="https://elsewhere.example/voice")
    test = on_demand.start_test_call(assigned, admin)
    run_queued_jobs(app)
    test = finished(test.id)
    assert (test.step, test.result) == ("failed", "failed")
    assert test.detail.startswith("Dry check failed") and "elsewhere.example" in test.detail
    assert test.call_sid is None
    assert not [call for call in account.calls() if call.get("direction") == "outbound-api"]


def test_a_dry_check_only_test_ends_checked(app, assigned, account, admin):
    test = on_demand.start_test_call(assigned, admin, live=False)
    run_queued_jobs(app)
    test = finished(test.id)
    assert (test.step, test.result) == ("checked", "passed")
    assert not [call for call in account.calls() if call.get("direction") == "outbound-api"]


def test_a_test_nobody_runs_times_out_and_none_stays_pending(app, assigned, sandbox_numbers, admin):
    waiting = on_demand.start_test_call(assigned, admin)
    half_way = on_demand.start_test_call(sandbox_numbers[1], admin)
    call_tests.advance(half_way, "calling", None, "Calling")
    past = utcnow() - timedelta(seconds=1)
    db.session.execute(sa.update(TestCall).values(deadline_at=past))
    db.session.commit()
    assert call_tests.expire_overdue_test_calls() == 2
    waiting, half_way = finished(waiting.id), finished(half_way.id)
    assert (waiting.step, waiting.result) == ("timed out", "failed")
    assert "worker" in waiting.detail
    assert "did not reach phoneapp" in half_way.detail
    assert db.session.scalar(sa.select(sa.func.count()).select_from(TestCall)
                             .where(TestCall.finished_at.is_(None))) == 0


def test_late_callbacks_never_move_a_finished_test(app, assigned, admin, signed_post):
    test = on_demand.start_test_call(assigned, admin)
    run_queued_jobs(app)
    test = finished(test.id)
    before = list(test.steps)
    response = signed_post(f"/twilio/test-call-status?test_call={test.id}",
                           {"CallSid": test.call_sid, "CallStatus": "failed", "To": assigned.phone_number,
                            "From": app.config["TEST_CALLER_ID"]})
    assert response.status_code == 200
    test = finished(test.id)
    assert test.step == "answered" and test.steps == before


def test_the_test_callback_is_signed(app, assigned, admin, client):
    test = on_demand.start_test_call(assigned, admin)
    response = client.post(f"/twilio/test-call-status?test_call={test.id}",
                           data={"CallSid": "CA1", "CallStatus": "failed"})
    assert response.status_code == 403
    assert finished(test.id).step == "queued"


def test_pressing_test_on_a_card_shows_the_steps_and_the_card_polls_until_done(app, admin_client, assigned):
    response = admin_client.post(f"/partials/numbers/{assigned.id}/test", headers=csrf_headers(admin_client))
    assert response.status_code == 200
    card = soup(response).find(id=f"number-{assigned.id}")
    assert "Testing" in text_of(card.select_one(".test-call"))
    assert "test_call=" in card["hx-get"] and card["hx-trigger"] == "every 1s"
    assert card.find("input", {"name": "card"}) is None  # out of the page's poll while the test runs
    test = db.session.scalars(sa.select(TestCall)).one()
    run_queued_jobs(app)
    response = admin_client.get(f"/partials/numbers/{assigned.id}/card?test_call={test.id}", headers=HX)
    card = soup(response).find(id=f"number-{assigned.id}")
    labels = [text_of(step) for step in card.select(".check-step")]
    assert any(label.startswith("✓ Answered") for label in labels), labels
    assert "Test passed" in text_of(card)
    assert card["hx-trigger"] == "load delay:30s"  # back into the page's poll after 30 s


def test_the_number_page_runs_a_test_in_its_own_panel(app, admin_client, assigned):
    token = csrf_headers(admin_client)
    response = admin_client.post(f"/partials/numbers/{assigned.id}/test", data={"panel": "detail", "live": "0"},
                                 headers=token)
    panel = soup(response).select_one(".test-call")
    assert panel["hx-trigger"] == "every 1s" and "dry check only" in text_of(panel)
    run_queued_jobs(app)
    page = soup(admin_client.get(f"/numbers/{assigned.id}"))
    panel = page.select_one("#test-panel .test-call")
    assert "Test passed" in text_of(panel) and not panel.get("hx-trigger")


def test_without_htmx_the_test_button_starts_the_test_and_returns_to_the_number(app, admin_client, assigned):
    token = csrf_headers(admin_client)["X-CSRFToken"]
    response = admin_client.post(f"/partials/numbers/{assigned.id}/test", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/numbers/{assigned.id}#tests")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(TestCall)) == 1


def test_a_dry_check_after_hours_expects_the_after_hours_answer_and_says_so(app, assigned, account, admin):
    client = assigned.client
    client.timezone = "America/New_York"
    client.business_hours = {"mon": [["09:00", "17:00"]]}
    db.session.commit()
    # A Tuesday: closed all day, so phoneapp answers with voicemail, and that is right.
    with time_machine.travel(datetime(2026, 11, 24, 12, 0, tzinfo=ZoneInfo("America/New_York")), tick=False):
        test = on_demand.start_test_call(assigned, admin, live=False)
        run_queued_jobs(app)
    test = finished(test.id)
    assert (test.step, test.result) == ("checked", "passed"), test.steps
    assert any(step["detail"] == "After hours: straight to voicemail" for step in test.steps)


def test_a_live_test_follows_failover_and_acceptance_and_says_which_rule_answered(app, assigned, account, admin):
    client = assigned.client
    client.failover_numbers = ["+14155550188"]
    client.whisper, client.require_accept = True, True
    db.session.commit()
    account.set_target_behaviour(client.phone, "voicemail")
    test = on_demand.start_test_call(assigned, admin)
    run_queued_jobs(app)
    test = finished(test.id)
    assert (test.step, test.result) == ("answered", "passed"), test.steps
    assert test.detail == "(415) 555-0188 pressed 1 and answered the forwarded call (rule: failover 2)"
    details = [step["detail"] for step in test.steps]
    assert any(detail.endswith("did not answer; ringing the next number (rule: open)") for detail in details), details


def test_a_live_test_after_hours_ends_at_the_voicemail_the_rules_send_it_to(app, assigned, account, admin):
    client = assigned.client
    client.timezone = "America/New_York"
    client.business_hours = {"mon": [["09:00", "17:00"]]}
    db.session.commit()
    with time_machine.travel(datetime(2026, 11, 24, 12, 0, tzinfo=ZoneInfo("America/New_York")), tick=True):
        test = on_demand.start_test_call(assigned, admin)
        run_queued_jobs(app)
    test = finished(test.id)
    assert (test.step, test.result) == ("voicemail", "passed"), test.steps
    assert test.detail == ("After hours: phoneapp sent the call straight to voicemail with the greeting "
                           "(rule: after-hours)")
