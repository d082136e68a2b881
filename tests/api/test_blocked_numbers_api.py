"""/api/blocked-numbers: adding, listing and deleting blocked callers; refusals name the field; changes audited."""
import sqlalchemy as sa

from phoneapp.domain.block_list import BlockEntry
from phoneapp.extensions import db
from phoneapp.models import AuditEvent, BlockedNumber
from phoneapp.services.block_list import block_entries
from tests.support.api import ApiClient, assert_error, page_csrf_token
from tests.support.pages import STAFF, login


def audit_actions():
    return db.session.execute(sa.select(AuditEvent.action, AuditEvent.subject_type, AuditEvent.actor_label,
                                        AuditEvent.before, AuditEvent.after)
                              .where(AuditEvent.subject_type == "BlockedNumber").order_by(AuditEvent.id)).all()


def test_add_list_and_delete(api, make_client):
    acme = make_client()
    every = api.post("/api/blocked-numbers", {"number": "(900) 555-0100", "reason": "robocalls"})
    assert every.status_code == 201, every.get_json()
    entry = every.get_json()
    assert entry["number"] == "+19005550100" and entry["client_id"] is None and entry["reason"] == "robocalls"
    assert entry["is_prefix"] is False and entry["created_by"] == STAFF[0] and entry["created_at"].endswith("Z")
    prefix = api.post("/api/blocked-numbers", {"number": "+1 900*", "client_id": acme.id}).get_json()
    assert (prefix["number"], prefix["is_prefix"], prefix["client_name"]) == ("+1900*", True, "Acme Plumbing")

    listed = api.get("/api/blocked-numbers").get_json()
    assert [item["id"] for item in listed["items"]] == [entry["id"], prefix["id"]]
    assert (listed["page"], listed["per_page"], listed["total"]) == (1, 50, 2)
    only_acme = api.get("/api/blocked-numbers", query_string={"client_id": acme.id}).get_json()
    assert [item["id"] for item in only_acme["items"]] == [prefix["id"]]
    assert block_entries() == [BlockEntry("+19005550100", None), BlockEntry("+1900*", acme.id)]

    assert api.delete(f"/api/blocked-numbers/{entry['id']}").status_code == 204
    assert block_entries() == [BlockEntry("+1900*", acme.id)]
    assert_error(api.delete(f"/api/blocked-numbers/{entry['id']}"), 404)
    assert_error(api.delete("/api/blocked-numbers/99999999999"), 404)


def test_changes_are_audited(api, staff):
    entry = api.post("/api/blocked-numbers", {"number": "+19005550100", "reason": "spam"}).get_json()
    api.delete(f"/api/blocked-numbers/{entry['id']}")
    fields = {"number": "+19005550100", "client_id": None, "reason": "spam"}
    assert audit_actions() == [("block", "BlockedNumber", staff.email, None, fields),
                               ("unblock", "BlockedNumber", staff.email, fields, None)]


def test_a_bad_number_or_prefix_is_refused_naming_number(api):
    for bad in ("12", "call me", "+1900**", "1900*", "*", "", "+1 (900) 555-0100-99999"):
        body = assert_error(api.post("/api/blocked-numbers", {"number": bad}), 400)
        assert set(body["details"]) == {"number"}, (bad, body)
    assert set(assert_error(api.post("/api/blocked-numbers", {}), 400)["details"]) == {"number"}
    assert set(assert_error(api.post("/api/blocked-numbers", {"number": 19005550100}), 400)["details"]) == {"number"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BlockedNumber)) == 0


def test_an_unknown_client_is_refused_naming_client_id(api):
    for client_id in (999, "1", True, 0):
        body = assert_error(api.post("/api/blocked-numbers", {"number": "+19005550100", "client_id": client_id}),
                            400)
        assert set(body["details"]) == {"client_id"}, (client_id, body)
    assert block_entries() == []


def test_a_duplicate_is_refused_but_the_same_number_for_another_scope_is_not(api, make_client):
    acme = make_client()
    assert api.post("/api/blocked-numbers", {"number": "+19005550100"}).status_code == 201
    again = assert_error(api.post("/api/blocked-numbers", {"number": "(900) 555-0100", "client_id": None}), 400)
    assert again["details"] == {"number": "+19005550100 is already blocked for every client"}
    assert api.post("/api/blocked-numbers", {"number": "+19005550100", "client_id": acme.id}).status_code == 201
    for_acme = assert_error(api.post("/api/blocked-numbers", {"number": "+19005550100", "client_id": acme.id}), 400)
    assert for_acme["details"] == {"number": "+19005550100 is already blocked for this client"}
    assert len(block_entries()) == 2


def test_a_reason_too_long_or_an_unknown_field_is_refused(api):
    assert set(assert_error(api.post("/api/blocked-numbers", {"number": "+19005550100", "reason": "x" * 201}),
                            400)["details"]) == {"reason"}
    assert set(assert_error(api.post("/api/blocked-numbers", {"number": "+19005550100", "note": "x"}),
                            400)["details"]) == {"note"}
    assert set(assert_error(api.get("/api/blocked-numbers", query_string={"client_id": "x"}),
                            400)["details"]) == {"client_id"}


def test_deleting_a_client_deletes_its_entries(api, make_client):
    acme = make_client()
    api.post("/api/blocked-numbers", {"number": "+19005550100", "client_id": acme.id})
    assert api.delete(f"/api/clients/{acme.id}").status_code == 204
    assert block_entries() == []


def test_unauthenticated_requests_get_401_and_change_nothing(app, api):
    entry = api.post("/api/blocked-numbers", {"number": "+19005550100"}).get_json()
    anonymous = ApiClient(app.test_client())
    assert_error(anonymous.get("/api/blocked-numbers"), 401)
    assert_error(anonymous.post("/api/blocked-numbers", {"number": "+19005550101"}), 401)
    assert_error(anonymous.delete(f"/api/blocked-numbers/{entry['id']}"), 401)
    assert_error(ApiClient(app.test_client(), "pa_never-issued").get("/api/blocked-numbers"), 401)
    assert [e.number for e in block_entries()] == ["+19005550100"]


def test_a_session_needs_its_csrf_token_to_change_the_list(app, staff):
    browser = app.test_client()
    login(browser, *STAFF)
    session = ApiClient(browser)
    assert_error(session.post("/api/blocked-numbers", {"number": "+19005550100"}), 400)
    token = page_csrf_token(browser)
    created = session.post("/api/blocked-numbers", {"number": "+19005550100"}, headers={"X-CSRFToken": token})
    assert created.status_code == 201


def test_a_change_rewrites_the_routing_cache(app, api):
    path = app.extensions["phoneapp.routing_cache"].path
    api.post("/api/blocked-numbers", {"number": "+1900*"})
    assert "+1900*" in path.read_text()
