"""/api/webhook-endpoints: admins add receivers (address checked on save), the secret is shown once, staff read
the deliveries log and redeliver."""
from datetime import timedelta

import pytest

from phoneapp.extensions import db
from phoneapp.models import WebhookDelivery, WebhookEndpoint, utcnow
from phoneapp.services import users
from tests.support.api import ApiClient, assert_error
from tests.support.webhook_endpoint_rows import failed_delivery

ALL_EVENTS = ["call.completed", "call.missed", "voicemail.created", "number.status_changed"]
# Reserved by RFC 6761: never resolves, as a receiver not yet in DNS does not.
UNRESOLVED = "https://hooks.example.invalid/phoneapp"


@pytest.fixture
def admin_api(app, admin):
    return ApiClient(app.test_client(), users.issue_token(admin))


def create(admin_api, url=UNRESOLVED, events=("call.completed",), **fields):
    return admin_api.post("/api/webhook-endpoints", {"url": url, "events": list(events), **fields})


def refusal(response, field):
    return assert_error(response, 400)["details"][field]


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(admin_api, make_client):
    acme = make_client()
    response = create(admin_api, events=["voicemail.created", "call.completed", "call.completed"],
                      client_id=acme.id, description="CRM")
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 20
    assert created["secret_hint"] == created["secret"][-4:]
    assert created["events"] == ["call.completed", "voicemail.created"]
    assert (created["client_id"], created["client_name"], created["description"]) == (acme.id, acme.name, "CRM")
    assert created["is_active"] and created["last_delivery_state"] is None
    assert response.headers["Location"].endswith(f"/api/webhook-endpoints/{created['id']}")
    assert response.headers["Cache-Control"] == "no-store"

    one = admin_api.get(f"/api/webhook-endpoints/{created['id']}")
    listed = admin_api.get("/api/webhook-endpoints")
    assert one.status_code == listed.status_code == 200
    assert "secret" not in one.get_json() and one.get_json()["secret_hint"] == created["secret_hint"]
    assert listed.get_json()["total"] == 1
    assert created["secret"] not in one.get_data(as_text=True) + listed.get_data(as_text=True)
    stored = db.session.get(WebhookEndpoint, created["id"])
    assert stored.secret == created["secret"] and stored.url == UNRESOLVED


def test_an_admin_changes_switches_and_deletes_an_endpoint(admin_api):
    endpoint = create(admin_api).get_json()
    path = f"/api/webhook-endpoints/{endpoint['id']}"

    changed = admin_api.patch(path, {"events": ALL_EVENTS, "description": None, "client_id": None})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["events"] == ALL_EVENTS and "secret" not in changed.get_json()

    off = admin_api.patch(path, {"is_active": False}).get_json()
    assert off["is_active"] is False and off["disabled_at"] and "admin@example.test" in off["disabled_reason"]
    on = admin_api.patch(path, {"is_active": True}).get_json()
    assert on["is_active"] is True and on["disabled_at"] is None and on["disabled_reason"] is None
    assert db.session.get(WebhookEndpoint, endpoint["id"]).secret.endswith(endpoint["secret_hint"])

    delivery_id = failed_delivery(endpoint["id"]).id
    assert admin_api.delete(path).status_code == 204
    assert_error(admin_api.get(path), 404)
    assert db.session.get(WebhookEndpoint, endpoint["id"]) is None
    assert db.session.get(WebhookDelivery, delivery_id) is None


def test_staff_read_endpoints_but_may_not_change_them(api, admin_api):
    endpoint = create(admin_api).get_json()
    path = f"/api/webhook-endpoints/{endpoint['id']}"
    assert api.get("/api/webhook-endpoints").status_code == 200
    assert api.get(path).status_code == 200
    assert "admin" in assert_error(create(api), 403)["details"]["role"]
    assert_error(api.patch(path, {"is_active": False}), 403)
    assert_error(api.delete(path), 403)
    assert db.session.get(WebhookEndpoint, endpoint["id"]).is_active


@pytest.mark.parametrize("body, field, reason", [
    ({"url": "ftp://hooks.example.com/x", "events": ["call.completed"]}, "url", "must start with https://"),
    ({"url": "http://hooks.example.com/x", "events": ["call.completed"]}, "url", "must use https://"),
    ({"url": "https://user:pw@hooks.example.com/", "events": ["call.completed"]}, "url", "user name or password"),
    ({"url": "", "events": ["call.completed"]}, "url", "is required"),
    ({"url": UNRESOLVED, "events": []}, "events", "choose at least one of"),
    ({"url": UNRESOLVED, "events": ["call.started"]}, "events", "'call.started' is not an event"),
    ({"url": UNRESOLVED, "events": "call.completed"}, "events", "must be an array"),
    ({"url": UNRESOLVED, "events": ["call.missed"], "client_id": 999}, "client_id", "no client with id 999"),
    ({"url": UNRESOLVED}, "events", "required"),
    ({"url": UNRESOLVED, "events": ["call.missed"], "secret": "whsec_mine"}, "secret", "unknown field"),
])
def test_bad_input_is_refused_naming_the_field(admin_api, body, field, reason):
    assert reason in refusal(admin_api.post("/api/webhook-endpoints", body), field)
    assert db.session.scalar(db.select(db.func.count()).select_from(WebhookEndpoint)) == 0


