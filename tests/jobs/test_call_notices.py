"""Per-call notices (SPEC §10): a client's missed, voicemail and answered calls reach its addresses and phones
once, whichever worker sends them, through the worker's chores, with retries and a link to the call's page."""
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from phoneapp.domain.call_status import outcome_of
from phoneapp.domain.phones import display_phone
from phoneapp.extensions import db
from phoneapp.jobs.scheduler import Scheduler
from phoneapp.models import CallNotice, CallRecord, PhoneAssignment, utcnow
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.services import assignments
from phoneapp.services.block_list_changes import add_blocked_number
from phoneapp.services.call_notices import MAX_ATTEMPTS, notices_for_call, send_due_call_notices
from phoneapp.services.call_settlement import SETTLE_WAIT, settle_calls
from phoneapp.services.simulator import place_simulated_call
from tests.support.mail import Inbox, start_smtp

OWNER, FRONT_DESK = "owner@acme.test", "desk@acme.test"
CALLER = "+14155550100"
OWNERS_MOBILE = "+14155550166"


@pytest.fixture
def notify_app(app, smtp_port):
    """The app, mailing through the local SMTP server on smtp_port; no admin alerts to get in the way."""
    app.config.update(SMTP_URL=f"smtp://127.0.0.1:{smtp_port}", ALERT_EMAILS=[], ALERT_SMS_NUMBERS=[])
    return app


@pytest.fixture
def acme_number(notify_app, make_client):
    """A sandbox number of Acme Plumbing, whose owner and front desk are e-mailed about missed calls."""
    assignments.sync_numbers()
    number = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).first()
    client = make_client(name="Acme Plumbing", timezone="America/New_York", notify_emails=[OWNER, FRONT_DESK],
                         notify_on=["missed"])
    assignments.upsert_assignment({"twilio_sid": number.twilio_sid, "client_id": client.id})
    return number


def call(number, outcome):
    """A sandbox call through phoneapp's real, signed webhook routes; returns its record."""
    placed = place_simulated_call(number.phone_number, from_number=CALLER, outcome=outcome, background=False, pace=0)
    assert all(request.ok for request in placed.requests), [(r.url, r.status, r.error) for r in placed.requests]
    db.session.expire_all()
    return db.session.scalars(sa.select(CallRecord).where(CallRecord.twilio_call_sid == placed.call_sid)).one()


def settled_later():
    """Settle as a worker would once a missed call has waited for a voicemail that never came (the sandbox's
    callbacks carry the simulated call's own clock, which runs ahead by the seconds it rang)."""
    return settle_calls(now=utcnow() + SETTLE_WAIT + timedelta(minutes=5))


def notices():
    db.session.expire_all()
    return db.session.scalars(sa.select(CallNotice).order_by(CallNotice.id)).all()


def texts(app):
    return SandboxAccount.open(app.config["SANDBOX_STATE_PATH"]).messages()


def run_workers(app, count=2):
    """`count` workers settling calls and doing their chores at the same moment, as every worker does each second."""
    start = threading.Barrier(count)
    errors = []

    def worker(name):
        try:
            with app.app_context():
                start.wait()
                settled_later()
                Scheduler(app, name, "test").housekeeping()
                db.session.remove()
        except Exception as exc:  # surfaced below; a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"worker-{n}",)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


def test_a_missed_call_mails_each_address_once_with_a_link_to_the_call_however_many_workers_run(
        notify_app, inbox, acme_number):
    record = call(acme_number, "canceled")
    # Too soon: a missed call waits for the voicemail a caller may still be leaving.
    assert settle_calls() == 0 and notices() == []

    run_workers(notify_app)
    run_workers(notify_app)

    for address in (OWNER, FRONT_DESK):
        assert len(inbox.received_by(address)) == 1, inbox.subjects()
    assert len(inbox.messages) == 2
    message = inbox.received_by(OWNER)[0]
    assert message["Subject"] == "Missed call for Acme Plumbing from (415) 555-0100"
    assert message["To"] == OWNER
    body = message.get_content()
    assert f"https://calls.example.test/calls/{record.id}" in body
    assert "Caller:          (415) 555-0100" in body
    assert f"Tracking number: {display_phone(acme_number.phone_number)} (Sandbox line 1)" in body
    assert "EST" in body or "EDT" in body  # the client's own time zone
    assert [(n.event, n.channel, n.recipient, n.state, n.attempts) for n in notices_for_call(record.id)] == [
        ("missed", "email", OWNER, "delivered", 1), ("missed", "email", FRONT_DESK, "delivered", 1)]


def test_smtp_down_then_up_is_retried_later_and_sent_once(notify_app, smtp_port, acme_number):
    call(acme_number, "canceled")
    assert settled_later() == 1

    assert send_due_call_notices() == 0
    first = notices()[0]
    assert (first.state, first.attempts) == ("pending", 1)
    assert f"e-mail via 127.0.0.1:{smtp_port} failed" in first.detail and "retrying in 30 s" in first.detail
    # Straight away is too soon: an outage of a few seconds must not use up the attempts.
    assert send_due_call_notices() == 0
    assert notices()[0].attempts == 1

    inbox = Inbox()
    controller = start_smtp(smtp_port, inbox)
    try:
        later = utcnow() + timedelta(seconds=31)
        assert send_due_call_notices(now=later) == 2
        assert send_due_call_notices(now=later + timedelta(minutes=5)) == 0
    finally:
        controller.stop()
    assert sorted(address for recipients, _ in inbox.messages for address in recipients) == [FRONT_DESK, OWNER]
    assert {(n.state, n.attempts) for n in notices()} == {("delivered", 2)}


