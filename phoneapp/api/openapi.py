"""The OpenAPI 3.1 description of /api, served at /api/openapi.json; tests keep it true."""
from flask import current_app, jsonify

from phoneapp.api.blueprint import bp
from phoneapp.api.calls import OUTCOME_FILTERS
from phoneapp.api.checks import SCHEMAS as CHECK_SCHEMAS
from phoneapp.api.health import SCHEMAS as HEALTH_SCHEMAS
from phoneapp.api.inputs import DEFAULT_PER_PAGE, MAX_PER_PAGE
from phoneapp.api.schemas import SCHEMAS, STATUS_FILTER_VALUES, ref
from phoneapp.api.webhook_endpoints import SCHEMAS as WEBHOOK_SCHEMAS
from phoneapp.domain.call_status import OUTCOMES
from phoneapp.models import MAX_ID
from phoneapp.services.call_log import DEFAULT_SORT, MAX_SEARCH_LENGTH, SORTS

# One outcome word, or several joined by commas, as the call log's links write them.
_OUTCOME_WORD = "(?:" + "|".join(OUTCOMES) + ")"
OUTCOME_PATTERN = f"^{_OUTCOME_WORD}(?:,{_OUTCOME_WORD})*$"

JSON = "application/json"


def _json(schema, description):
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description):
    return _json(ref("Error"), description)


RESPONSES = {
    "BadRequest": _error("Invalid input: `details` names each bad body field or query parameter and why. "
                         "Also a cookie-session change without a valid X-CSRFToken header."),
    "Unauthorized": {**_error("No session and no valid bearer token"),
                     "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}},
    "Forbidden": _error("The user's role may not do this"),
    "NotFound": _error("No row with this id"),
    "Conflict": _error("A concurrent request changed the same row; retrying is safe"),
    "PayloadTooLarge": _error("The body exceeds the server's size limit"),
    "UnsupportedMediaType": _error("The body is not sent as application/json"),
    "BadGateway": _error("Twilio refused the change or could not be reached; nothing was saved"),
    "QueueUnavailable": _error("The job queue (Redis) is unreachable, so nothing was queued"),
}


def _param(name, where, schema, description, required=False):
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            "description": description}


ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
PARAMETERS = {
    "Page": _param("page", "query", {"type": "integer", "minimum": 1, "maximum": MAX_ID, "default": 1},
                   "Page number, from 1; a page past the end is empty"),
    "PerPage": _param("per_page", "query",
                      {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE},
                      f"Rows per page, at most {MAX_PER_PAGE}"),
    "ClientId": _param("client_id", "path", ID_SCHEMA, "The client's id"),
    "PhoneAssignmentId": _param("number_id", "path", ID_SCHEMA, "The tracking number's id"),
    "CallRecordId": _param("call_id", "path", ID_SCHEMA, "The call record's id"),
    "JobId": _param("job_id", "path", ID_SCHEMA, "The job's id"),
    "TestCallId": _param("test_call_id", "path", ID_SCHEMA, "The test call's id"),
    "BlockedNumberId": _param("blocked_number_id", "path", ID_SCHEMA, "The block list entry's id"),
    "WebhookEndpointId": _param("endpoint_id", "path", ID_SCHEMA, "The webhook endpoint's id"),
    "WebhookDeliveryId": _param("delivery_id", "path", ID_SCHEMA, "The webhook delivery's id"),
}


def _ref(kind, name):
    return {"$ref": f"#/components/{kind}/{name}"}


def _errors(*codes):
    names = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
             413: "PayloadTooLarge", 415: "UnsupportedMediaType", 502: "BadGateway", 503: "QueueUnavailable"}
    return {str(code): _ref("responses", names[code]) for code in codes}


CHANGE_SECURITY = [{"bearerAuth": []}, {"sessionCookie": [], "csrfToken": []}]
BODY_ERRORS = (400, 401, 413, 415)


