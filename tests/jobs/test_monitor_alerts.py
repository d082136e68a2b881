"""Twilio Monitor alerts become one open Alert per number, each counted once, and turn the number red."""
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import Alert, ImportedMonitorAlert
from phoneapp.sandbox.account import SandboxAccount, iso8601, new_sid
from phoneapp.services.monitor_alerts import import_monitor_alerts, is_webhook_error
from phoneapp.services.twilio_account import twilio
from phoneapp.twilio.gateway import TwilioError
from tests.support import fake_twilio
from tests.support.apps import PUBLIC_BASE_URL, make_app
from tests.support.pages import card, soup, text_of

VOICE_URL = f"{PUBLIC_BASE_URL}/twilio/voice"


@pytest.fixture
def account(app):
    return SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])


def ring(signed_post, number, call_sid):
    """A call to `number` reaching phoneapp's voice webhook, as Twilio would send it."""
    response = signed_post("/twilio/voice", {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32,
                                             "From": "+14155550100", "To": number.phone_number,
                                             "CallStatus": "ringing"})
    assert response.status_code == 200


def webhook_failure(account, call_sid, *, url=VOICE_URL, message="Connection refused & no answer: 100% lost"):
    return account.add_alert(11200, request_url=url, resource_sid=call_sid, http_response=502, message=message)


def open_webhook_alerts():
    return db.session.scalars(sa.select(Alert).where(Alert.kind == "twilio_webhook_error",
                                                     Alert.resolved_at.is_(None))
                              .order_by(Alert.phone_assignment_id)).all()


def test_failures_on_calls_to_two_numbers_become_one_alert_per_number_counted_once(
        app, account, sandbox_numbers, signed_post):
    first, second = sandbox_numbers[:2]
    calls = {sid: number for sid, number in (("CA" + "1" * 32, first), ("CA" + "2" * 32, first),
                                             ("CA" + "3" * 32, second))}
    for sid, number in calls.items():
        ring(signed_post, number, sid)
    for sid in ("CA" + "1" * 32, "CA" + "2" * 32, "CA" + "2" * 32, "CA" + "3" * 32, "CA" + "3" * 32):
        webhook_failure(account, sid)

    assert import_monitor_alerts(twilio()) == {"seen": 5, "imported": 5, "skipped": 0}

    alerts = open_webhook_alerts()
    assert [(a.phone_assignment_id, a.subject, a.occurrences, a.severity) for a in alerts] == [
        (first.id, f"number:{first.id}", 3, "error"), (second.id, f"number:{second.id}", 2, "error")]
    message = alerts[0].message
    assert "11200" in message and VOICE_URL in message and "HTTP 502" in message
    # alert_text arrives URL-encoded; staff read what Twilio said.
    assert "Connection refused & no answer: 100% lost" in message
    assert "(415) 555-0101" in message

    assert import_monitor_alerts(twilio()) == {"seen": 5, "imported": 0, "skipped": 5}
    assert [a.occurrences for a in open_webhook_alerts()] == [3, 2]

    webhook_failure(account, "CA" + "3" * 32, message="Read timed out")
    assert import_monitor_alerts(twilio())["imported"] == 1
    alerts = open_webhook_alerts()
    assert [a.occurrences for a in alerts] == [3, 3] and "Read timed out" in alerts[1].message
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportedMonitorAlert)) == 6


def test_an_alert_for_a_call_phoneapp_never_saw_is_tied_to_its_number_through_twilio(app, account, sandbox_numbers):
    third, fourth = sandbox_numbers[2:4]
    unseen = account.record_call({"direction": "inbound", "from": "+14155550100", "to": third.phone_number,
                                  "status": "completed", "parent_call_sid": None})
    parent = account.record_call({"direction": "inbound", "from": "+14155550100", "to": fourth.phone_number,
                                  "status": "completed", "parent_call_sid": None})
    # The forwarded leg rang the client's phone; only its parent rang the tracking number.
    leg = account.record_call({"direction": "outbound-dial", "from": "+14155550100", "to": "+14155550187",
                               "status": "failed", "parent_call_sid": parent["sid"]})
    webhook_failure(account, unseen["sid"])
    account.add_alert(13224, request_url=VOICE_URL, resource_sid=leg["sid"], message="Dial: Invalid phone number")

    assert import_monitor_alerts(twilio())["imported"] == 2

    by_number = {a.phone_assignment_id: a for a in open_webhook_alerts()}
    assert set(by_number) == {third.id, fourth.id}
    assert "13224" in by_number[fourth.id].message and "Dial: Invalid phone number" in by_number[fourth.id].message
    assert db.session.scalars(sa.select(ImportedMonitorAlert.phone_assignment_id)
                              .order_by(ImportedMonitorAlert.id)).all() == [third.id, fourth.id]


def test_an_alert_no_number_can_be_found_for_is_one_account_alert(app, account, sandbox_numbers, make_client):
    for _ in range(2):
        webhook_failure(account, new_sid("CA"), url=f"{PUBLIC_BASE_URL}/twilio/status")
    account.add_alert(30003, resource_sid=new_sid("SM"), message="Unreachable destination handset")

    assert import_monitor_alerts(twilio()) == {"seen": 3, "imported": 2, "skipped": 1}

    [alert] = open_webhook_alerts()
    assert (alert.subject, alert.phone_assignment_id, alert.occurrences) == ("account", None, 2)
    assert "no tracking number" in alert.message and f"{PUBLIC_BASE_URL}/twilio/status" in alert.message
    # The SMS error is no webhook's fault, but it is remembered, so it is never read as new again.
    assert import_monitor_alerts(twilio()) == {"seen": 3, "imported": 0, "skipped": 3}


