"""Security: headers on every response, request size limits, and secrets never shown nor logged."""
import base64
import io
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import Alert, ApiToken, CallRecord, JobRun, PhoneAssignment, User, WebhookDelivery
from phoneapp.services import assignments, clients, users
from phoneapp.services.alerts import raise_alert
from phoneapp.services.health import run_health_checks
from phoneapp.services.notifications import send_pending_notifications
from phoneapp.services.outbound_webhooks import queue_event
from phoneapp.services.webhook_endpoints import create_endpoint
from tests.support.api import ApiClient
from tests.support.apps import make_app
from tests.support.fake_twilio import running_fake_twilio, unreachable_twilio
from tests.support.pages import ADMIN, HX, STAFF, login, soup
from tests.support.ports import free_port
from tests.support.webhooks import sign

EXPECTED_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "font-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
TRACKING = "+14155550100"
CALLER = "+12025550143"


def csp_of(response):
    header = response.headers.get("Content-Security-Policy", "")
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


def assert_security_headers(response, what):
    assert csp_of(response) == EXPECTED_CSP, what
    assert response.headers.get("X-Content-Type-Options") == "nosniff", what
    assert response.headers.get("X-Frame-Options") == "DENY", what
    assert response.headers.get("Referrer-Policy") == "same-origin", what
    permissions = response.headers.get("Permissions-Policy", "")
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in permissions, (what, permissions)


def voice_params(call_sid="CA" + "1" * 32, to=TRACKING, **extra):
    return {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "From": CALLER, "To": to, "CallStatus": "ringing",
            "Direction": "inbound", "ApiVersion": "2010-04-01", **extra}


def signed_headers(app, path, params):
    return {"X-Twilio-Signature": sign(app, app.config["PUBLIC_BASE_URL"] + path, params)}


def row_counts():
    """Rows in every table: a refused request must leave all of them as they were."""
    db.session.expire_all()
    return {table.name: db.session.scalar(sa.select(sa.func.count()).select_from(table))
            for table in db.metadata.sorted_tables}


@pytest.fixture
def number(make_client, make_number):
    return make_number(phone_number=TRACKING, client=make_client())


# -- headers ---------------------------------------------------------------------------------------------------


def test_every_kind_of_response_carries_the_security_headers(app, admin_client, number):
    responses = {
        "page": admin_client.get("/numbers"),
        "fragment": admin_client.get("/partials/numbers/status-counts", headers=HX),
        "API": admin_client.get("/api/clients"),
        "API 404": admin_client.get("/api/clients/999"),
        "webhook": admin_client.post("/twilio/voice", data=voice_params(),
                                     headers=signed_headers(app, "/twilio/voice", voice_params())),
        "forged webhook": admin_client.post("/twilio/voice", data=voice_params(), headers={"X-Twilio-Signature": "x"}),
        "static": admin_client.get("/static/app.css"),
        "vendored script": admin_client.get("/static/vendor/htmx-2.0.11/htmx.min.js"),
        "404 page": admin_client.get("/no-such-page"),
        "405": admin_client.get("/logout"),
    }
    anonymous = app.test_client()
    responses["login page"] = anonymous.get("/login")
    responses["API 401"] = anonymous.get("/api/clients")
    responses["redirect to login"] = anonymous.get("/numbers")
    for what, response in responses.items():
        assert response.status_code < 500, what
        assert_security_headers(response, what)
        # Plain http here: Strict-Transport-Security is only ever sent over https.
        assert "Strict-Transport-Security" not in response.headers, what