@pytest.mark.parametrize("url, reason", [
    ("https://127.0.0.1/hook", "resolves to 127.0.0.1, a loopback address"),
    ("http://localhost:8080/hook", "localhost resolves to"),
    ("https://[::1]/hook", "resolves to ::1, a loopback address"),
    ("https://10.1.2.3/hook", "resolves to 10.1.2.3, a private address"),
    ("https://169.254.169.254/latest/meta-data", "resolves to 169.254.169.254, a link-local address"),
    ("https://metadata.google.internal/computeMetadata/v1", "metadata.google.internal is a cloud metadata service"),
])
def test_addresses_inside_the_servers_network_are_refused(admin_api, url, reason):
    assert reason in refusal(create(admin_api, url=url), "url")


def test_the_flag_lets_a_receiver_on_this_machine_be_saved(app, admin_api):
    assert "loopback" in refusal(create(admin_api, url="http://127.0.0.1:9000/hook"), "url")
    app.config["OUTBOUND_WEBHOOKS_ALLOW_PRIVATE"] = True
    response = create(admin_api, url="http://127.0.0.1:9000/hook")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["url"] == "http://127.0.0.1:9000/hook"


def test_a_public_address_and_a_name_not_resolving_yet_are_accepted(admin_api):
    assert create(admin_api, url="https://93.184.215.14/hook").status_code == 201
    response = create(admin_api, url=UNRESOLVED)
    assert response.status_code == 201 and response.get_json()["url"] == UNRESOLVED


def test_a_changed_url_is_checked_like_a_new_one(admin_api):
    endpoint = create(admin_api).get_json()
    path = f"/api/webhook-endpoints/{endpoint['id']}"
    assert "loopback" in refusal(admin_api.patch(path, {"url": "https://127.0.0.1/x"}), "url")
    assert admin_api.get(path).get_json()["url"] == UNRESOLVED


def test_deliveries_are_listed_newest_first_with_their_attempts(api, admin_api):
    endpoint = create(admin_api, events=ALL_EVENTS).get_json()
    first = failed_delivery(endpoint["id"])
    newer = failed_delivery(endpoint["id"], "call.missed", "call.missed:CA2")
    newer.created_at = first.created_at + timedelta(seconds=5)
    db.session.commit()

    response = api.get(f"/api/webhook-endpoints/{endpoint['id']}/deliveries", query_string={"per_page": 1})
    assert response.status_code == 200
    page = response.get_json()
    assert (page["total"], page["per_page"], len(page["items"])) == (2, 1, 1)
    item = page["items"][0]
    assert (item["id"], item["event_type"], item["state"], item["attempt_count"]) == (newer.id, "call.missed",
                                                                                       "failed", 1)
    assert item["event_id"].startswith("msg_") and item["response_code"] == 500 and item["last_error"] == "HTTP 500"
    assert [(a["attempt"], a["response_code"], a["error"]) for a in item["attempts"]] == [(1, 500, "HTTP 500")]
    assert item["attempts"][0]["started_at"].endswith("Z")
    listed = api.get("/api/webhook-endpoints").get_json()["items"][0]
    assert listed["last_delivery_state"] == "failed"
    assert_error(api.get("/api/webhook-endpoints/999/deliveries"), 404)


def test_redeliver_makes_a_delivery_pending_again(api, admin_api):
    endpoint = create(admin_api).get_json()
    delivery = failed_delivery(endpoint["id"])

    response = api.post(f"/api/webhook-deliveries/{delivery.id}/redeliver")
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["state"] == "pending" and response.get_json()["next_attempt_at"]
    db.session.refresh(delivery)
    assert delivery.state == "pending" and delivery.next_attempt_at <= utcnow()
    assert_error(api.post("/api/webhook-deliveries/999/redeliver"), 404)


def test_a_switched_off_endpoint_is_not_redelivered_to(api, admin_api):
    endpoint = create(admin_api).get_json()
    delivery = failed_delivery(endpoint["id"])
    admin_api.patch(f"/api/webhook-endpoints/{endpoint['id']}", {"is_active": False})
    assert "switched off" in refusal(api.post(f"/api/webhook-deliveries/{delivery.id}/redeliver"), "endpoint")
    db.session.refresh(delivery)
    assert delivery.state == "failed"
