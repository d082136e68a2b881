"""The OpenAPI document: well formed, covering every /api route, and true to what the API answers."""
import json
import re
import socket
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from phoneapp.api.openapi import openapi_document
from phoneapp.extensions import db
from phoneapp.jobs import enqueue, on_demand
from phoneapp.models import WorkerHeartbeat, utcnow
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.services.assignments import upsert_assignment
from phoneapp.services.health import run_health_checks
from phoneapp.services.twilio_account import gateway_for
from tests.support.api import ApiClient
from tests.support.fake_twilio import unreachable_twilio
from tests.support.jobs import run_queued_jobs
from tests.support.openapi_block_list import BLOCK_LIST_SCENARIOS
from tests.support.openapi_call_details import CALL_DETAIL_SCENARIOS
from tests.support.openapi_webhook_endpoints import WEBHOOK_ENDPOINT_SCENARIOS

DOC_URI = "urn:phoneapp:openapi"
METHODS = ("get", "put", "post", "patch", "delete")
# Reachable only when two requests race to create the same number; no test can time that reliably.
NOT_EXERCISED = {("/api/phone-assignments", "post"): {"409"}}


@pytest.fixture
def doc(app):
    return openapi_document()


def escape(segment):
    return segment.replace("~", "~0").replace("/", "~1")


def resolve(doc, ref):
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    node = doc
    for segment in ref[2:].split("/"):
        segment = segment.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            assert isinstance(node, dict) and segment in node, f"unresolvable $ref {ref}"
            node = node[segment]
    return node


