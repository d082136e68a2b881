"""/api/webhook-endpoints: where outbound webhooks go, and how their deliveries went (SPEC §10).

Admins add, change and remove endpoints: an endpoint decides where call data leaves phoneapp. Staff read them
and their deliveries, and may redeliver one, which sends nothing to an address an admin did not choose.
"""
from flask import current_app, url_for
from flask_login import current_user

from phoneapp.api.blueprint import acting_user, bp
from phoneapp.api.errors import ApiError
from phoneapp.api.inputs import PAGE_ARGS, QueryArgs, boolean, check_body, json_body, record_id, text
from phoneapp.api.queries import paginate, row_or_404
from phoneapp.api.schemas import ID, TIME, _object, _page_of, nullable, ref
from phoneapp.domain.outbound_addresses import MAX_URL_LENGTH
from phoneapp.models import DELIVERY_STATES, WebhookEndpoint
from phoneapp.services import webhook_endpoints as endpoints
from phoneapp.services.serializers import iso, page_json


def event_list():
    """Which events and whether they are known is the service's to say; here only the JSON type."""
    return lambda value: None if isinstance(value, list) else "must be an array of event types"


ENDPOINT_BODY = {
    "url": text(MAX_URL_LENGTH),
    "description": text(endpoints.MAX_DESCRIPTION_LENGTH, nullable=True),
    "events": event_list(),
    "client_id": record_id(nullable=True),
    "is_active": boolean(),
}
EVENT_TYPE = {"type": "string", "enum": list(endpoints.EVENT_TYPES)}
ENDPOINT_FIELDS_IN = {
    "url": {"type": "string", "maxLength": MAX_URL_LENGTH, "examples": ["https://hooks.example.com/phoneapp"],
            "description": "https:// (http:// only for a receiver on this machine). Refused when its host resolves "
                           "to a loopback, private, link-local or metadata address, unless "
                           "OUTBOUND_WEBHOOKS_ALLOW_PRIVATE; a name that does not resolve yet is accepted"},
    "description": nullable({"type": "string", "maxLength": endpoints.MAX_DESCRIPTION_LENGTH}),
    "events": {"type": "array", "items": EVENT_TYPE, "minItems": 1, "description": "The events it receives"},
    "client_id": nullable({**ID, "description": "Only this client's events; null: every client's"}),
    "is_active": {"type": "boolean", "description": "false: nothing is sent to it"},
}
ENDPOINT_OUT = {
    "id": ID,
    "url": {"type": "string"},
    "description": {"type": "string"},
    "events": {"type": "array", "items": EVENT_TYPE},
    "client_id": nullable(ID),
    "client_name": nullable({"type": "string"}),
    "is_active": {"type": "boolean"},
    "secret_hint": {"type": "string", "description": "The secret's last 4 characters; the secret itself is only "
                                                     "in the answer that created the endpoint"},
    "failing_since": nullable({**TIME, "description": "Since when every attempt failed; a day of it switches "
                                                      "the endpoint off"}),
    "disabled_at": nullable(TIME),
    "disabled_reason": nullable({"type": "string", "description": "Why it is switched off"}),
    "last_delivery_state": nullable({"type": "string", "enum": list(DELIVERY_STATES)}),
    "last_delivery_at": nullable({**TIME, "description": "When the newest delivery was queued"}),
    "created_at": TIME,
    "updated_at": TIME,
}
# For the OpenAPI document's components.
SCHEMAS = {
    "WebhookEndpoint": _object(ENDPOINT_OUT, description="A receiver of outbound webhooks"),
    "WebhookEndpointCreated": _object({
        **ENDPOINT_OUT,
        "secret": {"type": "string", "pattern": "^whsec_",
                   "description": "Signs every delivery (Standard Webhooks); shown here once, never again"},
    }, description="The new endpoint, with its secret"),
    "WebhookEndpointCreate": _object(ENDPOINT_FIELDS_IN, required=["url", "events"]),
    "WebhookEndpointUpdate": _object(ENDPOINT_FIELDS_IN, required=[],
                                     description="Any subset of the fields; the secret never changes. "
                                                 "Switching on clears failing_since and disabled_reason"),
    "WebhookAttempt": _object({
        "attempt": {"type": "integer", "minimum": 1},
        "started_at": TIME,
        "finished_at": nullable(TIME),
        "response_code": nullable({"type": "integer"}),
        "error": nullable({"type": "string"}),
    }, description="One try at a delivery"),
    "WebhookDelivery": _object({
        "id": ID,
        "endpoint_id": ID,
        "event_id": {"type": "string", "description": "The webhook-id header the receiver saw (msg_…)"},
        "event_type": {"type": "string"},
        "state": {"type": "string", "enum": list(DELIVERY_STATES)},
        "attempt_count": {"type": "integer", "minimum": 0},
        "response_code": nullable({"type": "integer", "description": "The last attempt's HTTP status"}),
        "last_error": nullable({"type": "string"}),
        "next_attempt_at": nullable(TIME),
        "delivered_at": nullable(TIME),
        "created_at": TIME,
        "attempts": {"type": "array", "items": ref("WebhookAttempt")},
    }, description="One event owed to one endpoint, retried with growing delays until delivered or given up"),
    "WebhookEndpointPage": _page_of("WebhookEndpoint"),
    "WebhookDeliveryPage": _page_of("WebhookDelivery"),
}


