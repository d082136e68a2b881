"""Verification: drift found, reported, fixed with audit rows, and then left alone, for 4 numbers or 120."""

import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import Alert, AuditEvent, Client, PhoneAssignment, utcnow
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.services.assignments import sync_numbers
from phoneapp.services.number_statuses import number_statuses
from phoneapp.services.twilio_account import twilio
from phoneapp.services.verification import verify_number, verify_numbers
from phoneapp.twilio.gateway import TwilioError
from phoneapp.twilio.public_urls import expected_webhooks
from tests.support import fake_twilio
from tests.support.apps import PUBLIC_BASE_URL, make_app


def test_verify_reports_drift_then_fix_repairs_it_once(app, runner, make_client):
    account = SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])
    assert runner.invoke(args=["numbers", "sync"]).exit_code == 0
    assert runner.invoke(args=["numbers", "verify", "--fix"]).exit_code == 0
    first, second, third, _ = account.numbers()
    legacy_client = make_client()
    account.update_number(first["sid"], voice_url="https://old-tracker.example/voice")
    account.update_number(second["sid"], voice_url=f"https://calls.example.test/twilio/client-webhook/{legacy_client.id}")
    account.update_number(third["sid"], voice_application_sid="AP" + "1" * 32)

    result = runner.invoke(args=["numbers", "verify"])
    assert result.exit_code == 1 and "3 differ" in result.output
    states = dict(db.session.execute(sa.select(PhoneAssignment.twilio_sid, PhoneAssignment.config_state)).all())
    assert [states[n["sid"]] for n in (first, second, third)] == ["drift"] * 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Alert).where(
        Alert.kind == "webhook_drift", Alert.resolved_at.is_(None))) == 3

    result = runner.invoke(args=["numbers", "verify", "--fix"])
    assert result.exit_code == 0 and "3 fixed" in result.output, result.output
    for number in account.numbers():
        assert number["voice_url"] == "https://calls.example.test/twilio/voice"
        assert number["voice_fallback_url"] == "https://calls.example.test/twilio/fallback"
        assert not number["voice_application_sid"]
    fixes = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "fix_webhook")).all()
    assert len(fixes) == 4 + 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Alert).where(
        Alert.kind == "webhook_drift", Alert.resolved_at.is_(None))) == 0

    result = runner.invoke(args=["numbers", "verify", "--fix"])
    assert "4 ok, 0 fixed" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "fix_webhook")) == 7


# -- one listing for the whole account, against Twilio's REST API on a real port ------------------

OLD_TRACKER = "https://old-tracker.example/voice"


@pytest.fixture
def fake_server(tmp_path):
    with fake_twilio.running_fake_twilio(tmp_path / "twilio" / "account.json") as fake:
        yield fake


@pytest.fixture
def twilio_requests(fake_server):
    """(method, path) of every request the fake Twilio server receives, in order; clearing it clears them."""
    return RequestLog(fake_server.requests)


class RequestLog:
    def __init__(self, seen):
        self.seen = seen

    def clear(self):
        self.seen.clear()

    def __iter__(self):
        return iter([(method, path) for method, path, _ in list(self.seen)])


@pytest.fixture
def fake_account(tmp_path, migrated_postgres, fake_server):
    """(app, account): an app using Twilio credentials against a fake Twilio on a local port."""
    app = make_app(tmp_path, TWILIO_ACCOUNT_SID=fake_server.account_sid, TWILIO_AUTH_TOKEN=fake_server.auth_token,
                   TWILIO_API_BASE_URL=fake_server.base_url)
    with app.app_context():
        yield app, fake_server.account
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def drifted(fake_account):
    """120 numbers tracked by phoneapp: 111 pointed at it, 7 pointed elsewhere, 2 on the per-client URL."""
    app, account = fake_account
    expected = expected_webhooks()
    account.add_numbers([dict(phone_number=f"+1415556{i:04d}", **expected) for i in range(116)])
    for number in account.numbers()[:4]:
        account.update_number(number["sid"], **expected)
    sync_numbers(page_size=200)
    legacy = Client(name="Legacy Roofing", phone="+14155550187")
    db.session.add(legacy)
    db.session.commit()
    numbers = account.numbers()
    elsewhere = [(OLD_TRACKER, "", None)] * 5 + [(expected["voice_url"], "AP" + "1" * 32, None),
                                                 (expected["voice_url"], "", "TK" + "2" * 32)]
    for number, (voice_url, application, trunk) in zip(numbers[10:17], elsewhere, strict=True):
        account.update_number(number["sid"], voice_url=voice_url, voice_application_sid=application, trunk_sid=trunk)
    for number in numbers[40:42]:
        account.update_number(number["sid"], voice_url=f"{PUBLIC_BASE_URL}/twilio/client-webhook/{legacy.id}")
    drifted_sids = {n["sid"] for n in numbers[10:17] + numbers[40:42]}
    return app, account, drifted_sids


def count_where(model, *conditions):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*conditions))


