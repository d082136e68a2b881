"""Error alerts reach admins by e-mail and SMS once when they open and once when resolved (SPEC §6)."""
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import AuthResult

from phoneapp.extensions import db
from phoneapp.models import Alert, utcnow
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.services.alerts import raise_alert, resolve_alerts
from phoneapp.services.notifications import MAX_ATTEMPTS, send_pending_notifications
from tests.support.apps import make_app
from tests.support.mail import Inbox, start_smtp

ADMINS = ("ops@example.test", "owner@example.test")
ON_CALL = "+14155550177"
SMTP_USER, SMTP_PASSWORD = "mailer", "s3cret-smtp-pass"


def check_login(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok)


@pytest.fixture
def notify_app(app, smtp_port):
    """The app, set to mail both admins through the local SMTP server on smtp_port and text the on-call phone."""
    app.config.update(SMTP_URL=f"smtp://127.0.0.1:{smtp_port}", ALERT_EMAILS=list(ADMINS), ALERT_SMS_NUMBERS=[ON_CALL])
    return app


def texts(app):
    return SandboxAccount.open(app.config["SANDBOX_STATE_PATH"]).messages()


def raise_error(subject="number:1", message="+14155550101: voice URL is https://elsewhere.example/voice",
                severity="error", number=None):
    raise_alert("webhook_drift", subject, message, severity=severity,
                phone_assignment_id=number.id if number is not None else None)
    db.session.commit()


def the_alert(subject="number:1"):
    db.session.expire_all()
    return db.session.scalars(sa.select(Alert).where(Alert.subject == subject).order_by(Alert.id.desc())).first()


def test_error_alert_mails_each_admin_once_and_its_resolution_once(notify_app, inbox, make_client, make_number):
    number = make_number(phone_number="+14155550101", client=make_client(name="Bay Plumbing"))
    raise_error(number=number)

    assert send_pending_notifications() == 1
    for address in ADMINS:
        assert len(inbox.received_by(address)) == 1
    message = inbox.messages[0][1]
    assert message["Subject"] == "[phoneapp] Error: +14155550101: voice URL is https://elsewhere.example/voice"
    assert message["From"] == "phoneapp@calls.example.test"
    assert message["Auto-Submitted"] == "auto-generated"
    body = message.get_content()
    assert "(415) 555-0101 (Bay Plumbing)" in body
    assert "Occurrences: 1" in body
    assert "https://calls.example.test/alerts" in body

    for _ in range(3):
        raise_error(number=number)
    assert send_pending_notifications() == 0
    assert len(inbox.messages) == 1
    assert the_alert().occurrences == 4

    resolve_alerts("webhook_drift", "number:1")
    db.session.commit()
    assert send_pending_notifications() == 1
    assert send_pending_notifications() == 0
    for address in ADMINS:
        subjects = [m["Subject"] for m in inbox.received_by(address)]
        assert subjects == ["[phoneapp] Error: +14155550101: voice URL is https://elsewhere.example/voice",
                            "[phoneapp] Resolved: +14155550101: voice URL is https://elsewhere.example/voice"]
    assert "Occurrences: 4" in inbox.messages[1][1].get_content()
    alert = the_alert()
    assert alert.notified_open_at is not None and alert.notified_resolved_at is not None
    assert alert.notify_detail == "e-mailed 2 addresses; texted 1 number"


def test_subject_names_the_number_when_the_message_does_not(notify_app, inbox, make_number):
    number = make_number(phone_number="+14155550123")
    raise_error(message="forwarded calls keep failing", number=number)

    send_pending_notifications()

    assert inbox.subjects() == ["[phoneapp] Error: (415) 555-0123: forwarded calls keep failing"]


def test_warnings_and_info_send_nothing(notify_app, inbox):
    raise_error("number:1", severity="warning")
    raise_error("number:2", severity="info")

    assert send_pending_notifications() == 0
    assert inbox.messages == []
    assert texts(notify_app) == []
    resolve_alerts("webhook_drift", "number:1")
    db.session.commit()
    assert send_pending_notifications() == 0
    assert inbox.messages == []