def test_answers_for_a_signed_in_user_and_twiml_are_kept_out_of_caches(app, admin_client, admin, number):
    token = users.issue_token(admin)
    private = {
        "page": admin_client.get("/numbers"),
        "fragment": admin_client.get("/partials/numbers/status-counts", headers=HX),
        "export": admin_client.get("/calls/export.csv", buffered=True),
        "API by session": admin_client.get("/api/clients"),
        "API by token": app.test_client().get("/api/clients", headers={"Authorization": f"Bearer {token}"}),
        "API refused": app.test_client().get("/api/clients"),
        "404 page": admin_client.get("/no-such-page"),
        # TwiML names the phone the call is forwarded to.
        "TwiML": app.test_client().post("/twilio/voice", data=voice_params(),
                                         headers=signed_headers(app, "/twilio/voice", voice_params())),
    }
    for what, response in private.items():
        assert response.headers.get("Cache-Control") == "no-store", what
    assert "no-store" not in admin_client.get("/static/app.css").headers.get("Cache-Control", ""), "static"
    # Nothing private on the login form: back and forward may keep it.
    assert app.test_client().get("/login").headers.get("Cache-Control") is None


def test_an_unexpected_error_still_carries_the_headers(app, admin_client, monkeypatch):
    def broken():
        raise RuntimeError("boom")

    monkeypatch.setitem(app.view_functions, "dashboard.dashboard", broken)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    response = admin_client.get("/")
    assert response.status_code == 500
    assert_security_headers(response, "500 page")


def test_hsts_only_for_an_https_public_address_and_only_over_https(tmp_path, migrated_postgres):
    https_app = make_app(tmp_path / "https")
    with https_app.app_context():
        client = https_app.test_client()
        response = client.get("/login", base_url="https://calls.example.test")
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
        # Behind the proxy that ends TLS, which says so in X-Forwarded-Proto.
        response = client.get("/login", headers={"X-Forwarded-Proto": "https"})
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert "Strict-Transport-Security" not in client.get("/login").headers
        db.engine.dispose()

    http_app = make_app(tmp_path / "http", PUBLIC_BASE_URL="http://localhost:5000")
    with http_app.app_context():
        response = http_app.test_client().get("/login", base_url="https://localhost:5000")
        assert "Strict-Transport-Security" not in response.headers
        db.engine.dispose()


def session_cookie_after_login(app, base_url):
    with app.app_context():
        users.create_user(ADMIN[0], ADMIN[1], role="admin")
        client = app.test_client()
        page = client.get("/login", base_url=base_url)
        assert page.status_code == 200, "no redirect to https: TLS is the proxy's business"
        token = soup(page).find("input", {"name": "csrf_token"})["value"]
        response = client.post("/login", base_url=base_url, headers={"Referer": f"{base_url}/login"},
                               data={"email": ADMIN[0], "password": ADMIN[1], "csrf_token": token})
        assert response.status_code == 303, response.data
        cookies = [value for name, value in response.headers.items() if name == "Set-Cookie"]
        db.session.remove()
        db.engine.dispose()
        return next(cookie for cookie in cookies if cookie.startswith("session="))


def test_session_cookie_flags_follow_public_base_url_not_the_headers_library(tmp_path, migrated_postgres):
    cookie = session_cookie_after_login(make_app(tmp_path / "https"), "https://calls.example.test")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie

    # The http:// sandbox demo: a Secure cookie would never come back and nobody could log in.
    http_app = make_app(tmp_path / "http", PUBLIC_BASE_URL="http://localhost:5000")
    cookie = session_cookie_after_login(http_app, "http://localhost:5000")
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert http_app.config["SESSION_COOKIE_SECURE"] is False


MAIN_PAGES = ("dashboard.dashboard", "numbers.numbers", "clients.clients", "calls.calls", "alerts.index",
              "health.index", "users.index")