def test_after_the_last_attempt_the_notice_is_failed_with_the_reason(notify_app, smtp_port, acme_number):
    call(acme_number, "canceled")
    settled_later()
    moment = utcnow()
    for _ in range(MAX_ATTEMPTS + 2):
        send_due_call_notices(now=moment)
        moment += timedelta(hours=3)

    for notice in notices():
        assert (notice.state, notice.attempts) == ("failed", MAX_ATTEMPTS)
        assert notice.detail.startswith(f"gave up after {MAX_ATTEMPTS} attempts: e-mail via 127.0.0.1:{smtp_port}")
    inbox = Inbox()
    controller = start_smtp(smtp_port, inbox)
    try:
        assert send_due_call_notices(now=moment + timedelta(days=1)) == 0
    finally:
        controller.stop()
    assert inbox.messages == []


def test_an_address_the_server_refuses_fails_at_once_and_the_others_still_go(notify_app, smtp_port, acme_number):
    inbox = Inbox(refuse={FRONT_DESK})
    controller = start_smtp(smtp_port, inbox)
    try:
        call(acme_number, "canceled")
        settled_later()
        assert send_due_call_notices() == 1
    finally:
        controller.stop()
    assert len(inbox.received_by(OWNER)) == 1
    refused = [notice for notice in notices() if notice.recipient == FRONT_DESK][0]
    assert (refused.state, refused.detail) == ("failed", f"gave up after 1 attempt: refused by 127.0.0.1:{smtp_port} "
                                                         "(550)")


def test_a_voicemail_is_told_only_when_the_client_asks_for_voicemails(notify_app, inbox, acme_number):
    call(acme_number, "busy")  # the caller leaves a voicemail
    assert settle_calls() == 1  # a voicemail is final at once
    send_due_call_notices()
    assert notices() == [] and inbox.messages == []

    client = acme_number.client
    client.notify_on = ["missed", "voicemail"]
    db.session.commit()
    record = call(acme_number, "busy")
    assert settle_calls() == 1
    assert send_due_call_notices() == 2

    message = inbox.received_by(OWNER)[0]
    assert message["Subject"] == "Voicemail for Acme Plumbing from (415) 555-0100"
    body = message.get_content()
    assert f"Voicemail:       0:{record.voicemail_duration:02d}" in body
    assert f"https://calls.example.test/calls/{record.id}" in body


def test_texts_go_through_twilios_messages_api_once(notify_app, inbox, acme_number):
    client = acme_number.client
    client.notify_emails, client.notify_sms, client.notify_on = None, [OWNERS_MOBILE], ["answered"]
    db.session.commit()
    record = call(acme_number, "answered")

    run_workers(notify_app)
    run_workers(notify_app)

    sent = texts(notify_app)
    assert [(m["to"], m["from"]) for m in sent] == [(OWNERS_MOBILE, notify_app.config["TEST_CALLER_ID"])]
    assert sent[0]["body"].startswith("Answered call for Acme Plumbing from (415) 555-0100")
    assert sent[0]["body"].endswith(f" https://calls.example.test/calls/{record.id}")
    assert inbox.messages == []
    assert [(n.channel, n.state) for n in notices()] == [("sms", "delivered")]


def test_an_answered_call_says_who_answered(notify_app, inbox, acme_number):
    acme_number.client.notify_on = ["answered"]
    db.session.commit()
    call(acme_number, "answered")
    settle_calls()
    send_due_call_notices()

    body = inbox.received_by(OWNER)[0].get_content()
    assert "Answered by:     (415) 555-0187" in body
    assert "Duration:        " in body


def test_blocked_and_test_calls_tell_nobody(notify_app, inbox, acme_number):
    acme_number.client.notify_on = ["missed", "voicemail", "answered"]
    db.session.commit()
    add_blocked_number(CALLER)
    assert outcome_of(call(acme_number, "answered")) == "blocked"
    settled_later()
    assert send_due_call_notices() == 0
    assert notices() == [] and inbox.messages == []


def test_a_claim_left_by_a_dead_worker_is_taken_over(notify_app, inbox, acme_number):
    call(acme_number, "canceled")
    settled_later()
    owner, desk = notices()
    now = utcnow()
    # The owner's notice was claimed a moment ago by a worker still sending; the desk's by one that died long ago.
    db.session.execute(sa.update(CallNotice).where(CallNotice.id == owner.id).values(claimed_at=now))
    db.session.execute(sa.update(CallNotice).where(CallNotice.id == desk.id)
                       .values(claimed_at=now - timedelta(minutes=10)))
    db.session.commit()

    assert send_due_call_notices() == 1

    assert [recipients for recipients, _ in inbox.messages] == [[FRONT_DESK]]
    assert {n.recipient: n.state for n in notices()} == {OWNER: "pending", FRONT_DESK: "delivered"}
