"""Per-call notices through /api/clients: the client's JSON says who is told of which calls, good settings
round-trip normalised, and a bad address, number or event is a 400 naming the field that saves nothing."""
import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import AuditEvent, Client
from tests.support.api import assert_error

NO_NOTICES = {"notify_emails": [], "notify_sms": [], "notify_on": []}


def notices_of(body):
    return {key: body[key] for key in NO_NOTICES}


def test_a_client_without_notices_answers_empty_lists(api, make_client):
    client = make_client()
    assert notices_of(api.get(f"/api/clients/{client.id}").get_json()) == NO_NOTICES
    listed = api.get("/api/clients").get_json()["items"][0]
    assert notices_of(listed) == NO_NOTICES


def test_notices_round_trip_normalised_and_are_audited(api, make_client):
    created = api.post("/api/clients", {
        "name": "Acme", "phone": "+14155550187", "notify_emails": [" owner@acme.test "],
        "notify_sms": ["(415) 555-0166"], "notify_on": ["voicemail", "missed", "missed"]})
    assert created.status_code == 201, created.get_json()
    expected = {"notify_emails": ["owner@acme.test"], "notify_sms": ["+14155550166"],
                "notify_on": ["missed", "voicemail"]}
    assert notices_of(created.get_json()) == expected
    client_id = created.get_json()["id"]
    assert notices_of(api.get(f"/api/clients/{client_id}").get_json()) == expected

    changed = api.patch(f"/api/clients/{client_id}", {"notify_on": ["answered"], "notify_sms": None})
    assert changed.status_code == 200, changed.get_json()
    assert notices_of(changed.get_json()) == {**expected, "notify_sms": [], "notify_on": ["answered"]}
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "update_client")).one()
    assert (event.before["notify_on"], event.after["notify_on"]) == (["missed", "voicemail"], ["answered"])
    assert (event.before["notify_sms"], event.after["notify_sms"]) == (["+14155550166"], [])


@pytest.mark.parametrize("body, field, words", [
    ({"notify_emails": ["owner@acme.test", "owner at acme"]}, "notify_emails[1]", "is not an e-mail address"),
    ({"notify_emails": "owner@acme.test"}, "notify_emails", "must be a list of e-mail addresses"),
    ({"notify_emails": [42]}, "notify_emails[0]", "written as text"),
    ({"notify_emails": ["a@acme.test", "A@acme.test"]}, "notify_emails[1]", "listed twice"),
    ({"notify_sms": ["+1415555"]}, "notify_sms[0]", "too short"),
    ({"notify_sms": ["+14155550166", "call me"]}, "notify_sms[1]", "not a phone number"),
    ({"notify_on": ["missed", "hangup"]}, "notify_on", "unknown event “hangup”"),
    ({"notify_on": "missed"}, "notify_on", "must be a list of events"),
])
def test_a_bad_notice_setting_is_a_400_naming_the_field_and_saves_nothing(api, make_client, body, field, words):
    client = make_client(notify_emails=["kept@acme.test"], notify_on=["missed"])
    refused = api.patch(f"/api/clients/{client.id}", {"name": "Renamed", **body})
    error = assert_error(refused, 400)
    assert set(error["details"]) == {field} and words in error["details"][field]

    db.session.expire_all()
    stored = db.session.get(Client, client.id)
    assert (stored.name, stored.notify_emails, stored.notify_sms, stored.notify_on) == (
        "Acme Plumbing", ["kept@acme.test"], None, ["missed"])
    assert db.session.scalars(sa.select(AuditEvent).where(AuditEvent.subject_type == "Client")).all() == []


def test_a_bad_notice_setting_creates_no_client(api):
    refused = api.post("/api/clients", {"name": "Acme", "phone": "+14155550187", "notify_sms": ["12"]})
    assert "notify_sms[0]" in assert_error(refused, 400)["details"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 0