def walk(node, where=""):
    """Every (json pointer, dict) inside the document."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from walk(value, f"{where}/{escape(str(key))}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{where}/{index}")


def operations(doc):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def flask_template(rule):
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)


def validator(doc, pointer):
    registry = Registry().with_resource(DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{DOC_URI}#{quote(pointer, safe='/~')}"}, registry=registry,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def assert_valid(doc, pointer, instance, what):
    errors = sorted(validator(doc, pointer).iter_errors(instance), key=str)
    assert not errors, f"{what} breaks its documented schema: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5])


# -- the document is well formed -----------------------------------------------------------------

def test_document_is_openapi_3_1(doc):
    assert doc["openapi"] == "3.1.0"
    assert doc["jsonSchemaDialect"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert set(doc) <= {"openapi", "info", "jsonSchemaDialect", "servers", "paths", "webhooks", "components",
                        "security", "tags", "externalDocs"}
    assert all(path.startswith("/") for path in doc["paths"])
    json.dumps(doc)


def test_served_document_is_the_built_one(api, doc):
    assert api.get("/api/openapi.json").get_json() == json.loads(json.dumps(doc))


def test_every_ref_resolves(doc):
    refs = [node["$ref"] for _, node in walk(doc) if "$ref" in node]
    assert len(refs) > 20
    for ref in refs:
        resolve(doc, ref)


def test_every_schema_is_valid_json_schema_2020_12(doc):
    pointers = [f"/components/schemas/{escape(name)}" for name in doc["components"]["schemas"]]
    pointers += [f"{where}/schema" for where, node in walk(doc) if isinstance(node.get("schema"), dict)]
    for pointer in pointers:
        Draft202012Validator.check_schema(resolve(doc, "#" + pointer))
        validator(doc, pointer).is_valid(None)  # follows every $ref inside the schema


def test_operations_are_complete(doc):
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))
    schemes = doc["components"]["securitySchemes"]
    for path, method, op in operations(doc):
        responses = op["responses"]
        assert any(code.startswith("2") for code in responses), (method, path)
        for code, response in responses.items():
            assert re.fullmatch(r"[1-5][0-9][0-9]", code)
            response = resolve(doc, response["$ref"]) if "$ref" in response else response
            assert response["description"]
            assert set(response.get("content", {})) <= {"application/json"}
        for requirement in op.get("security", doc["security"]):
            assert set(requirement) <= set(schemes)
        if op.get("security", doc["security"]):
            assert "401" in responses, (method, path)
        if "requestBody" in op:
            assert {"400", "413", "415"} <= set(responses), (method, path)
        params = [resolve(doc, p["$ref"]) if "$ref" in p else p
                  for p in doc["paths"][path].get("parameters", []) + op.get("parameters", [])]
        in_path = {p["name"] for p in params if p["in"] == "path"}
        assert in_path == set(re.findall(r"{([^}]+)}", path)), (method, path)
        assert all(p["required"] for p in params if p["in"] == "path")
        if in_path:
            assert "404" in responses, (method, path)


def test_every_api_route_is_documented_and_every_documented_one_exists(app, doc):
    served = {(flask_template(rule), method.lower())
              for rule in app.url_map.iter_rules()
              # The old per-client voice URL under /api is Twilio's (a signed webhook), not the JSON API.
              if rule.rule.startswith("/api/") and not rule.endpoint.startswith("webhooks.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, method, _ in operations(doc)}
    assert served - documented == set(), "routes missing from the document"
    assert documented - served == set(), "documented operations with no route"


def example(schema):
    if "enum" in schema:
        return schema["enum"][0]
    if "example" in schema:
        return schema["example"]
    return {"integer": "1", "boolean": "true", "string": "2024-05-01"}[schema["type"]]


def test_every_documented_query_parameter_is_accepted(doc, app, api, make_client, make_number, make_call):
    env = Env(app=app, make_client=make_client, make_number=make_number, make_call=make_call)
    for path, method, op in operations(doc):
        query = [param for param in (resolve(doc, p["$ref"]) if "$ref" in p else p for p in op.get("parameters", []))
                 if param["in"] == "query"]
        # A path that names a row needs one that exists: the operation's scenario makes it.
        values = SCENARIOS[(path, method)](Checker(doc, app, api, path, method), env) if query and "{" in path else {}
        for param in query:
            response = api.get(path.format(**values), query_string={param["name"]: example(param["schema"])})
            assert response.status_code == 200, (path, param["name"], response.get_json())


# -- the document is true: real answers match it -------------------------------------------------

class Checker:
    """Makes requests for one documented operation and holds each answer to the document."""

    def __init__(self, doc, app, api, path, method):
        self.doc, self.app, self.api = doc, app, api
        self.path, self.method = path, method
        self.op = doc["paths"][path][method]
        self.seen = set()

    def __call__(self, expect, values=None, body=None, client=None, **kwargs):
        url = self.path.format(**(values or {}))
        response = (client or self.api).open(self.method.upper(), url, body, **kwargs)
        assert response.status_code == expect, (self.method, url, response.status_code, response.get_data(True))
        code = str(response.status_code)
        assert code in self.op["responses"], f"{self.method} {self.path} answered {code}, which is not documented"
        entry = self.op["responses"][code]
        pointer = f"/paths/{escape(self.path)}/{self.method}/responses/{code}"
        if "$ref" in entry:
            pointer, entry = entry["$ref"][1:], resolve(self.doc, entry["$ref"])
        if "content" in entry:
            assert response.mimetype == "application/json"
            assert_valid(self.doc, f"{pointer}/content/application~1json/schema", response.get_json(),
                         f"{self.method} {self.path} {code}")
        else:
            assert response.data == b""
        for header in entry.get("headers", {}):
            assert header in response.headers, f"documented header {header} missing"
        if body is not None and response.status_code < 300:
            request_schema = f"/paths/{escape(self.path)}/{self.method}/requestBody/content/application~1json/schema"
            assert_valid(self.doc, request_schema, body, f"the accepted body of {self.method} {self.path}")
        self.seen.add(code)
        return response


def sandbox_sid(app, index=0):
    return SandboxAccount.open(app.config["SANDBOX_STATE_PATH"]).numbers()[index]["sid"]


def list_clients(check, env):
    env.make_client()
    check(200)
    check(200, query_string={"is_active": "true", "page": 2})
    check(400, query_string={"per_page": 500})
    return {}


def create_client(check, env):
    check(201, body={"name": "Acme", "phone": "+14155550187", "email": None, "notes": "n", "is_active": True})
    check(400, body={"name": "Acme", "phone": "+1415"})
    return {}


def get_client(check, env):
    values = {"client_id": env.make_client(email="a@acme.test").id}
    check(200, values)
    check(404, {"client_id": 999})
    return values


def update_client(check, env):
    values = {"client_id": env.make_client().id}
    check(200, values, body={"email": None, "notes": None})
    check(400, values, body={"phone": "555"})
    check(404, {"client_id": 999}, body={"name": "x"})
    return values


def delete_client(check, env):
    check(204, {"client_id": env.make_client().id})
    check(404, {"client_id": 999})
    return {"client_id": env.make_client().id}


def list_numbers(check, env):
    acme = env.make_client()
    env.make_number(client=acme)
    env.make_number()
    env.make_number(client=acme, is_active=False, forward_to_number="+14155550199")
    check(200)
    check(400, query_string={"client_id": "x"})
    return {}


def upsert_number(check, env):
    sid = sandbox_sid(env.app)
    check(200, body={"twilio_sid": sid, "client_id": env.make_client().id, "forward_to_number": "+14155550199",
                     "phone_number": None, "friendly_name": "Billboard", "is_active": True})
    check(200, body={"twilio_sid": sid, "client_id": None, "forward_to_number": None})
    check(400, body={"twilio_sid": "PN" + "0" * 32})
    # A second app would share (and, on PostgreSQL, truncate) this one's database; swap the gateway instead.
    sandbox = env.app.extensions.get("phoneapp.twilio")
    env.app.extensions["phoneapp.twilio"] = gateway_for(unreachable_twilio())
    try:
        check(502, body={"twilio_sid": sid})
    finally:
        env.app.extensions["phoneapp.twilio"] = sandbox
    return {}


def get_number(check, env):
    values = {"number_id": env.make_number(client=env.make_client()).id}
    check(200, values)
    check(404, {"number_id": 999})
    return values


def update_number(check, env):
    values = {"number_id": env.make_number(client=env.make_client()).id}
    check(200, values, body={"forward_to_number": "+14155550199", "friendly_name": None, "is_active": False})
    check(200, values, body={"client_id": None, "forward_to_number": None})
    check(400, values, body={"forward_to_number": "12"})
    check(404, {"number_id": 999}, body={})
    return values


def release_number(check, env):
    values = {"number_id": env.make_number(client=env.make_client()).id}
    check(200, values)
    check(404, {"number_id": 999})
    return values


def list_calls(check, env):
    number = env.make_number(client=env.make_client())
    env.make_call(number, status="completed", dial_status="busy", voicemail_url="https://api.twilio.com/r/RE1",
                  duration=12, caller_city="SAN FRANCISCO", routed_by="assignment", forwarded_to="+14155550187")
    env.make_call(None, status="ringing")
    check(200)
    check(200, query_string={"status": "voicemail", "since": "2024-01-01T00:00:00Z"})
    check(400, query_string={"since": "soon"})
    return {}


def get_call(check, env):
    values = {"call_id": env.make_call(env.make_number(), status="completed", dial_status="completed",
                                       answered_at=None, ended_at=None).id}
    check(200, values)
    check(404, {"call_id": 999})
    return values


def get_document(check, env):
    check(200)
    return {}


def get_health(check, env):
    db.session.add(WorkerHeartbeat(name="openapi:1", mode="db", last_seen_at=utcnow()))
    db.session.commit()
    run_health_checks()
    check(200)
    db.session.execute(sa.delete(WorkerHeartbeat))
    db.session.commit()
    check(503)
    return {}


def assigned_sandbox_number(env):
    number, _ = upsert_assignment({"twilio_sid": sandbox_sid(env.app), "client_id": env.make_client().id})
    return number


def with_queue_down(env, action):
    """Run `action` with REDIS_URL pointing at a port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    saved = env.app.config["REDIS_URL"]
    env.app.config["REDIS_URL"] = closed
    try:
        return action()
    finally:
        env.app.config["REDIS_URL"] = saved