def test_one_fixing_run_repairs_every_drifted_number_and_a_second_run_changes_nothing(drifted, twilio_requests):
    app, account, drifted_sids = drifted
    assert len(account.numbers()) == 120
    queued = utcnow()
    db.session.execute(sa.update(PhoneAssignment).values(verify_queued_at=queued))
    db.session.commit()
    twilio_requests.clear()

    counts = verify_numbers(twilio(), fix=True, page_size=50)

    assert counts == {"ok": 111, "fixed": 9, "drift": 0, "missing": 0, "error": 0}
    fixes = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "fix_webhook")).all()
    fixed_ids = {event.subject_id for event in fixes}
    assert len(fixes) == 9 and {db.session.get(PhoneAssignment, i).twilio_sid for i in fixed_ids} == drifted_sids
    assert all(event.actor_label == "system" for event in fixes)
    legacy_url = f"{PUBLIC_BASE_URL}/twilio/client-webhook/{db.session.scalar(sa.select(Client.id))}"
    assert sorted(event.before["voice_url"] for event in fixes) == sorted(
        [OLD_TRACKER] * 5 + [f"{PUBLIC_BASE_URL}/twilio/voice"] * 2 + [legacy_url] * 2)
    for number in account.numbers():
        assert number["voice_url"] == f"{PUBLIC_BASE_URL}/twilio/voice"
        assert number["voice_fallback_url"] == f"{PUBLIC_BASE_URL}/twilio/fallback"
        assert number["status_callback"] == f"{PUBLIC_BASE_URL}/twilio/status"
        assert not number["voice_application_sid"] and not number["trunk_sid"]
    requests = list(twilio_requests)
    lists = [path for method, path in requests if method == "GET" and "IncomingPhoneNumbers.json" in path]
    updates = [path for method, path in requests if method == "POST"]
    assert len(lists) == 3 and len(requests) == 3 + 9  # three pages of 50, then one update per drifted number
    assert {path.rsplit("/", 1)[1].removesuffix(".json") for path in updates} == drifted_sids
    numbers = db.session.scalars(sa.select(PhoneAssignment)).all()
    assert all(n.verify_queued_at is None and n.last_verified_at >= queued and n.config_state == "ok"
               for n in numbers)

    twilio_requests.clear()
    assert verify_numbers(twilio(), fix=True, page_size=50) == {"ok": 120, "fixed": 0, "drift": 0, "missing": 0,
                                                                  "error": 0}
    assert count_where(AuditEvent, AuditEvent.action == "fix_webhook") == 9
    assert [method for method, _ in twilio_requests] == ["GET"] * 3


def test_without_fixing_the_drifted_numbers_turn_red_and_twilio_is_left_alone(drifted, twilio_requests):
    app, account, drifted_sids = drifted
    before = account.numbers()
    twilio_requests.clear()

    counts = verify_numbers(twilio(), fix=False, page_size=50)

    assert counts == {"ok": 111, "fixed": 0, "drift": 9, "missing": 0, "error": 0}
    assert account.numbers() == before
    assert {method for method, _ in twilio_requests} == {"GET"}
    assert count_where(AuditEvent, AuditEvent.action == "fix_webhook") == 0
    alerts = db.session.scalars(sa.select(Alert).where(Alert.kind == "webhook_drift",
                                                       Alert.resolved_at.is_(None))).all()
    assert {alert.phone_assignment.twilio_sid for alert in alerts} == drifted_sids
    numbers = db.session.scalars(sa.select(PhoneAssignment)).all()
    statuses = number_statuses(numbers)
    red = {n.twilio_sid: statuses[n.id].reason for n in numbers if statuses[n.id].colour == "red"}
    assert set(red) == drifted_sids
    legacy_reasons = [reason for reason in red.values() if "client-webhook" in reason]
    assert len(legacy_reasons) == 2 and all(r.startswith("Twilio's configuration differs") for r in legacy_reasons)
    assert sum("TwiML app" in reason for reason in red.values()) == 1
    assert sum("SIP trunk" in reason for reason in red.values()) == 1

    # Fixing later closes every drift alert.
    assert verify_numbers(twilio(), fix=True, page_size=50)["fixed"] == 9
    assert count_where(Alert, Alert.kind == "webhook_drift", Alert.resolved_at.is_(None)) == 0


def test_a_number_gone_from_the_listing_is_missing_and_alerted(fake_account):
    app, account = fake_account
    sync_numbers()
    gone = account.numbers()[1]
    account.remove_number(gone["sid"])

    counts = verify_numbers(twilio(), fix=True)

    assert counts["missing"] == 1 and counts["fixed"] == 3
    number = db.session.scalar(sa.select(PhoneAssignment).where(PhoneAssignment.twilio_sid == gone["sid"]))
    assert number.config_state == "missing" and number_statuses([number])[number.id].colour == "red"
    assert count_where(Alert, Alert.kind == "number_missing", Alert.resolved_at.is_(None),
                       Alert.phone_assignment_id == number.id) == 1
    assert count_where(AuditEvent, AuditEvent.action == "fix_webhook") == 3


def test_a_failed_listing_raises_and_marks_nothing(tmp_path, migrated_postgres):
    app = make_app(tmp_path, **fake_twilio.unreachable_twilio())
    with app.app_context():
        try:
            queued = utcnow()
            number = PhoneAssignment(twilio_sid="PN" + "a" * 32, phone_number="+14155550177", config_state="ok",
                                     verify_queued_at=queued, last_verified_at=queued)
            db.session.add(number)
            db.session.commit()
            with pytest.raises(TwilioError):
                verify_numbers(twilio(), fix=True)
            db.session.rollback()
            number = db.session.get(PhoneAssignment, number.id)
            assert (number.config_state, number.verify_queued_at, number.last_verified_at) == ("ok", queued, queued)
            assert count_where(Alert) == 0
        finally:
            db.session.remove()
            db.engine.dispose()


def test_a_single_check_clears_the_queued_mark(app, sandbox_numbers):
    number = sandbox_numbers[0]
    number.verify_queued_at = utcnow()
    db.session.commit()
    assert verify_number(number, twilio(), fix=True) == "fixed"
    db.session.commit()
    assert number.verify_queued_at is None and number.last_verified_at is not None
    number.verify_queued_at = utcnow()
    assert verify_number(number, twilio(), fix=False) == "ok"
    assert number.verify_queued_at is None