def test_pages_need_nothing_the_policy_refuses(app, admin_client, number, request_context):
    """No inline script, style or event handler, nothing from elsewhere: the browser test sees it run."""
    urls = [url_for(endpoint) for endpoint in MAIN_PAGES]
    urls += [url_for("numbers.number_detail", number_id=number.id),
             url_for("clients.client_detail", client_id=number.client_id),
             url_for("users.detail", user_id=db.session.scalars(sa.select(User.id)).first())]
    pages = {url: admin_client.get(url) for url in urls}
    pages["/login"] = app.test_client().get("/login")
    for url, response in pages.items():
        assert response.status_code == 200, url
        page = soup(response)
        assert page.find("style") is None, url
        for script in page.find_all("script"):
            assert script.get("src", "").startswith("/static/") and not script.string, (url, script)
        for link in page.find_all("link"):
            assert link["href"].startswith("/static/"), (url, link)
        for element in page.find_all(True):
            for attribute, value in element.attrs.items():
                assert attribute != "style" and not attribute.startswith(("on", "hx-on")), (url, element.name)
                assert "javascript:" not in str(value).lower(), (url, element.name)
                if attribute in ("hx-vals", "hx-vars"):
                    assert "js:" not in value, (url, element.name)
        config = json.loads(page.find("meta", {"name": "htmx-config"})["content"])
        # htmx would otherwise add an inline <style> for its indicators, which the policy blocks.
        assert config["includeIndicatorStyles"] is False and config["allowEval"] is False, url


# -- request size limits -------------------------------------------------------------------------------------


def test_request_size_limits(app):
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert app.config["MAX_FORM_MEMORY_SIZE"] == 64 * 1024
    assert app.config["MAX_FORM_PARTS"] == 100


def too_big(app):
    return "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)


def test_too_large_form_gets_a_plain_page_and_writes_nothing(app, admin_client, request_context):
    token = soup(admin_client.get("/clients")).find("input", {"name": "csrf_token"})["value"]
    before = row_counts()
    response = admin_client.post("/clients", data={"csrf_token": token, "name": "Big", "phone": "+14155550187",
                                                   "notes": too_big(app)})
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    text = soup(response).get_text(" ", strip=True)
    assert "Request too large" in text
    assert "The request is too large: phoneapp accepts at most 1 MB in one request and at most 100 form fields." in text
    assert row_counts() == before


def test_too_large_htmx_request_gets_a_fragment(app, admin_client, number):
    token = soup(admin_client.get("/numbers")).find("meta", {"name": "csrf-token"})["content"]
    before = row_counts()
    response = admin_client.post(f"/partials/numbers/{number.id}", headers={**HX, "X-CSRFToken": token},
                                 data={"friendly_name": too_big(app)})
    assert response.status_code == 413
    fragment = soup(response).find(class_="fragment-error")
    assert fragment is not None and "The request is too large" in fragment.get_text()
    assert row_counts() == before


def test_too_large_api_request_gets_json(app, admin, number):
    api = ApiClient(app.test_client(), users.issue_token(admin))
    before = row_counts()
    for method, path in (("POST", "/api/clients"), ("PATCH", f"/api/clients/{number.client_id}"),
                         ("DELETE", f"/api/clients/{number.client_id}"),
                         ("DELETE", f"/api/phone-assignments/{number.id}")):
        response = api.open(method, path, data=json.dumps({"notes": too_big(app)}), content_type="application/json")
        assert response.status_code == 413, (method, path)
        assert response.get_json() == {"error": "request body too large",
                                       "details": {"body": "at most 1048576 bytes"}}, (method, path)
    assert row_counts() == before


def test_too_large_webhook_gets_text_and_writes_nothing(app, client, number):
    params = voice_params(FromCity=too_big(app))
    before = row_counts()
    response = client.post("/twilio/voice", data=params, headers=signed_headers(app, "/twilio/voice", params))
    assert response.status_code == 413
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True).startswith("The request is too large")
    assert row_counts() == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CallRecord)) == 0


def test_too_large_login_is_refused_before_it_counts_as_a_try(app, client, admin):
    token = soup(client.get("/login")).find("input", {"name": "csrf_token"})["value"]
    before = row_counts()
    response = client.post("/login", data={"csrf_token": token, "email": ADMIN[0], "password": too_big(app)})
    assert response.status_code == 413
    assert row_counts() == before