def verify_number(check, env):
    values = {"number_id": assigned_sandbox_number(env).id}
    check(202, values)
    check(404, {"number_id": 999})
    with_queue_down(env, lambda: check(503, values))
    return values


def start_test_call(check, env):
    values = {"number_id": assigned_sandbox_number(env).id}
    check(202, values)
    check(409, values)  # the first is still waiting for a worker
    run_queued_jobs(env.app)
    check(202, values, body={"live": False})
    run_queued_jobs(env.app)
    check(400, values, body={"live": "sometimes"})
    check(404, {"number_id": 999})
    with_queue_down(env, lambda: check(503, values))
    return values


def get_test_call(check, env):
    number = assigned_sandbox_number(env)
    test = on_demand.start_test_call(number)
    run_queued_jobs(env.app)
    values = {"test_call_id": test.id}
    assert check(200, values).get_json()["step"] == "answered"
    check(404, {"test_call_id": 999})
    return values


def get_job(check, env):
    run = enqueue("prune_history")
    values = {"job_id": run.id}
    check(200, values)
    run_queued_jobs(env.app)
    assert check(200, values).get_json()["status"] == "succeeded"
    check(404, {"job_id": 999})
    return values


SCENARIOS = {
    ("/api/clients", "get"): list_clients,
    ("/api/clients", "post"): create_client,
    ("/api/clients/{client_id}", "get"): get_client,
    ("/api/clients/{client_id}", "patch"): update_client,
    ("/api/clients/{client_id}", "delete"): delete_client,
    ("/api/phone-assignments", "get"): list_numbers,
    ("/api/phone-assignments", "post"): upsert_number,
    ("/api/phone-assignments/{number_id}", "get"): get_number,
    ("/api/phone-assignments/{number_id}", "patch"): update_number,
    ("/api/phone-assignments/{number_id}", "delete"): release_number,
    ("/api/call-records", "get"): list_calls,
    ("/api/call-records/{call_id}", "get"): get_call,
    ("/api/openapi.json", "get"): get_document,
    ("/api/health", "get"): get_health,
    ("/api/phone-assignments/{number_id}/verify", "post"): verify_number,
    ("/api/phone-assignments/{number_id}/test-call", "post"): start_test_call,
    ("/api/test-calls/{test_call_id}", "get"): get_test_call,
    ("/api/jobs/{job_id}", "get"): get_job,
    **BLOCK_LIST_SCENARIOS,
    **WEBHOOK_ENDPOINT_SCENARIOS,
    **CALL_DETAIL_SCENARIOS,
}