def test_sms_reaches_the_on_call_phone_once_per_notice(notify_app, inbox):
    raise_error()

    send_pending_notifications()
    raise_error()
    send_pending_notifications()

    sent = texts(notify_app)
    assert [(m["to"], m["from"]) for m in sent] == [(ON_CALL, notify_app.config["TEST_CALLER_ID"])]
    assert sent[0]["body"].startswith("phoneapp Error: +14155550101: voice URL is")
    assert sent[0]["body"].endswith("https://calls.example.test/alerts")

    resolve_alerts("webhook_drift", "number:1")
    db.session.commit()
    send_pending_notifications()
    send_pending_notifications()
    assert [m["body"].split(":")[0] for m in texts(notify_app)] == ["phoneapp Error", "phoneapp Resolved"]


def test_sms_goes_from_alert_sms_from_when_set(tmp_path, migrated_postgres):
    app = make_app(tmp_path, ALERT_SMS_NUMBERS=ON_CALL, ALERT_SMS_FROM="+14155550102")
    with app.app_context():
        raise_error()
        assert send_pending_notifications() == 1
        assert [(m["to"], m["from"]) for m in texts(app)] == [(ON_CALL, "+14155550102")]
        db.session.remove()


def test_alert_resolved_before_any_notice_sends_one_combined_notice(notify_app, inbox):
    raise_error()
    resolve_alerts("webhook_drift", "number:1")
    db.session.commit()

    assert send_pending_notifications() == 1
    assert send_pending_notifications() == 0

    assert inbox.subjects() == ["[phoneapp] Resolved: +14155550101: voice URL is https://elsewhere.example/voice"]
    assert "resolved before a notice about it went out" in inbox.messages[0][1].get_content()
    assert len(texts(notify_app)) == 1


def test_smtp_down_records_the_failure_and_a_later_call_sends_once(notify_app, smtp_port):
    notify_app.config["ALERT_SMS_NUMBERS"] = []
    raise_error()

    assert send_pending_notifications() == 0
    alert = the_alert()
    assert alert.notify_attempts == 1
    assert alert.notified_open_at is None
    assert f"e-mail via 127.0.0.1:{smtp_port} failed" in alert.notify_detail
    assert "retrying in 30 s" in alert.notify_detail

    # Straight away is too soon: an outage of a few seconds must not use up the attempts.
    assert send_pending_notifications() == 0
    assert the_alert().notify_attempts == 1

    inbox = Inbox()
    controller = start_smtp(smtp_port, inbox)
    try:
        later = utcnow() + timedelta(seconds=31)
        assert send_pending_notifications(now=later) == 1
        assert send_pending_notifications(now=later + timedelta(seconds=1)) == 0
    finally:
        controller.stop()
    for address in ADMINS:
        assert len(inbox.received_by(address)) == 1
    alert = the_alert()
    assert alert.notified_open_at is not None
    assert alert.notify_attempts == 0
    assert alert.notify_detail == "e-mailed 2 addresses"


def test_gives_up_after_five_failed_attempts(notify_app, smtp_port):
    notify_app.config["ALERT_SMS_NUMBERS"] = []
    raise_error()
    moment = utcnow()

    for _ in range(MAX_ATTEMPTS + 2):
        send_pending_notifications(now=moment)
        moment += timedelta(hours=1)

    alert = the_alert()
    assert alert.notify_attempts == MAX_ATTEMPTS
    assert alert.notify_detail.startswith(f"gave up after {MAX_ATTEMPTS} attempts: e-mail via 127.0.0.1")
    inbox = Inbox()
    controller = start_smtp(smtp_port, inbox)
    try:
        assert send_pending_notifications(now=moment + timedelta(days=1)) == 0
    finally:
        controller.stop()
    assert inbox.messages == []