@pytest.mark.parametrize("fields", [
    {f"field{i}": "x" for i in range(101)},
    {"notes": "x" * (64 * 1024 + 1)},
], ids=["too many form fields", "a form field over 64 KB"])
def test_multipart_forms_are_bounded_per_field_and_in_parts(app, admin_client, fields):
    token = soup(admin_client.get("/clients")).find("input", {"name": "csrf_token"})["value"]
    before = row_counts()
    response = admin_client.post("/clients", content_type="multipart/form-data",
                                 data={"csrf_token": token, "name": "Multi", "phone": "+14155550187", **fields})
    assert response.status_code == 413
    assert row_counts() == before


@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/status", "/login", "/clients"])
@pytest.mark.parametrize("fields", [101, 150, 170_000])
def test_urlencoded_bodies_with_too_many_fields_are_refused_unparsed(app, admin_client, number, path, fields):
    """Counted before the CSRF check or the Twilio signature parses the form: 413, nothing written."""
    body = "&".join(f"f{n}=1" for n in range(fields))[:app.config["MAX_CONTENT_LENGTH"]]
    before = row_counts()
    response = admin_client.post(path, data=body, content_type="application/x-www-form-urlencoded",
                                 headers={"X-Twilio-Signature": "x"})
    assert response.status_code == 413
    assert "100 form fields" in response.get_data(as_text=True)
    assert row_counts() == before


def test_a_webhook_with_all_of_twilios_fields_is_not_too_many(app, client, number):
    params = voice_params(**{f"Extra{n}": "x" for n in range(60)})
    response = client.post("/twilio/voice", data=params, headers=signed_headers(app, "/twilio/voice", params))
    assert response.status_code == 200


def writing_routes(app, ids):
    """(method, path) of every route that takes a body, with the ids its rule needs."""
    for rule in app.url_map.iter_rules():
        # A page and its fragment share a view; `fragment` is the rule's default, not a part of its path.
        in_path = set(rule.arguments) - set(rule.defaults or {})
        missing = in_path - set(ids)
        assert not missing, f"{rule.rule}: give the test an id for {missing}"
        for method in sorted(rule.methods - {"GET", "HEAD", "OPTIONS"}):
            yield method, url_for(rule.endpoint, **{name: ids[name] for name in in_path}, **(rule.defaults or {}))


def test_every_route_refuses_an_oversized_body_with_413_and_writes_nothing(app, admin_client, admin, staff,
                                                                           number, request_context):
    users.issue_token(staff)
    raise_alert("webhook_drift", "number:1", "drifted", severity="error")
    db.session.commit()
    ids = {"client_id": number.client_id, "number_id": number.id, "user_id": staff.id,
           "alert_id": db.session.scalars(sa.select(Alert.id)).one(),
           "token_id": db.session.scalars(sa.select(ApiToken.id)).one(), "test_call_id": 1, "job_id": 1,
           "call_id": 1, "blocked_number_id": 1, "filename": "app.css", "endpoint_id": 1, "delivery_id": 1,
           "run_id": 1, "token": "t" * 32}
    csrf = soup(admin_client.get("/numbers")).find("meta", {"name": "csrf-token"})["content"]
    headers = {"X-CSRFToken": csrf, "Authorization": f"Bearer {users.issue_token(admin)}",
               # Any signature makes a webhook read its body; the size is refused before that.
               "X-Twilio-Signature": "x"}
    before = row_counts()
    routes = list(writing_routes(app, ids))
    for method, path in routes:
        response = admin_client.open(path, method=method, headers=headers,
                                     data={"csrf_token": csrf, "notes": too_big(app)})
        assert response.status_code == 413, (method, path, response.status_code)
    assert len(routes) >= 20
    assert row_counts() == before


# -- secrets are never shown nor logged ----------------------------------------------------------------------

