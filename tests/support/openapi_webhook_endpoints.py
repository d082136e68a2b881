"""The webhook endpoints' scenarios for the OpenAPI document test: each operation's answers, held to the document.

`check` sends as a staff user unless given `client`; changing endpoints takes an admin's token.
"""
from phoneapp.services import users
from phoneapp.services.webhook_endpoints import create_endpoint
from tests.support.api import ApiClient
from tests.support.pages import ADMIN
from tests.support.webhook_endpoint_rows import failed_delivery

# Reserved by RFC 6761: never resolves, so it is accepted without asking DNS for anything real.
RECEIVER = "https://hooks.example.invalid/phoneapp"


def admin_api(env):
    admin = users.create_user(ADMIN[0], ADMIN[1], role="admin")
    return ApiClient(env.app.test_client(), users.issue_token(admin))


def an_endpoint(**fields):
    return create_endpoint({"url": RECEIVER, "events": ["call.completed"], **fields}, allow_private=False)


def list_webhook_endpoints(check, env):
    failed_delivery(an_endpoint(description="CRM").id)
    an_endpoint(client_id=env.make_client().id, is_active=False)
    check(200)
    check(200, query_string={"page": 2, "per_page": 1})
    check(400, query_string={"per_page": 0})
    return {}


def create_webhook_endpoint(check, env):
    admin = admin_api(env)
    check(201, body={"url": RECEIVER, "events": ["call.completed", "number.status_changed"], "description": None,
                     "client_id": env.make_client().id, "is_active": True}, client=admin)
    check(400, body={"url": "https://127.0.0.1/hook", "events": ["call.completed"]}, client=admin)
    check(403, body={"url": RECEIVER, "events": ["call.completed"]})
    return {}


def get_webhook_endpoint(check, env):
    values = {"endpoint_id": an_endpoint().id}
    check(200, values)
    check(404, {"endpoint_id": 999})
    return values


def update_webhook_endpoint(check, env):
    admin = admin_api(env)
    values = {"endpoint_id": an_endpoint().id}
    check(200, values, body={"is_active": False, "description": "CRM", "client_id": None}, client=admin)
    check(200, values, body={"events": ["call.missed"], "is_active": True}, client=admin)
    check(400, values, body={"events": []}, client=admin)
    check(403, values, body={"is_active": False})
    check(404, {"endpoint_id": 999}, body={}, client=admin)
    return values


def delete_webhook_endpoint(check, env):
    admin = admin_api(env)
    check(204, {"endpoint_id": an_endpoint().id}, client=admin)
    check(404, {"endpoint_id": 999}, client=admin)
    values = {"endpoint_id": an_endpoint().id}
    check(403, values)
    return values


def list_webhook_deliveries(check, env):
    endpoint = an_endpoint()
    failed_delivery(endpoint.id)
    values = {"endpoint_id": endpoint.id}
    check(200, values)
    check(200, values, query_string={"page": 2})
    check(400, values, query_string={"page": "x"})
    check(404, {"endpoint_id": 999})
    return values


def redeliver_webhook_delivery(check, env):
    endpoint = an_endpoint()
    values = {"delivery_id": failed_delivery(endpoint.id).id}
    check(202, values)
    check(404, {"delivery_id": 999})
    admin_api(env).patch(f"/api/webhook-endpoints/{endpoint.id}", {"is_active": False})
    check(400, values)
    return values


WEBHOOK_ENDPOINT_SCENARIOS = {
    ("/api/webhook-endpoints", "get"): list_webhook_endpoints,
    ("/api/webhook-endpoints", "post"): create_webhook_endpoint,
    ("/api/webhook-endpoints/{endpoint_id}", "get"): get_webhook_endpoint,
    ("/api/webhook-endpoints/{endpoint_id}", "patch"): update_webhook_endpoint,
    ("/api/webhook-endpoints/{endpoint_id}", "delete"): delete_webhook_endpoint,
    ("/api/webhook-endpoints/{endpoint_id}/deliveries", "get"): list_webhook_deliveries,
    ("/api/webhook-deliveries/{delivery_id}/redeliver", "post"): redeliver_webhook_delivery,
}