def _operation(operation_id, tag, summary, responses, *, parameters=(), body=None, changes=False, description=None):
    operation = {"operationId": operation_id, "tags": [tag], "summary": summary, "responses": responses}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = list(parameters)
    if body:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": ref(body)}}}
    if changes:
        operation["security"] = CHANGE_SECURITY
    return operation


def _page_params(*extra):
    return [_ref("parameters", "Page"), _ref("parameters", "PerPage"), *extra]


def _paths():
    client_id = [_ref("parameters", "ClientId")]
    number_id = [_ref("parameters", "PhoneAssignmentId")]
    call_id = [_ref("parameters", "CallRecordId")]
    filter_client = _param("client_id", "query", ID_SCHEMA, "Only rows of this client")
    return {
        "/api/clients": {
            "get": _operation("listClients", "clients", "List clients by name", {
                "200": _json(ref("ClientPage"), "A page of clients"), **_errors(400, 401),
            }, parameters=_page_params(_param("is_active", "query", {"type": "boolean"},
                                              "Only active (true) or inactive (false) clients"))),
            "post": _operation("createClient", "clients", "Create a client", {
                "201": {**_json(ref("Client"), "The new client"),
                        "headers": {"Location": {"schema": {"type": "string"}, "description": "The client's URL"}}},
                **_errors(*BODY_ERRORS),
            }, body="ClientCreate", changes=True),
        },
        "/api/clients/{client_id}": {
            "parameters": client_id,
            "get": _operation("getClient", "clients", "One client", {
                "200": _json(ref("Client"), "The client"), **_errors(401, 404)}),
            "patch": _operation("updateClient", "clients", "Change any of a client's fields", {
                "200": _json(ref("Client"), "The client as changed"), **_errors(*BODY_ERRORS, 404),
            }, body="ClientUpdate", changes=True),
            "delete": _operation("deleteClient", "clients", "Delete a client", {
                "204": {"description": "Deleted; its tracking numbers are unassigned, their call history stays"},
                **_errors(401, 404),
            }, changes=True),
        },
        "/api/phone-assignments": {
            "get": _operation("listPhoneAssignments", "phone-assignments",
                              "List tracking numbers with their client and status", {
                                  "200": _json(ref("PhoneAssignmentPage"), "A page of tracking numbers, by number"),
                                  **_errors(400, 401),
                              }, parameters=_page_params(
                                  filter_client,
                                  _param("is_active", "query", {"type": "boolean"}, "Only switched on (true) or off"))),
            "post": _operation(
                "upsertPhoneAssignment", "phone-assignments", "Create or update a tracking number by twilio_sid", {
                    "200": _json(ref("PhoneAssignment"), "The tracking number as saved (created or updated)"),
                    **_errors(*BODY_ERRORS, 409, 502),
                }, body="PhoneAssignmentUpsert", changes=True,
                description="Idempotent: the same body again gives the same row and writes no second audit "
                            "event. The number is read from the Twilio account (400 naming twilio_sid if it "
                            "is not there) and its voice, fallback and status URLs are pointed at phoneapp "
                            "before anything is saved; when Twilio refuses or cannot be reached the answer "
                            "is 502 and nothing is saved."),
        },
        "/api/phone-assignments/{number_id}": {
            "parameters": number_id,
            "get": _operation("getPhoneAssignment", "phone-assignments", "One tracking number", {
                "200": _json(ref("PhoneAssignment"), "The tracking number"), **_errors(401, 404)}),
            "patch": _operation("updatePhoneAssignment", "phone-assignments", "Change a tracking number", {
                "200": _json(ref("PhoneAssignment"), "The tracking number as changed"),
                **_errors(*BODY_ERRORS, 404),
            }, body="PhoneAssignmentUpdate", changes=True,
                description="Any subset of client_id, forward_to_number, is_active, friendly_name. null clears "
                            "an optional field: forward_to_number null means calls go to the client's phone."),
            "delete": _operation("releasePhoneAssignment", "phone-assignments", "Release a tracking number", {
                "200": _json(ref("PhoneAssignment"), "The number, now unassigned and inactive"),
                **_errors(401, 404),
            }, changes=True, description="Unassigns and deactivates the number. The row stays (the number is "
                                         "still rented from Twilio) and so does its call history."),
        },
        "/api/phone-assignments/{number_id}/verify": {
            "parameters": number_id,
            "post": _operation("verifyPhoneAssignment", "phone-assignments",
                               "Queue a check of the number's Twilio configuration", {
                                   "202": _json(ref("VerifyQueued"), "Queued; the number shows verifying until done"),
                                   **_errors(401, 404, 503),
                               }, changes=True,
                               description="A worker compares the number's voice URL, fallback URL and status "
                                           "callback with phoneapp's and, when AUTO_FIX_WEBHOOKS is on, fixes a "
                                           "difference (audited). Poll the job at /api/jobs/{job_id}."),
        },
        "/api/phone-assignments/{number_id}/test-call": {
            "parameters": number_id,
            "post": {**_operation("startTestCall", "phone-assignments", "Queue a test call", {
                "202": _json(ref("TestCall"), "Queued; poll it at /api/test-calls/{id}"),
                **_errors(400, 401, 404, 413, 415, 503),
                "409": _error("A test of this number is already running, so none was started; "
                              "details.test_call is the running one's id"),
            }, changes=True, description="The dry check (Twilio's configuration, then phoneapp's own answer) and, "
                                         "unless live is false, a call from TEST_CALLER_ID to the number, followed "
                                         "step by step to the forwarded call's result. While a test of the number "
                                         "is under way no second one starts: 409, with the running test's id in "
                                         "details.test_call."),
                     "requestBody": {"required": False, "content": {JSON: {"schema": ref("TestCallStart")}}}},
        },
        "/api/test-calls/{test_call_id}": {
            "parameters": [_ref("parameters", "TestCallId")],
            "get": _operation("getTestCall", "phone-assignments", "A test call's progress", {
                "200": _json(ref("TestCall"), "The test, step by step"), **_errors(401, 404)}),
        },
        "/api/jobs/{job_id}": {
            "parameters": [_ref("parameters", "JobId")],
            "get": _operation("getJob", "jobs", "A queued job's progress", {
                "200": _json(ref("Job"), "The job"), **_errors(401, 404)}),
        },
        "/api/call-records": {
            "get": _operation("listCallRecords", "call-records", "List calls, newest first unless sorted", {
                "200": _json(ref("CallRecordPage"), "A page of calls, in `sort`'s order"), **_errors(400, 401),
            }, parameters=_page_params(
                _param("phone_assignment_id", "query", ID_SCHEMA, "Only calls to this tracking number"),
                {**filter_client, "description": "Only calls to numbers now assigned to this client"},
                _param("status", "query", {"type": "string", "enum": STATUS_FILTER_VALUES},
                       "A Twilio call status, or one of the outcomes " + ", ".join(OUTCOME_FILTERS)
                       + " (as in each record's outcome field)"),
                _param("outcome", "query",
                       {"type": "string", "pattern": OUTCOME_PATTERN, "example": "voicemail,missed"},
                       "Only calls with this outcome, or any of several joined by commas (voicemail,missed): "
                       + ", ".join(OUTCOMES)),
                _param("since", "query", {"type": "string"},
                       "Calls started at or after this ISO 8601 date or date-time (without an offset: UTC)"),
                _param("until", "query", {"type": "string"},
                       "Calls started before this ISO 8601 date or date-time (without an offset: UTC)"),
                _param("is_test", "query", {"type": "boolean"}, "Only test calls (true) or real ones (false)"),
                _param("q", "query", {"type": "string", "maxLength": MAX_SEARCH_LENGTH, "example": "(415) 555"},
                       "Part of the caller's number, typed in any format (its digits are looked for), or of the "
                       "caller's name, case-insensitive"),
                _param("sort", "query", {"type": "string", "enum": list(SORTS), "default": DEFAULT_SORT},
                       "The order: by start or duration, a leading - for descending; ties go by id the same way, "
                       "calls without a duration come last"),
            )),
        },
        "/api/call-records/{call_id}": {
            "parameters": call_id,
            "get": _operation("getCallRecord", "call-records", "One call", {
                "200": _json(ref("CallRecord"), "The call"), **_errors(401, 404)}),
            "patch": _operation("updateCallRecord", "call-records", "Change a call's notes and tags", {
                "200": _json(ref("CallRecord"), "The call as changed"), **_errors(*BODY_ERRORS, 404),
            }, body="CallRecordUpdate", changes=True,
                description="Only notes and tags: any other field is refused with 400 naming it, and so is a "
                            "tag that is not one short word or more than 20 tags; nothing is saved then."),
        },
        "/api/call-records/{call_id}/events": {
            "parameters": call_id,
            "get": _operation("listCallEvents", "call-records", "The call's timeline", {
                "200": _json(ref("CallEventPage"), "Every webhook and callback of the call, in the order "
                                                   "received, repeats and late ones included and marked"),
                **_errors(400, 401, 404),
            }, parameters=_page_params()),
        },
        "/api/health": {
            "get": _operation("getHealth", "health", "Each component's health", {
                "200": _json(ref("Health"), "Every component is ok"),
                "503": _json(ref("Health"), "At least one component is down; its detail says why"),
                **_errors(401),
            }, description="The database, Redis and the worker are checked as you ask; the Twilio API and the "
                           "webhooks (open alerts of numbers whose Twilio configuration differs, that left the "
                           "account or that Twilio reported webhook errors for) are the worker's latest check, "
                           "not ok once older than three check intervals. While the database is down nobody "
                           "can be authenticated: the answer is a 503 that says so, and nothing else."),
        },
        "/api/blocked-numbers": {
            "get": _operation("listBlockedNumbers", "blocked-numbers", "List the block list, oldest first", {
                "200": _json(ref("BlockedNumberPage"), "A page of entries"), **_errors(400, 401),
            }, parameters=_page_params({**filter_client, "description": "Only this client's own entries (not "
                                                                        "those for every client)"})),
            "post": _operation("createBlockedNumber", "blocked-numbers", "Block a number or a prefix", {
                "201": _json(ref("BlockedNumber"), "The new entry; calls from it are rejected from now on"),
                **_errors(*BODY_ERRORS),
            }, body="BlockedNumberCreate", changes=True,
                description="Refused with 400 naming the field: a number that is neither a phone number nor a "
                            "prefix, an unknown client_id, or an entry already on the list for the same "
                            "clients (details.number)."),
        },
        "/api/blocked-numbers/{blocked_number_id}": {
            "parameters": [_ref("parameters", "BlockedNumberId")],
            "delete": _operation("deleteBlockedNumber", "blocked-numbers", "Take an entry off the block list", {
                "204": {"description": "Deleted; its callers get through again"}, **_errors(401, 404),
            }, changes=True),
        },
        **_webhook_paths(),
        "/api/openapi.json": {
            "get": _operation("getOpenApiDocument", "meta", "This document", {
                "200": _json({"type": "object"}, "The OpenAPI document"), **_errors(401)}),
        },
    }