def endpoint_json(endpoint, latest=None):
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description or "",
        "events": list(endpoint.events or []),
        "client_id": endpoint.client_id,
        "client_name": endpoint.client.name if endpoint.client is not None else None,
        "is_active": endpoint.is_active,
        "secret_hint": endpoints.secret_hint(endpoint),
        "failing_since": iso(endpoint.failing_since),
        "disabled_at": iso(endpoint.disabled_at),
        "disabled_reason": endpoint.disabled_reason,
        "last_delivery_state": latest.state if latest is not None else None,
        "last_delivery_at": iso(latest.created_at) if latest is not None else None,
        "created_at": iso(endpoint.created_at),
        "updated_at": iso(endpoint.updated_at),
    }


def one_endpoint_json(endpoint):
    return endpoint_json(endpoint, endpoints.latest_deliveries([endpoint.id]).get(endpoint.id))


def delivery_json(delivery):
    return {
        "id": delivery.id,
        "endpoint_id": delivery.endpoint_id,
        "event_id": delivery.event.event_id,
        "event_type": delivery.event.event_type,
        "state": delivery.state,
        "attempt_count": delivery.attempt,
        "response_code": delivery.response_code,
        "last_error": delivery.last_error,
        "next_attempt_at": iso(delivery.next_attempt_at),
        "delivered_at": iso(delivery.delivered_at),
        "created_at": iso(delivery.created_at),
        "attempts": [{"attempt": attempt.attempt, "started_at": iso(attempt.started_at),
                      "finished_at": iso(attempt.finished_at), "response_code": attempt.response_code,
                      "error": attempt.error} for attempt in delivery.attempts],
    }


def endpoint_or_404(endpoint_id):
    return row_or_404(WebhookEndpoint, endpoint_id, "webhook endpoint")


def allow_private():
    return current_app.config["OUTBOUND_WEBHOOKS_ALLOW_PRIVATE"]


def admins_only():
    """Asked after the body is read, so a malformed request is told so whoever sends it."""
    if current_user.role != "admin":
        raise ApiError(403, "not allowed for your role",
                       {"role": f"only admins manage webhook endpoints; you are {current_user.role}"})


@bp.get("/webhook-endpoints")
def list_webhook_endpoints():
    """Every endpoint, oldest first, paginated, with its newest delivery's state."""
    args = QueryArgs(PAGE_ARGS)
    page, per_page = args.page()
    args.done()
    rows, total = paginate(endpoints.endpoints_select(), page, per_page)
    latest = endpoints.latest_deliveries([endpoint.id for (endpoint,) in rows])
    return page_json([endpoint_json(endpoint, latest.get(endpoint.id)) for (endpoint,) in rows], page, per_page,
                     total)


@bp.post("/webhook-endpoints")
def create_webhook_endpoint():
    """Add an endpoint; the answer carries its secret, the only time it is shown."""
    data = check_body(json_body(), ENDPOINT_BODY, required=("url", "events"))
    admins_only()
    endpoint = endpoints.create_endpoint(data, allow_private=allow_private(), actor=acting_user())
    body = {**endpoint_json(endpoint), "secret": endpoint.secret}
    return body, 201, {"Location": url_for("api.get_webhook_endpoint", endpoint_id=endpoint.id),
                       "Cache-Control": "no-store"}


@bp.get("/webhook-endpoints/<int:endpoint_id>")
def get_webhook_endpoint(endpoint_id):
    """One endpoint, without its secret."""
    return one_endpoint_json(endpoint_or_404(endpoint_id))


@bp.patch("/webhook-endpoints/<int:endpoint_id>")
def update_webhook_endpoint(endpoint_id):
    """Change any of an endpoint's fields; a new url is checked as on creation."""
    endpoint = endpoint_or_404(endpoint_id)
    data = check_body(json_body(), ENDPOINT_BODY)
    admins_only()
    endpoints.update_endpoint(endpoint, data, allow_private=allow_private(), actor=acting_user())
    return one_endpoint_json(endpoint)


@bp.delete("/webhook-endpoints/<int:endpoint_id>")
def delete_webhook_endpoint(endpoint_id):
    """Remove an endpoint and its deliveries."""
    endpoint = endpoint_or_404(endpoint_id)
    admins_only()
    endpoints.delete_endpoint(endpoint, actor=acting_user())
    return "", 204


@bp.get("/webhook-endpoints/<int:endpoint_id>/deliveries")
def list_webhook_deliveries(endpoint_id):
    """An endpoint's deliveries, newest first, each with its attempts."""
    endpoint = endpoint_or_404(endpoint_id)
    args = QueryArgs(PAGE_ARGS)
    page, per_page = args.page()
    args.done()
    rows, total = paginate(endpoints.deliveries_select(endpoint.id), page, per_page)
    return page_json([delivery_json(delivery) for (delivery,) in rows], page, per_page, total)


@bp.post("/webhook-deliveries/<int:delivery_id>/redeliver")
def redeliver_webhook_delivery(delivery_id):
    """Queue a delivery to be sent again now, delivered or not."""
    return delivery_json(endpoints.redeliver_delivery(delivery_id)), 202