SECRET_KEY = "prod-like-session-signing-key-9d41c07be35a8f26"
SMTP_USER, SMTP_PASSWORD = "alerts@agency.test", "Smtp-pw-5e0b7c9a13f2"
ALERT_EMAIL = "ops@agency.test"


def refuse_every_login(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=False, handled=False)


@contextmanager
def smtp_refusing_logins(port):
    """A mail server that asks for a login and refuses every one, so phoneapp must send its password."""
    controller = Controller(_Accept(), hostname="127.0.0.1", port=port, ready_timeout=5,
                            authenticator=refuse_every_login, auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        yield
    finally:
        controller.stop()


class _Accept:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


@dataclass
class Production:
    """An app with real-looking credentials of every kind, its Twilio a local fake, and the secrets to look for."""

    app: object
    fake: object
    api_token: str
    smtp_port: int
    # Secrets the test makes on the way (an outbound webhook endpoint's signing secret).
    made: dict = field(default_factory=dict)

    @property
    def secrets(self):
        basic = base64.b64encode(f"{self.fake.account_sid}:{self.fake.auth_token}".encode()).decode()
        return {"Twilio auth token": self.fake.auth_token, "Twilio basic auth": basic,
                "SMTP password": SMTP_PASSWORD, "SMTP password, quoted": quote(SMTP_PASSWORD, safe=""),
                "SECRET_KEY": SECRET_KEY, "API token": self.api_token,
                "admin password": ADMIN[1], "staff password": STAFF[1], **self.made}

    def leaks(self, text):
        return [name for name, secret in self.secrets.items() if secret in text]


@pytest.fixture
def production(tmp_path, migrated_postgres):
    port = free_port()
    with running_fake_twilio(tmp_path / "twilio-account.json") as fake:
        app = make_app(tmp_path, TWILIO_ACCOUNT_SID=fake.account_sid, TWILIO_AUTH_TOKEN=fake.auth_token,
                       TWILIO_API_BASE_URL=fake.base_url, SECRET_KEY=SECRET_KEY, ALERT_EMAILS=ALERT_EMAIL,
                       SMTP_URL=f"smtp://{quote(SMTP_USER, safe='')}:{quote(SMTP_PASSWORD, safe='')}@127.0.0.1:{port}")
        with app.app_context():
            assert app.config["SANDBOX"] is False and app.config["SECRET_KEY"] == SECRET_KEY
            admin = users.create_user(ADMIN[0], ADMIN[1], role="admin", name="Ada Admin")
            users.create_user(STAFF[0], STAFF[1], role="staff", name="Sam Staff")
            token = users.issue_token(admin)
            yield Production(app, fake, token, port)
            db.session.remove()
            db.engine.dispose()


def make_things_to_show(production):
    """A number forwarding with a recorded call on it, a test call, a job, a failed notice, a failed health check,
    an outbound webhook endpoint with a delivery owed, and an import."""
    app = production.app
    assignments.sync_numbers()
    acme = clients.create_client({"name": "Acme Plumbing", "phone": "+14155550187"}, "US")
    first = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).first()
    number, _ = assignments.upsert_assignment({"twilio_sid": first.twilio_sid, "client_id": acme.id})
    webhooks = app.test_client()
    for path, params in (("/twilio/voice", voice_params(to=number.phone_number)),
                         ("/twilio/status", voice_params(to=number.phone_number, CallStatus="completed",
                                                         CallDuration="42"))):
        assert webhooks.post(path, data=params, headers=signed_headers(app, path, params)).status_code == 200
    api = ApiClient(app.test_client(), production.api_token)
    test_call = api.post(f"/api/phone-assignments/{number.id}/test-call", {"live": False}).get_json()
    job = api.post(f"/api/phone-assignments/{number.id}/verify").get_json()["job"]
    with smtp_refusing_logins(production.smtp_port):
        raise_alert("webhook_drift", f"number:{number.id}", "voice URL drifted", severity="error",
                    phone_assignment_id=number.id)
        db.session.commit()
        send_pending_notifications()
    alert = db.session.scalars(sa.select(Alert)).one()
    assert "535" in alert.notify_detail, alert.notify_detail
    with twilio_unreachable(app):
        run_health_checks()
    call = db.session.scalars(sa.select(CallRecord)).one()
    # Its recording, served by the Twilio test server: the page streams it with the account's credentials.
    recording_sid = "RE" + "5" * 32
    recording = {"AccountSid": production.fake.account_sid, "CallSid": call.twilio_call_sid,
                 "RecordingSid": recording_sid, "RecordingStatus": "completed", "RecordingDuration": "14",
                 "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{production.fake.account_sid}"
                                 f"/Recordings/{recording_sid}"}
    path = "/twilio/recording?kind=call"
    assert webhooks.post(path, data=recording, headers=signed_headers(app, path, recording)).status_code == 200
    # An outbound webhook endpoint, whose signing secret no page may show again, with a delivery owed.
    endpoint = create_endpoint({"url": "http://127.0.0.1:9/hook", "events": ["call.completed"]}, allow_private=True)
    production.made["webhook signing secret"] = endpoint.secret
    queue_event("call.completed", {"type": "call.completed", "data": {}}, client_id=None, dedupe_key="leak-check")
    db.session.commit()
    delivery_id = db.session.scalars(sa.select(WebhookDelivery.id)).one()
    # An import, its dry run and its result.
    browser = app.test_client()
    assert login(browser, *ADMIN).status_code == 303
    csrf = soup(browser.get("/numbers/import")).find("meta", {"name": "csrf-token"})["content"]
    upload = json.dumps({"clients": [{"id": "ckold1", "name": "Old Client", "phone": "+14155550100"}],
                         "phoneAssignments": []}).encode()
    uploaded = browser.post("/numbers/import", data={"csrf_token": csrf, "file": (io.BytesIO(upload), "old.json")},
                            content_type="multipart/form-data")
    assert uploaded.status_code == 303, uploaded.status_code
    token = uploaded.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    applied = browser.post(f"/numbers/import/{token}/apply", data={"csrf_token": csrf})
    assert applied.status_code == 303, applied.status_code
    # A sync staff started with "Sync now".
    assert browser.post("/numbers/sync", data={"csrf_token": csrf}).status_code == 303
    sync_run_id = db.session.scalars(sa.select(JobRun.id).where(JobRun.name == "sync_numbers")
                                     .order_by(JobRun.id.desc())).first()
    return {"client_id": acme.id, "number_id": number.id, "call_id": call.id, "test_call_id": test_call["id"],
            "job_id": job["id"], "user_id": db.session.scalars(sa.select(User.id).order_by(User.id.desc())).first(),
            "filename": "app.css", "endpoint_id": endpoint.id, "delivery_id": delivery_id, "run_id": sync_run_id,
            "token": token}


