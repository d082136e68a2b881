"""Schema-driven fuzzing of the JSON API: whatever a script sends, no 500 and no answer the document does not allow.

schemathesis reads the app's own /api/openapi.json and sends every documented operation valid and invalid input
(its coverage cases, then random ones), authenticated with an API token as a script would be. Each operation is
its own test, on a freshly seeded database; generated ids, phone numbers and SIDs are sometimes swapped for real
ones, so that the paths where a row is found, a client created or a number assigned are fuzzed too, not only
the refusals.
"""
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from phoneapp.extensions import db
from phoneapp.jobs import enqueue
from phoneapp.jobs.on_demand import start_test_call
from phoneapp.models import WorkerHeartbeat, utcnow
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.services import users
from phoneapp.services.assignments import upsert_assignment
from phoneapp.services.block_list_changes import add_blocked_number
from phoneapp.services.health import run_health_checks
from phoneapp.services.webhook_endpoints import create_endpoint
from tests.support.jobs import run_queued_jobs
from tests.support.webhook_endpoint_rows import failed_delivery

OPERATION_IDS = (
    "listClients", "createClient", "getClient", "updateClient", "deleteClient",
    "listPhoneAssignments", "upsertPhoneAssignment", "getPhoneAssignment", "updatePhoneAssignment",
    "releasePhoneAssignment", "verifyPhoneAssignment", "startTestCall", "getTestCall", "getJob",
    "listCallRecords", "getCallRecord", "updateCallRecord", "listCallEvents", "getHealth", "getOpenApiDocument",
    "listBlockedNumbers", "createBlockedNumber", "deleteBlockedNumber",
    "listWebhookEndpoints", "createWebhookEndpoint", "getWebhookEndpoint", "updateWebhookEndpoint",
    "deleteWebhookEndpoint", "listWebhookDeliveries", "redeliverWebhookDelivery",
)
HTTP_METHODS = ("get", "put", "post", "patch", "delete")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
MAX_EXAMPLES = 30
# Fixed seeds and no example database: CI runs the same cases every time, and a failure replays locally.
FUZZ_SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                HealthCheck.filter_too_much, HealthCheck.data_too_large])


@pytest.fixture
def known(app, make_client, make_number, make_call):
    """A small agency's data; returns, by field name, the real values generated input may borrow."""
    acme = make_client(name="Acme Plumbing", phone="+14155550187", email="office@acme.test")
    bright = make_client(name="Brightside Dental", phone="+14155550142", notes="front desk")
    closed = make_client(name="Closed Co", phone="+442071838750", is_active=False)
    sids = [number["sid"] for number in SandboxAccount.open(app.config["SANDBOX_STATE_PATH"]).numbers()]
    sandboxed, _ = upsert_assignment({"twilio_sid": sids[0], "client_id": acme.id})
    overridden = make_number(client=bright, forward_to_number="+14155550199", friendly_name="Billboard")
    idle = make_number(is_active=False)
    calls = [
        make_call(sandboxed, status="completed", dial_status="completed", duration=42, routed_by="assignment",
                  forwarded_to="+14155550187", caller_city="SAN FRANCISCO"),
        make_call(overridden, status="completed", dial_status="busy", routed_by="assignment",
                  voicemail_url="https://api.twilio.com/r/RE1", voicemail_duration=7),
        make_call(None, status="ringing", from_number="anonymous", routed_by="message"),
    ]
    finished = start_test_call(sandboxed, live=True)
    run_queued_jobs(app)
    waiting = start_test_call(sandboxed, live=False)
    job = enqueue("prune_history")
    blocked = [add_blocked_number("+19005550100", reason="robocalls"), add_blocked_number("+1900*", acme.id)]
    receiver = create_endpoint({"url": "https://hooks.example.invalid/calls", "events": ["call.completed"]},
                               allow_private=False)
    delivery = failed_delivery(receiver.id)
    # Healthy, so GET /api/health answers 200: not_a_server_error counts its documented 503 as a failure.
    db.session.add(WorkerHeartbeat(name="fuzz:1", mode="db", last_seen_at=utcnow()))
    db.session.commit()
    run_health_checks()
    phones = ["+14155550187", "(415) 555-0142", "+442071838750"]
    number_ids = [sandboxed.id, overridden.id, idle.id]
    return {
        "client_id": [acme.id, bright.id, closed.id], "number_id": number_ids, "phone_assignment_id": number_ids,
        "call_id": [call.id for call in calls], "test_call_id": [finished.id, waiting.id], "job_id": [job.id],
        "phone": phones, "forward_to_number": phones, "phone_number": [sandboxed.phone_number],
        "twilio_sid": sids,
        "blocked_number_id": [entry.id for entry in blocked], "number": ["+19005550101", "+1888*", "+14155550142"],
        "endpoint_id": [receiver.id], "delivery_id": [delivery.id],
    }


def _borrowing(known, values):
    """`values` as generated, or with some of its fields swapped for real ones."""
    if not isinstance(values, dict):
        return st.just(values)
    return st.fixed_dictionaries({
        name: st.one_of(st.just(value), st.sampled_from(known[name])) if name in known else st.just(value)
        for name, value in values.items()
    })


@pytest.fixture
def bearer(staff):
    return {"Authorization": f"Bearer {users.issue_token(staff)}"}


def served_document(app, bearer):
    response = app.test_client().get("/api/openapi.json", headers=bearer)
    assert response.status_code == 200, response.data
    return response.get_json()


def test_every_documented_operation_is_fuzzed(app, bearer):
    documented = [operation["operationId"] for item in served_document(app, bearer)["paths"].values()
                  for method, operation in item.items() if method in HTTP_METHODS]
    assert sorted(documented) == sorted(OPERATION_IDS)


def _only(document, operation_id):
    """`document` with one operation left, and the methods no route of its path answers."""
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if item.get(method, {}).get("operationId") == operation_id:
                kept = {key: value for key, value in item.items() if key not in HTTP_METHODS or key == method}
                unrouted = [other for other in HTTP_METHODS if other not in item]
                return {**document, "paths": {path: kept}}, unrouted
    raise AssertionError(f"{operation_id} is not in the served document")


@pytest.fixture
def api_schema(app, known, bearer, operation_id):
    document, unrouted = _only(served_document(app, bearer), operation_id)
    # Only truly unrouted methods are probed for a 405: the other operations of the path are real routes.
    config = SchemathesisConfig.from_dict({"phases": {"coverage": {"unexpected-methods": [*unrouted, "trace"]}}})
    loaded = schemathesis.openapi.from_dict(document, config=config)
    loaded.app = app

    @loaded.hook
    def flatmap_path_parameters(context, path_parameters):
        return _borrowing(known, path_parameters)

    @loaded.hook
    def flatmap_query(context, query):
        return _borrowing(known, query)

    @loaded.hook
    def flatmap_body(context, body):
        return _borrowing(known, body)

    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.parametrize("operation_id", OPERATION_IDS)
@schema.parametrize()
@FUZZ_SETTINGS
def test_no_answer_is_a_server_error_or_off_the_document(case, app, bearer):
    # The app's test client gives each request its own app context and database session, as a server would.
    case.call_and_validate(session=app.test_client(), headers=bearer, checks=CHECKS)