def test_a_refused_address_does_not_stop_the_others(notify_app, smtp_port):
    notify_app.config["ALERT_SMS_NUMBERS"] = []
    inbox = Inbox(refuse={ADMINS[1]})
    controller = start_smtp(smtp_port, inbox)
    try:
        raise_error()
        assert send_pending_notifications() == 1
        assert send_pending_notifications() == 0
    finally:
        controller.stop()
    assert len(inbox.received_by(ADMINS[0])) == 1
    assert the_alert().notify_detail == f"e-mailed 1 address; refused by 127.0.0.1:{smtp_port}: {ADMINS[1]} (550)"


# A local test server has no certificate; plain-text AUTH is what it can offer.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_login_works_and_the_password_never_shows(tmp_path, migrated_postgres, smtp_port):
    app = make_app(tmp_path, SMTP_URL=f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{smtp_port}",
                   ALERT_EMAILS=ADMINS[0], ALERT_EMAIL_FROM="alerts@agency.example")
    with app.app_context():
        raise_error()
        assert send_pending_notifications() == 0  # nobody listening yet
        assert SMTP_PASSWORD not in the_alert().notify_detail

        inbox = Inbox()
        controller = start_smtp(smtp_port, inbox, authenticator=check_login, auth_require_tls=False,
                                auth_required=True)
        try:
            assert send_pending_notifications(now=utcnow() + timedelta(minutes=1)) == 1
        finally:
            controller.stop()
        message = inbox.received_by(ADMINS[0])[0]
        assert message["From"] == "alerts@agency.example"
        assert SMTP_PASSWORD not in message.as_string()
        db.session.remove()


def test_no_recipients_marks_the_notice_done_so_adding_them_later_does_not_flood(app, inbox, smtp_port):
    raise_error()

    assert send_pending_notifications() == 0
    alert = the_alert()
    assert alert.notified_open_at is not None
    assert alert.notify_detail == "no recipients configured"

    app.config.update(SMTP_URL=f"smtp://127.0.0.1:{smtp_port}", ALERT_EMAILS=list(ADMINS))
    assert send_pending_notifications() == 0
    assert inbox.messages == []
    resolve_alerts("webhook_drift", "number:1")
    db.session.commit()
    assert send_pending_notifications() == 1
    assert inbox.subjects() == ["[phoneapp] Resolved: +14155550101: voice URL is https://elsewhere.example/voice"]


def test_a_claim_left_by_a_dead_worker_is_taken_over(notify_app, inbox):
    raise_error("number:1")
    raise_error("number:2")
    now = utcnow()
    # number:1 was claimed a moment ago by a worker still sending; number:2 by one that died long ago.
    db.session.execute(sa.update(Alert).where(Alert.subject == "number:1").values(notify_claimed_at=now))
    db.session.execute(sa.update(Alert).where(Alert.subject == "number:2")
                       .values(notify_claimed_at=now - timedelta(minutes=10)))
    db.session.commit()

    assert send_pending_notifications() == 1

    assert len(inbox.messages) == 1
    assert the_alert("number:2").notified_open_at is not None
    assert the_alert("number:1").notified_open_at is None


def test_concurrent_workers_send_each_notice_once(notify_app, inbox):
    notify_app.config["ALERT_SMS_NUMBERS"] = []
    subjects = [f"number:{n}" for n in range(1, 7)]
    for subject in subjects:
        raise_error(subject, message=f"problem with {subject}")

    def run_workers(count=4):
        start = threading.Barrier(count)
        sent, errors = [], []

        def worker():
            try:
                with notify_app.app_context():
                    start.wait()
                    sent.append(send_pending_notifications())
                    db.session.remove()
            except Exception as exc:  # surfaced below; a thread's exception is otherwise lost
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        return sum(sent)

    assert run_workers() == len(subjects)
    for subject in subjects:
        resolve_alerts("webhook_drift", subject)
    db.session.commit()
    assert run_workers() == len(subjects)

    for address in ADMINS:
        received = sorted(message["Subject"] for message in inbox.received_by(address))
        expected = sorted([f"[phoneapp] Error: problem with {s}" for s in subjects]
                          + [f"[phoneapp] Resolved: problem with {s}" for s in subjects])
        assert received == expected