def test_every_documented_operation_has_a_scenario(doc):
    assert {(path, method) for path, method, _ in operations(doc)} == set(SCENARIOS)


class Env:
    def __init__(self, **fixtures):
        self.__dict__.update(fixtures)


@pytest.mark.parametrize("path, method", list(SCENARIOS))
def test_answers_match_the_document(path, method, doc, app, api, make_client, make_number, make_call):
    check = Checker(doc, app, api, path, method)
    env = Env(app=app, make_client=make_client, make_number=make_number, make_call=make_call)
    values = SCENARIOS[(path, method)](check, env)
    if check.op.get("security", doc["security"]):
        check(401, values, client=ApiClient(app.test_client()))
        check(401, values, client=ApiClient(app.test_client(), "pa_revoked-or-never-issued"))
    if "requestBody" in check.op:
        check(415, values, data='{"name": "x"}', content_type="text/plain")
        big = json.dumps({"notes": "x" * app.config["MAX_CONTENT_LENGTH"]})
        check(413, values, data=big, content_type="application/json")
        check(400, values, data="{not json", content_type="application/json")
    documented = set(check.op["responses"])
    assert documented - check.seen == NOT_EXERCISED.get((path, method), set()), "documented but never seen"
    assert any(code.startswith("2") for code in check.seen)
    assert any(code.startswith("4") for code in check.seen)
