"""JSON API: authentication, CSRF for sessions, error shape, and /api/clients."""
import json

import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import ApiToken, AuditEvent, Client, PhoneAssignment, utcnow
from phoneapp.services import users
from tests.support.api import ApiClient, assert_error, page_csrf_token


def api_rules(app):
    """(method, url) for every API route and method, ids filled with 1."""
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        # The old per-client voice URL under /api is Twilio's, signed like every webhook, not the JSON API.
        if not rule.rule.startswith("/api/") or rule.endpoint.startswith("webhooks."):
            continue
        url = adapter.build(rule.endpoint, {name: 1 for name in rule.arguments})
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, url


# -- authentication ------------------------------------------------------------------------------

def test_every_api_route_needs_a_user(app, client):
    routes = list(api_rules(app))
    assert len(routes) >= 12
    for method, url in routes:
        response = ApiClient(client).open(method, url, {})
        body = assert_error(response, 401)
        assert "authentication required" in body["error"], (method, url)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer pa_not-a-real-token", "Bearer ", "Bearer garbage", "Basic YTpi"])
def test_unknown_tokens_are_refused_everywhere(app, client, staff, header):
    for method, url in api_rules(app):
        assert_error(ApiClient(client).open(method, url, {}, headers={"Authorization": header}), 401)


def test_bearer_token_gives_access_and_no_session_cookie(api):
    response = api.get("/api/clients")
    assert response.status_code == 200
    assert response.get_json() == {"items": [], "page": 1, "per_page": 50, "total": 0}
    assert "Set-Cookie" not in response.headers


def test_revoked_token_is_refused(api):
    assert api.get("/api/clients").status_code == 200
    db.session.execute(sa.update(ApiToken).values(revoked_at=utcnow()))
    db.session.commit()
    body = assert_error(api.get("/api/clients"), 401)
    assert "revoked" in body["error"]
    assert 'error="invalid_token"' in api.get("/api/clients").headers["WWW-Authenticate"]


def test_token_of_a_deactivated_user_is_refused(api, staff):
    staff.is_active_user = False
    db.session.commit()
    assert_error(api.get("/api/clients"), 401)


def test_bearer_changes_need_no_csrf_token(api):
    response = api.post("/api/clients", {"name": "Acme", "phone": "+14155550187"})
    assert response.status_code == 201, response.get_json()


def test_openapi_document_needs_a_login_or_token_like_every_api_route(client, api):
    assert client.get("/api/openapi.json").status_code == 401
    response = api.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.get_json()["openapi"] == "3.1.0"


@pytest.fixture
def session_api(staff_client):
    """A logged-in browser session, no token."""
    return ApiClient(staff_client)


def test_session_can_read_without_csrf_token(session_api):
    assert session_api.get("/api/clients").status_code == 200


@pytest.mark.parametrize("method, path", [
    ("POST", "/api/clients"), ("PATCH", "/api/clients/{id}"), ("DELETE", "/api/clients/{id}"),
])
def test_session_change_without_csrf_token_is_refused(session_api, make_client, method, path):
    acme = make_client()
    response = session_api.open(method, path.format(id=acme.id), {"name": "Changed", "phone": "+14155550188"})
    body = assert_error(response, 400)
    assert "CSRF" in body["error"]
    db.session.expire_all()
    assert [c.name for c in db.session.scalars(sa.select(Client))] == ["Acme Plumbing"]


def test_session_change_with_the_pages_csrf_token_is_accepted(session_api, staff_client, make_client):
    token = page_csrf_token(staff_client)
    response = session_api.post("/api/clients", {"name": "Acme", "phone": "+14155550187"},
                                headers={"X-CSRFToken": token})
    assert response.status_code == 201, response.get_json()
    acme = make_client(name="Other")
    response = session_api.delete(f"/api/clients/{acme.id}", headers={"X-CSRFToken": token})
    assert response.status_code == 204


def test_wrong_csrf_token_is_refused(session_api):
    response = session_api.post("/api/clients", {"name": "Acme", "phone": "+14155550187"},
                                headers={"X-CSRFToken": "forged"})
    assert_error(response, 400)