def _webhook_paths():
    endpoint_id = [_ref("parameters", "WebhookEndpointId")]
    admins = "Admins only: staff get 403. "
    return {
        "/api/webhook-endpoints": {
            "get": _operation("listWebhookEndpoints", "webhook-endpoints", "List outbound webhook endpoints", {
                "200": _json(ref("WebhookEndpointPage"), "A page of endpoints, oldest first"), **_errors(400, 401),
            }, parameters=_page_params()),
            "post": _operation("createWebhookEndpoint", "webhook-endpoints", "Add an outbound webhook endpoint", {
                "201": {**_json(ref("WebhookEndpointCreated"), "The new endpoint with its secret, shown only here"),
                        "headers": {"Location": {"schema": {"type": "string"}, "description": "The endpoint's URL"}}},
                **_errors(*BODY_ERRORS, 403),
            }, body="WebhookEndpointCreate", changes=True,
                description=admins + "Refused with 400 naming the field: a url that is not https:// (http:// only "
                                     "on this machine), whose host is a metadata service or resolves to a loopback, "
                                     "private or link-local address (unless OUTBOUND_WEBHOOKS_ALLOW_PRIVATE), "
                                     "no events or an unknown one, an unknown client_id."),
        },
        "/api/webhook-endpoints/{endpoint_id}": {
            "parameters": endpoint_id,
            "get": _operation("getWebhookEndpoint", "webhook-endpoints", "One endpoint, without its secret", {
                "200": _json(ref("WebhookEndpoint"), "The endpoint"), **_errors(401, 404)}),
            "patch": _operation("updateWebhookEndpoint", "webhook-endpoints", "Change an endpoint", {
                "200": _json(ref("WebhookEndpoint"), "The endpoint as changed"), **_errors(*BODY_ERRORS, 403, 404),
            }, body="WebhookEndpointUpdate", changes=True,
                description=admins + "A new url is checked as on creation; the secret never changes."),
            "delete": _operation("deleteWebhookEndpoint", "webhook-endpoints", "Remove an endpoint", {
                "204": {"description": "Deleted, with its deliveries"}, **_errors(401, 403, 404),
            }, changes=True, description=admins.strip()),
        },
        "/api/webhook-endpoints/{endpoint_id}/deliveries": {
            "parameters": endpoint_id,
            "get": _operation("listWebhookDeliveries", "webhook-endpoints", "An endpoint's deliveries, newest first", {
                "200": _json(ref("WebhookDeliveryPage"), "A page of deliveries with their attempts"),
                **_errors(400, 401, 404),
            }, parameters=_page_params()),
        },
        "/api/webhook-deliveries/{delivery_id}/redeliver": {
            "parameters": [_ref("parameters", "WebhookDeliveryId")],
            "post": _operation("redeliverWebhookDelivery", "webhook-endpoints", "Send a delivery again", {
                "202": _json(ref("WebhookDelivery"), "Pending again: a worker sends it with the same event id"),
                **_errors(400, 401, 404),
            }, changes=True, description="Staff and admins. Refused with 400 (details.endpoint) while the "
                                         "endpoint is switched off."),
        },
    }