@contextmanager
def twilio_unreachable(app):
    """Twilio's API on a port where nothing listens, with the same account and token."""
    saved = app.config["TWILIO_API_BASE_URL"], app.extensions.pop("phoneapp.twilio", None)
    app.config["TWILIO_API_BASE_URL"] = unreachable_twilio()["TWILIO_API_BASE_URL"]
    try:
        yield
    finally:
        app.config["TWILIO_API_BASE_URL"] = saved[0]
        app.extensions.pop("phoneapp.twilio", None)
        if saved[1] is not None:
            app.extensions["phoneapp.twilio"] = saved[1]


def every_get_url(app, ids):
    urls = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods:
                continue
            # Each rule's own defaults, so a page and its fragment (one view) are both visited.
            in_path = set(rule.arguments) - set(rule.defaults or {})
            missing = in_path - set(ids)
            assert not missing, f"{rule.rule}: give the test an id for {missing}"
            urls.append((rule.endpoint, url_for(rule.endpoint, **{name: ids[name] for name in in_path},
                                                **(rule.defaults or {}))))
    return urls


# The test mail server has no certificate; plain-text AUTH is what it can offer.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_no_page_fragment_or_api_answer_shows_a_secret(production):
    app = production.app
    ids = make_things_to_show(production)
    browser = app.test_client()
    assert login(browser, *ADMIN).status_code == 303
    api = ApiClient(app.test_client(), production.api_token)
    seen = 0
    for endpoint, url in every_get_url(app, ids):
        if endpoint.startswith("api."):
            responses = {"token": api.get(url), "session": browser.get(url)}
        elif url.startswith("/partials/"):
            responses = {"htmx": browser.get(url, headers=HX), "direct": browser.get(url)}
        else:
            # buffered: a streamed body (the CSV export) is read in its request's own context, as a server does.
            responses = {"page": browser.get(url, buffered=True)}
        if endpoint == "numbers.number_changes":
            responses["with cards"] = browser.get(url, query_string={"card": ids["number_id"]}, headers=HX)
        for how, response in responses.items():
            expected = (302,) if endpoint == "auth.login" else (200, 503)
            if endpoint == "calls.call_voicemail":
                expected = (404,)  # the call has a recording and no voicemail
            assert response.status_code in expected, (url, how, response.status_code)
            # A recording is bytes: a secret in it would still be ASCII.
            shown = (response.get_data().decode("utf-8", "replace")
                     + "\n".join(f"{k}: {v}" for k, v in response.headers.items()))
            assert production.leaks(shown) == [], (url, how)
            seen += 1
    assert seen >= 40
    # What the failures said is on show, only without the secrets.
    alerts = browser.get("/alerts").get_data(as_text=True)
    assert "127.0.0.1" in alerts and "535" in alerts
    health = browser.get("/health").get_data(as_text=True)
    assert "could not reach Twilio" in health
    anonymous = app.test_client()
    assert production.leaks(anonymous.get("/login").get_data(as_text=True)) == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_logs_never_hold_a_secret(production, caplog):
    app = production.app
    # Migrating in this process ran logging.config.fileConfig, which switches off every logger that existed.
    for logger in logging.root.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            logger.disabled = False
    caplog.set_level(logging.DEBUG)
    browser = app.test_client()
    assert login(browser, ADMIN[0], "not the password").status_code == 401
    assert login(browser, STAFF[0], STAFF[1] + " but wrong").status_code == 401
    assert login(browser, *ADMIN).status_code == 303
    api = ApiClient(app.test_client(), production.api_token)
    assert api.get("/api/clients").status_code == 200
    assert ApiClient(app.test_client(), production.api_token + "x").get("/api/clients").status_code == 401
    # A Twilio request that fails: a number the account does not have, and the API not answering at all.
    unknown = api.post("/api/phone-assignments", {"twilio_sid": "PN" + "0" * 32, "client_id": None})
    assert 400 <= unknown.status_code < 500, unknown.get_json()
    with twilio_unreachable(app):
        run_health_checks()
        sync = api.post(f"/api/phone-assignments/{1}/verify")
        assert sync.status_code in (202, 404)
    # An error alert whose e-mail fails at the server's login.
    with smtp_refusing_logins(production.smtp_port):
        raise_alert("webhook_drift", "number:1", "voice URL drifted", severity="error")
        db.session.commit()
        send_pending_notifications()
    drift = db.session.scalars(sa.select(Alert).where(Alert.kind == "webhook_drift")).one()
    assert "535" in drift.notify_detail, drift.notify_detail

    # aiosmtpd's own log is the test mail server's, not phoneapp's.
    ours = [record for record in caplog.records if not record.name.startswith("mail.log")]
    assert len(ours) > 5, [record.name for record in caplog.records]
    loggers = {record.name for record in ours}
    assert any(name.startswith("twilio") or name.startswith("urllib3") for name in loggers), loggers
    for record in ours:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        assert production.leaks(text) == [], (record.name, text)
