"""GET /api/health: every component's health; 200 when all are ok, 503 when anything is down."""
from flask import g, jsonify, request

from phoneapp.api.blueprint import bp
from phoneapp.models import HEALTH_COMPONENTS
from phoneapp.services.health import all_ok, check_database, current_health, outage_report
from phoneapp.services.serializers import iso

_TIME = {"type": "string", "format": "date-time", "description": "UTC, ISO 8601 with Z",
         "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"}
# For the OpenAPI document's components.
SCHEMAS = {
    "ComponentHealth": {
        "type": "object", "additionalProperties": False,
        "required": ["component", "ok", "latency_ms", "detail", "checked_at"],
        "description": "One component: the database, Redis, the worker and the disk (the instance folder: "
                       "writable, and with room) are checked as you ask; the Twilio API and webhooks are the "
                       "worker's latest check, which counts as not ok once it is stale",
        "properties": {
            "component": {"type": "string", "enum": list(HEALTH_COMPONENTS)},
            "ok": {"type": "boolean"},
            "latency_ms": {"anyOf": [{"type": "number", "minimum": 0}, {"type": "null"}],
                           "description": "How long the check took, when it talks to something"},
            "detail": {"type": "string", "description": "Why it is ok or down, in a line"},
            "checked_at": {"anyOf": [_TIME, {"type": "null"}], "description": "null: never checked"},
        },
    },
    "Health": {
        "type": "object", "additionalProperties": False, "required": ["ok", "components"],
        "properties": {
            "ok": {"type": "boolean", "description": "true when every component is ok"},
            "components": {"type": "array", "items": {"$ref": "#/components/schemas/ComponentHealth"},
                           "minItems": len(HEALTH_COMPONENTS), "maxItems": len(HEALTH_COMPONENTS)},
        },
    },
}


def component_json(component):
    return {"component": component.component, "ok": component.ok, "latency_ms": component.latency_ms,
            "detail": component.detail, "checked_at": iso(component.checked_at)}


def health_response(components):
    response = jsonify(ok=all_ok(components), components=[component_json(c) for c in components])
    response.status_code = 200 if all_ok(components) else 503
    # A monitor polling this must see each answer fresh, never a proxy's copy.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.before_app_request
def answer_while_database_is_down():
    """Checking who asks needs the database; with it down, a 503 saying so beats the 500 the login would give."""
    if request.endpoint != "api.health":
        return None
    database = check_database()
    if not database.ok:
        return health_response(outage_report(database))
    g.health_database = database
    return None


@bp.get("/health")
def health():
    """The latest health of each component."""
    return health_response(current_health(g.pop("health_database", None)))