def openapi_document():
    """The whole document as Python data."""
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "phoneapp API",
            "version": "1.0.0",
            "description": (
                "Tracking numbers, the clients they forward to, and the calls. Authenticate with "
                "`Authorization: Bearer <token>` (from `flask users token EMAIL`) or a logged-in session; "
                "a session must also send its CSRF token as `X-CSRFToken` on POST, PATCH and DELETE. "
                "Errors are `{\"error\": ..., \"details\": {field: reason}}`. Unknown body fields and "
                "unknown query parameters are refused with 400. Times are UTC, ISO 8601 with `Z`."
            ),
        },
        "tags": [{"name": "clients"}, {"name": "phone-assignments"}, {"name": "call-records"}, {"name": "health"},
                 {"name": "blocked-numbers"}, {"name": "jobs"}, {"name": "webhook-endpoints"}, {"name": "meta"}],
        "security": [{"bearerAuth": []}, {"sessionCookie": []}],
        "paths": _paths(),
        "components": {
            "schemas": {**SCHEMAS, **CHECK_SCHEMAS, **HEALTH_SCHEMAS, **WEBHOOK_SCHEMAS},
            "responses": RESPONSES,
            "parameters": PARAMETERS,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "An API token; revoked or unknown tokens get 401"},
                "sessionCookie": {"type": "apiKey", "in": "cookie",
                                  "name": current_app.config.get("SESSION_COOKIE_NAME", "session"),
                                  "description": "The browser session of a logged-in user"},
                "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                              "description": "The page's csrf-token; needed with the session cookie for changes"},
            },
        },
    }


@bp.get("/openapi.json")
def openapi_document_view():
    """This API's OpenAPI 3.1 document (public)."""
    return jsonify(openapi_document())
