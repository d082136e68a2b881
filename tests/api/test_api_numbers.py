"""/api/phone-assignments: upsert against the sandbox, a fake Twilio over HTTP and an unreachable one."""
import socket
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import Alert, AuditEvent, PhoneAssignment, utcnow
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.services import users
from tests.support.api import ApiClient, assert_error
from tests.support.apps import PUBLIC_BASE_URL, make_app
from tests.support.fake_twilio import running_fake_twilio

VOICE_URL = PUBLIC_BASE_URL + "/twilio/voice"


def sandbox_numbers(app):
    return SandboxAccount.open(app.config["SANDBOX_STATE_PATH"]).numbers()


def count_rows(model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def audit_actions(number_id):
    return db.session.scalars(sa.select(AuditEvent.action).where(
        AuditEvent.subject_type == "PhoneAssignment", AuditEvent.subject_id == number_id).order_by(AuditEvent.id)).all()


# -- upsert --------------------------------------------------------------------------------------

def test_upsert_assigns_a_sandbox_number_and_points_twilio_here(app, api, make_client):
    acme = make_client()
    sandbox = sandbox_numbers(app)[0]
    assert sandbox["voice_url"] != VOICE_URL
    body = {"twilio_sid": sandbox["sid"], "client_id": acme.id, "forward_to_number": "(415) 555-0199"}

    first = api.post("/api/phone-assignments", body)
    assert first.status_code == 200, first.get_json()
    number = first.get_json()
    assert number["twilio_sid"] == sandbox["sid"] and number["phone_number"] == sandbox["phone_number"]
    assert number["client_id"] == acme.id and number["client"]["name"] == "Acme Plumbing"
    assert number["forward_to_number"] == "+14155550199" and number["target_number"] == "+14155550199"
    assert number["webhook_url"] == VOICE_URL and number["config_state"] == "ok"
    assert number["status"] == {"colour": "green", "label": "Forwarding", "key": "forwarding",
                                "reason": "Forwarding to (415) 555-0199"}
    assert SandboxAccount.open(app.config["SANDBOX_STATE_PATH"]).get_number(sandbox["sid"])["voice_url"] == VOICE_URL

    second = api.post("/api/phone-assignments", body)
    assert second.status_code == 200
    volatile = ("last_verified_at", "updated_at")
    assert {k: v for k, v in second.get_json().items() if k not in volatile} == \
        {k: v for k, v in number.items() if k not in volatile}
    assert count_rows(PhoneAssignment) == 1
    assert audit_actions(number["id"]).count("assign") == 1


def test_upsert_without_client_creates_a_pending_number(app, api):
    sandbox = sandbox_numbers(app)[1]
    response = api.post("/api/phone-assignments", {"twilio_sid": sandbox["sid"], "client_id": None,
                                                   "forward_to_number": None})
    assert response.status_code == 200
    assert response.get_json()["status"]["key"] == "pending"
    assert response.get_json()["client"] is None


def test_upsert_of_a_known_number_reassigns_it(app, api, make_client):
    acme, birch = make_client(), make_client(name="Birch", phone="+14155550111")
    sid = sandbox_numbers(app)[0]["sid"]
    number_id = api.post("/api/phone-assignments", {"twilio_sid": sid, "client_id": acme.id}).get_json()["id"]
    again = api.post("/api/phone-assignments", {"twilio_sid": sid, "client_id": birch.id}).get_json()
    assert (again["id"], again["client_id"], again["target_number"]) == (number_id, birch.id, "+14155550111")
    assert audit_actions(number_id)[-1] == "reassign"


@pytest.mark.parametrize("body, field, reason", [
    ({"twilio_sid": "PN" + "0" * 32}, "twilio_sid", "no such number"),
    ({"twilio_sid": "PN123"}, "twilio_sid", "PN followed by 32 hex digits"),
    ({"twilio_sid": 7}, "twilio_sid", "must be a string"),
    ({}, "twilio_sid", "required"),
    ({"twilio_sid": "{sid}", "client_id": 999}, "client_id", "no client with id 999"),
    ({"twilio_sid": "{sid}", "client_id": "1"}, "client_id", "positive integer"),
    ({"twilio_sid": "{sid}", "client_id": 2**40}, "client_id", "positive integer"),
    ({"twilio_sid": "{sid}", "client_id": True}, "client_id", "positive integer"),
    ({"twilio_sid": "{sid}", "forward_to_number": "+1415"}, "forward_to_number", "too short"),
    ({"twilio_sid": "{sid}", "forward_to_number": 14155550199}, "forward_to_number", "must be a string"),
    ({"twilio_sid": "{sid}", "phone_number": "nope"}, "phone_number", "not a phone number"),
    ({"twilio_sid": "{sid}", "phone_number": "+14155550199"}, "phone_number", "Twilio has +14155550101"),
    ({"twilio_sid": "{sid}", "is_active": 1}, "is_active", "true or false"),
    ({"twilio_sid": "{sid}", "owner": "me"}, "owner", "unknown field"),
])
def test_bad_upsert_is_400_and_changes_nothing(app, api, body, field, reason):
    sid = sandbox_numbers(app)[0]["sid"]
    body = {key: (sid if value == "{sid}" else value) for key, value in body.items()}
    events_before = count_rows(AuditEvent)
    details = assert_error(api.post("/api/phone-assignments", body), 400)["details"]
    assert reason in details[field]
    assert count_rows(PhoneAssignment) == 0 and count_rows(AuditEvent) == events_before
    if field != "twilio_sid":
        assert sandbox_numbers(app)[0]["voice_url"] != VOICE_URL


def test_upsert_of_a_number_tracked_under_another_sid_is_refused_before_twilio_changes(app, api, make_number):
    sandbox = sandbox_numbers(app)[0]
    make_number(phone_number=sandbox["phone_number"], twilio_sid="PN" + "e" * 32)
    details = assert_error(api.post("/api/phone-assignments", {"twilio_sid": sandbox["sid"]}), 400)["details"]
    assert "already tracked under PN" in details["twilio_sid"]
    assert sandbox_numbers(app)[0]["voice_url"] != VOICE_URL
    assert count_rows(PhoneAssignment) == 1


@contextmanager
def app_against(tmp_path, migrated_postgres, **environ):
    """An app using real Twilio credentials and the given API base URL, with a staff token client."""
    app = make_app(tmp_path, **environ)
    with app.app_context():
        token = users.issue_token(users.create_user("ops@example.test", "long enough password"))
        try:
            yield app, ApiClient(app.test_client(), token)
        finally:
            db.session.remove()
            db.engine.dispose()


def test_upsert_through_the_twilio_client_over_http(tmp_path, migrated_postgres):
    with running_fake_twilio(tmp_path / "twilio" / "account.json") as fake:
        sid = fake.account.numbers()[2]["sid"]
        with app_against(tmp_path, migrated_postgres, TWILIO_ACCOUNT_SID=fake.account_sid,
                         TWILIO_AUTH_TOKEN=fake.auth_token, TWILIO_API_BASE_URL=fake.base_url) as (app, api):
            assert app.config["SANDBOX"] is False
            response = api.post("/api/phone-assignments", {"twilio_sid": sid, "forward_to_number": "+14155550199"})
            assert response.status_code == 200, response.get_json()
            assert response.get_json()["phone_number"] == fake.account.get_number(sid)["phone_number"]
            assert fake.account.get_number(sid)["voice_url"] == VOICE_URL
            assert_error(api.post("/api/phone-assignments", {"twilio_sid": "PN" + "f" * 32}), 400)


def test_upsert_when_twilio_is_unreachable_is_502_and_saves_nothing(tmp_path, migrated_postgres):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with app_against(tmp_path, migrated_postgres, TWILIO_ACCOUNT_SID="AC" + "1" * 32, TWILIO_AUTH_TOKEN="x" * 32,
                     TWILIO_API_BASE_URL=f"http://127.0.0.1:{closed_port}") as (app, api):
        events_before = count_rows(AuditEvent)
        response = api.post("/api/phone-assignments",
                            {"twilio_sid": "PN" + "a" * 32, "forward_to_number": "+14155550199"})
        body = assert_error(response, 502)
        assert "nothing was saved" in body["error"] and body["details"]["upstream"]
        assert count_rows(PhoneAssignment) == 0 and count_rows(AuditEvent) == events_before


# -- read, change, release -----------------------------------------------------------------------

def test_list_embeds_clients_and_statuses(api, make_client, make_number):
    acme = make_client()
    verified = dict(config_state="ok", last_verified_at=utcnow())
    forwarding = make_number(phone_number="+14155550121", client=acme, **verified)
    make_number(phone_number="+14155550122")
    make_number(phone_number="+14155550123", client=acme, is_active=False)
    broken = make_number(phone_number="+14155550124", client=acme, **verified)
    db.session.add(Alert(kind="webhook_error", subject=f"number:{broken.id}", severity="error",
                         message="Twilio reported error 11200", phone_assignment_id=broken.id))
    db.session.commit()
    body = api.get("/api/phone-assignments").get_json()
    assert body["total"] == 4 and body["page"] == 1 and body["per_page"] == 50
    by_phone = {n["phone_number"]: n for n in body["items"]}
    assert list(by_phone) == ["+14155550121", "+14155550122", "+14155550123", "+14155550124"]
    assert by_phone["+14155550121"]["status"]["key"] == "forwarding"
    assert by_phone["+14155550121"]["client"]["id"] == acme.id
    assert by_phone["+14155550122"]["status"]["label"] == "Pending setup"
    assert by_phone["+14155550122"]["client"] is None
    assert by_phone["+14155550123"]["status"]["colour"] == "grey"
    assert by_phone["+14155550124"]["status"] == {"colour": "red", "label": "Error", "key": "error",
                                                  "reason": "Twilio reported error 11200"}
    only_acme = api.get(f"/api/phone-assignments?client_id={acme.id}&is_active=true").get_json()
    assert [n["id"] for n in only_acme["items"]] == [forwarding.id, broken.id]


def test_failing_forwards_turn_the_status_red(api, make_client, make_number, signed_post):
    number = make_number(client=make_client(), config_state="ok", last_verified_at=utcnow())
    for n in range(3):
        call = {"CallSid": f"CA{n:032x}", "AccountSid": "AC" + "0" * 32, "From": "+14155550100",
                "To": number.phone_number, "CallStatus": "ringing"}
        signed_post("/twilio/voice", call)
        signed_post("/twilio/dial-status", {**call, "CallStatus": "in-progress", "DialCallStatus": "no-answer"})
    # The streak alone keeps the dot red even once staff have closed the alert it raised.
    db.session.execute(sa.update(Alert).values(resolved_at=utcnow()))
    db.session.commit()
    status = api.get(f"/api/phone-assignments/{number.id}").get_json()["status"]
    assert status["key"] == "error" and "3" in status["reason"]


def test_list_costs_the_same_queries_for_many_numbers(app, api, make_client, make_number, make_call):
    def queries_for_list():
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        sa.event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert api.get("/api/phone-assignments").status_code == 200
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", listener)
        return len(statements)

    acme = make_client()
    make_number(client=acme)
    few = queries_for_list()
    for _ in range(6):
        number = make_number(client=make_client(name="Other"))
        make_call(number, dial_status="busy")
    assert queries_for_list() == few


def test_get_unknown_number_is_404(api):
    assert_error(api.get("/api/phone-assignments/12345"), 404)
    assert_error(api.patch("/api/phone-assignments/12345", {"is_active": False}), 404)
    assert_error(api.delete("/api/phone-assignments/12345"), 404)


def test_patch_null_forward_target_uses_the_clients_phone(api, make_client, make_number):
    acme = make_client(phone="+14155550187")
    number = make_number(client=acme, forward_to_number="+14155550199")
    response = api.patch(f"/api/phone-assignments/{number.id}", {"forward_to_number": None})
    assert response.status_code == 200
    body = response.get_json()
    assert body["forward_to_number"] is None and body["target_number"] == "+14155550187"
    assert audit_actions(number.id) == ["change_forward_target"]


def test_patch_changes_only_the_given_fields(api, make_client, make_number):
    acme, birch = make_client(), make_client(name="Birch", phone="+14155550111")
    number = make_number(client=acme, friendly_name="Billboard")
    body = api.patch(f"/api/phone-assignments/{number.id}", {"client_id": birch.id}).get_json()
    assert (body["client_id"], body["client"]["name"], body["friendly_name"]) == (birch.id, "Birch", "Billboard")
    body = api.patch(f"/api/phone-assignments/{number.id}", {"friendly_name": None, "is_active": False}).get_json()
    assert (body["friendly_name"], body["is_active"], body["client_id"]) == ("", False, birch.id)
    assert api.patch(f"/api/phone-assignments/{number.id}", {}).status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"forward_to_number": "555"}, "forward_to_number"), ({"client_id": 999}, "client_id"),
    ({"client_id": "x"}, "client_id"), ({"is_active": None}, "is_active"), ({"twilio_sid": "PN1"}, "twilio_sid"),
    ({"friendly_name": "x" * 201}, "friendly_name"),
])
def test_bad_patch_is_400_and_changes_nothing(api, make_client, make_number, body, field):
    number = make_number(client=make_client(), forward_to_number="+14155550199")
    assert field in assert_error(api.patch(f"/api/phone-assignments/{number.id}", body), 400)["details"]
    assert (number.forward_to_number, number.is_active) == ("+14155550199", True)
    assert audit_actions(number.id) == []


def test_delete_releases_the_number_and_keeps_its_calls(api, make_client, make_number, make_call):
    number = make_number(client=make_client(), forward_to_number="+14155550199")
    make_call(number)
    response = api.delete(f"/api/phone-assignments/{number.id}")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["client_id"], body["forward_to_number"], body["is_active"]) == (None, None, False)
    assert body["status"]["key"] == "inactive"
    assert api.get(f"/api/phone-assignments/{number.id}").status_code == 200
    assert api.get(f"/api/call-records?phone_assignment_id={number.id}").get_json()["total"] == 1
    assert audit_actions(number.id) == ["unassign"]


def test_patch_that_makes_a_synced_number_forward_points_twilio_here(app, api, make_client):
    from phoneapp.services.assignments import sync_numbers

    sync_numbers()
    number = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).first()
    assert sandbox_numbers(app)[0]["voice_url"] is None
    response = api.patch(f"/api/phone-assignments/{number.id}", {"client_id": make_client().id})
    assert response.status_code == 200
    assert response.get_json()["status"]["colour"] == "green"
    assert sandbox_numbers(app)[0]["voice_url"] == VOICE_URL
    assert audit_actions(number.id) == ["assign", "fix_webhook"]