def test_an_alert_on_the_older_per_client_url_finds_the_clients_only_number(app, account, sandbox_numbers,
                                                                             make_client):
    client = make_client()
    number = sandbox_numbers[1]
    number.client_id = client.id
    db.session.commit()
    webhook_failure(account, new_sid("CA"), url=f"{PUBLIC_BASE_URL}/twilio/client-webhook/{client.id}")

    import_monitor_alerts(twilio())

    [alert] = open_webhook_alerts()
    assert alert.phone_assignment_id == number.id and "client-webhook" in alert.message


def test_the_number_turns_red_with_twilios_reason(admin_client, account, assigned, signed_post, request_context):
    def dot():
        found = card(soup(admin_client.get(url_for("numbers.numbers"))), assigned)
        badge = found.find(class_="status")
        return [name for name in badge["class"] if name != "status"], text_of(found.find(class_="status-line"))

    assert dot()[0] == ["status-green"]
    ring(signed_post, assigned, "CA" + "7" * 32)
    webhook_failure(account, "CA" + "7" * 32, message="Upstream returned 502 Bad Gateway")

    import_monitor_alerts(twilio())

    classes, reason = dot()
    assert classes == ["status-red"]
    assert "11200" in reason and "Upstream returned 502 Bad Gateway" in reason


def test_concurrent_imports_count_each_alert_once(app, account, sandbox_numbers, signed_post):
    number = sandbox_numbers[0]
    ring(signed_post, number, "CA" + "4" * 32)
    for _ in range(6):
        webhook_failure(account, "CA" + "4" * 32)
    results, start = [], threading.Barrier(2)

    def run():
        with app.app_context():
            start.wait()
            results.append(import_monitor_alerts(twilio()))
            db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sum(result["imported"] for result in results) == 6 and len(results) == 2
    db.session.expire_all()
    [alert] = open_webhook_alerts()
    assert alert.occurrences == 6


def test_when_twilio_cannot_be_asked_nothing_is_written(tmp_path, migrated_postgres):
    app = make_app(tmp_path, **fake_twilio.unreachable_twilio())
    with app.app_context():
        try:
            with pytest.raises(TwilioError):
                import_monitor_alerts(twilio())
            assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportedMonitorAlert)) == 0
        finally:
            db.session.remove()
            db.engine.dispose()


@pytest.mark.parametrize("code, webhook", [("11200", True), ("11205", True), ("11100", True), ("12100", True),
                                           ("12300", True), ("13224", True), ("15003", True), ("11750", True),
                                           ("12200", False), ("30003", False), ("21211", False), ("", False),
                                           (None, False)])
def test_which_twilio_errors_are_webhook_errors(code, webhook):
    assert is_webhook_error(code) is webhook


def backdate(account, alert, **ago):
    """Give a stored Monitor alert an earlier creation time, as if Twilio had filed it then."""
    state = json.loads(account.path.read_text())
    moment = iso8601(datetime.now(UTC) - timedelta(**ago))
    for stored in state["alerts"]:
        if stored["sid"] == alert["sid"]:
            stored["date_created"] = stored["date_generated"] = moment
    account.path.write_text(json.dumps(state))


def test_reads_a_day_back_at_first_then_from_the_newest_alert_it_kept(app, account, sandbox_numbers, signed_post):
    ring(signed_post, sandbox_numbers[0], "CA" + "5" * 32)
    # The call was days ago; the failures below came after it (a later call would close their alert).
    sandbox_numbers[0].last_call_at = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=3)
    db.session.commit()
    backdate(account, webhook_failure(account, "CA" + "5" * 32), hours=25)
    backdate(account, webhook_failure(account, "CA" + "5" * 32), hours=2)

    assert import_monitor_alerts(twilio()) == {"seen": 1, "imported": 1, "skipped": 0}

    # Filed late by Twilio: a few minutes before the newest kept alert is still read, much earlier is not.
    backdate(account, webhook_failure(account, "CA" + "5" * 32), hours=2, minutes=5)
    backdate(account, webhook_failure(account, "CA" + "5" * 32), hours=2, minutes=30)
    assert import_monitor_alerts(twilio()) == {"seen": 2, "imported": 1, "skipped": 1}
    assert open_webhook_alerts()[0].occurrences == 2


def test_a_call_reaching_the_voice_webhook_again_closes_the_numbers_webhook_error(
        app, account, sandbox_numbers, signed_post):
    number = sandbox_numbers[0]
    ring(signed_post, number, "CA" + "1" * 32)
    failure = webhook_failure(account, "CA" + "1" * 32)
    import_monitor_alerts(twilio())
    assert [alert.phone_assignment_id for alert in open_webhook_alerts()] == [number.id]

    ring(signed_post, number, "CA" + "2" * 32)
    assert open_webhook_alerts() == []
    # A failure Twilio filed before that call, imported only now, does not reopen it.
    late = webhook_failure(account, "CA" + "1" * 32)
    backdate(account, late, seconds=5)
    assert import_monitor_alerts(twilio())["imported"] == 1
    assert open_webhook_alerts() == []
    assert failure["sid"] != late["sid"]