def test_changes_are_audited_under_the_token_user(api, staff):
    api.post("/api/clients", {"name": "Acme", "phone": "+14155550187"})
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "create_client")).one()
    assert event.actor_id == staff.id


def test_require_role_refuses_other_roles(app, staff):
    from flask_login import login_user

    from phoneapp.api.blueprint import require_role
    from phoneapp.api.errors import ApiError

    @require_role("admin")
    def admin_only():
        return "ok"

    with app.test_request_context("/api/anything"):
        login_user(staff)
        with pytest.raises(ApiError) as refused:
            admin_only()
        assert refused.value.status == 403 and "admin" in refused.value.details["role"]
        staff.role = "admin"
        assert admin_only() == "ok"


# -- bad input never makes a 500 -----------------------------------------------------------------

@pytest.mark.parametrize("raw, reason", [
    ("{", "line 1 column 2"),
    ("", "line 1 column 1"),
    ('{"name": "a",}', "line 1"),
    ('{"name": NaN, "phone": "+14155550187"}', "NaN"),
    ('{"name": "a", "name": "b", "phone": "+14155550187"}', "duplicate key"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"client_id": ' + "9" * 5000 + "}", "digits"),
    (b"{\"name\": \"\xff\"}", "UTF-8"),
])
def test_unreadable_json_is_a_clear_400(api, raw, reason):
    response = api.post("/api/clients", data=raw, content_type="application/json")
    body = assert_error(response, 400)
    assert body["error"] == "request body is not valid JSON"
    assert reason in body["details"]["body"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 0


@pytest.mark.parametrize("body, kind", [([], "array"), ("x", "string"), (3, "number"), (None, "null")])
def test_body_must_be_an_object(api, body, kind):
    response = api.post("/api/clients", data=json.dumps(body), content_type="application/json")
    assert assert_error(response, 400)["details"]["body"] == f"expected an object, got {kind}"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_body_must_be_sent_as_json(api, content_type):
    kwargs = {"content_type": content_type} if content_type else {}
    response = api.post("/api/clients", data='{"name": "Acme", "phone": "+14155550187"}', **kwargs)
    assert "application/json" in assert_error(response, 415)["details"]["content_type"]


def test_too_large_body_is_413(api, app):
    big = json.dumps({"name": "Acme", "phone": "+14155550187", "notes": "x" * app.config["MAX_CONTENT_LENGTH"]})
    assert_error(api.post("/api/clients", data=big, content_type="application/json"), 413)


@pytest.mark.parametrize("body, field, reason", [
    ({"name": "Acme", "phone": "+1415"}, "phone", "too short"),
    ({"name": "Acme", "phone": "hello"}, "phone", "not a phone number"),
    ({"name": "Acme", "phone": "+999123"}, "phone", "unknown country code"),
    ({"name": "Acme", "phone": 4155550187}, "phone", "must be a string"),
    ({"name": "Acme"}, "phone", "required"),
    ({"name": "", "phone": "+14155550187"}, "name", "a name is required"),
    ({"name": ["Acme"], "phone": "+14155550187"}, "name", "must be a string"),
    ({"name": "A\x00cme", "phone": "+14155550187"}, "name", "NUL"),
    ({"name": "\ud800", "phone": "+14155550187"}, "name", "Unicode"),
    ({"name": "x" * 201, "phone": "+14155550187"}, "name", "200"),
    ({"name": "Acme", "phone": "+14155550187", "email": "nope"}, "email", "e-mail"),
    ({"name": "Acme", "phone": "+14155550187", "is_active": "yes"}, "is_active", "true or false"),
    ({"name": "Acme", "phone": "+14155550187", "colour": "red"}, "colour", "unknown field"),
])
def test_invalid_client_is_refused_naming_the_field(api, body, field, reason):
    events_before = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    response = api.post("/api/clients", data=json.dumps(body), content_type="application/json")
    details = assert_error(response, 400)["details"]
    assert reason in details[field]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == events_before


@pytest.mark.parametrize("query, field", [
    ("per_page=500", "per_page"), ("per_page=0", "per_page"), ("per_page=-1", "per_page"),
    ("per_page=1.5", "per_page"), ("per_page=", "per_page"), ("page=abc", "page"), ("page=0", "page"),
    ("page=" + "9" * 5000, "page"), ("per_page=%D9%A3", "per_page"), ("page=1&page=2", "page"),
    ("is_active=maybe", "is_active"), ("colour=red", "colour"),
])
def test_bad_query_parameters_are_400(api, query, field):
    assert field in assert_error(api.get(f"/api/clients?{query}"), 400)["details"]


@pytest.mark.parametrize("path", ["/api/clients/0", "/api/clients/99", "/api/clients/" + "9" * 30,
                                  "/api/clients/abc", "/api/no-such-thing"])
def test_missing_rows_and_routes_are_json_404(api, path):
    assert_error(api.get(path), 404)


def test_wrong_method_is_json_405(api):
    response = api.open("PUT", "/api/clients")
    assert_error(response, 405)
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


# -- clients -------------------------------------------------------------------------------------

def test_create_client_normalises_the_phone_and_answers_201(api):
    response = api.post("/api/clients", {"name": " Acme Plumbing ", "phone": "(415) 555-0187",
                                         "email": "office@acme.test", "notes": "VIP"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["name"] == "Acme Plumbing" and body["phone"] == "+14155550187"
    assert body["email"] == "office@acme.test" and body["notes"] == "VIP" and body["is_active"] is True
    assert body["created_at"].endswith("Z")
    assert response.headers["Location"].endswith(f"/api/clients/{body['id']}")
    assert api.get(f"/api/clients/{body['id']}").get_json() == body


def test_list_clients_is_paginated_by_name(api, make_client):
    for name in ("Cedar", "Acme", "Birch"):
        make_client(name=name)
    make_client(name="Dormant", is_active=False)
    first = api.get("/api/clients?per_page=2").get_json()
    assert [c["name"] for c in first["items"]] == ["Acme", "Birch"]
    assert (first["page"], first["per_page"], first["total"]) == (1, 2, 4)
    second = api.get("/api/clients?per_page=2&page=2").get_json()
    assert [c["name"] for c in second["items"]] == ["Cedar", "Dormant"]
    assert api.get("/api/clients?per_page=2&page=9").get_json()["items"] == []
    active = api.get("/api/clients?is_active=false").get_json()
    assert [c["name"] for c in active["items"]] == ["Dormant"] and active["total"] == 1


def test_patch_client_changes_only_given_fields_and_null_clears(api, make_client):
    acme = make_client(email="a@acme.test", notes="note")
    response = api.patch(f"/api/clients/{acme.id}", {"phone": "415-555-0199", "email": None, "notes": None})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["name"], body["phone"], body["email"], body["notes"]) == ("Acme Plumbing", "+14155550199", None, "")


def test_patch_client_with_bad_phone_changes_nothing(api, make_client):
    acme = make_client()
    details = assert_error(api.patch(f"/api/clients/{acme.id}", {"phone": "555", "name": "New"}), 400)["details"]
    assert set(details) == {"phone"}
    db.session.expire_all()
    assert (acme.name, acme.phone) == ("Acme Plumbing", "+14155550187")


@pytest.mark.parametrize("body", [{"phone": None}, {"name": None}, {"is_active": None}])
def test_required_client_fields_cannot_be_cleared(api, make_client, body):
    acme = make_client()
    assert set(assert_error(api.patch(f"/api/clients/{acme.id}", body), 400)["details"]) == set(body)


def test_delete_client_unassigns_its_numbers_and_keeps_history(api, make_client, make_number, make_call):
    acme = make_client()
    acme_id, number = acme.id, make_number(client=acme)
    make_call(number)
    response = api.delete(f"/api/clients/{acme_id}")
    assert response.status_code == 204 and response.data == b""
    assert_error(api.get(f"/api/clients/{acme_id}"), 404)
    assert db.session.get(PhoneAssignment, number.id).client_id is None
    calls = api.get(f"/api/call-records?phone_assignment_id={number.id}").get_json()
    assert calls["total"] == 1 and calls["items"][0]["client_id"] is None
    assert_error(api.delete(f"/api/clients/{acme_id}"), 404)


def test_issue_token_for_admin_works_too(app, admin):
    admin_api = ApiClient(app.test_client(), users.issue_token(admin))
    assert admin_api.get("/api/clients").status_code == 200
