"""Fixtures: an app on a real database (SQLite, or PostgreSQL from TEST_DATABASE_URL), signed webhooks."""
import contextvars
import os
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from phoneapp import create_app
from phoneapp.extensions import db
from phoneapp.models import Client, PhoneAssignment
from phoneapp.services import users

PUBLIC_BASE_URL = "https://calls.example.test"
ADMIN = ("admin@example.test", "correct horse battery")
STAFF = ("staff@example.test", "staple paper clip")
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"

pytest_plugins = ("tests.pages_support", "tests.api_support", "tests.redis_support")

_not_run = []


def note_not_run(what, why, service=False):
    """Record something the suite could not run here; said once at the end.

    `service`: it needs a service URL (TEST_DATABASE_URL, TEST_REDIS_URL). CI runs the suite twice, on the
    embedded defaults and then with the services, so there only the services pass must run such tests.
    Anything else not run (no browser) fails a CI run.
    """
    if (what, why, service) not in _not_run:
        _not_run.append((what, why, service))


def pytest_configure(config):
    if not TEST_DATABASE_URL:
        note_not_run("PostgreSQL runs", "TEST_DATABASE_URL is unset, so the suite used SQLite only", service=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for what, why, _ in _not_run:
        terminalreporter.write_line(f"not run: {what} ({why})", yellow=True)


def pytest_sessionfinish(session, exitstatus):
    services_pass = bool(TEST_DATABASE_URL)
    fatal = [what for what, _, service in _not_run if not service or services_pass]
    if IN_CI and fatal and session.exitstatus == 0:
        session.exitstatus = 1


def base_environ(tmp_path, **extra):
    """The environment an app under test sees: nothing from the developer's shell or .env."""
    environ = {
        "SECRET_KEY": "tests-only-session-key-5c0e8a2f9b7d4163e8a1c6f0",
        "DATABASE_URL": TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'test.db'}",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    }
    environ.update({key: value for key, value in extra.items() if value is not None})
    return environ


@pytest.fixture(scope="session")
def migrated_postgres():
    """Bring the shared PostgreSQL test database to the latest migration once per run."""
    if not TEST_DATABASE_URL:
        return None
    from flask_migrate import upgrade

    from phoneapp.extensions import db as database

    app = create_app({"TESTING": True}, environ={"SECRET_KEY": "x", "DATABASE_URL": TEST_DATABASE_URL,
                                                  "PUBLIC_BASE_URL": PUBLIC_BASE_URL})
    with app.app_context():
        with database.engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
        upgrade()
        database.engine.dispose()
    return TEST_DATABASE_URL


class IsolatedClient(FlaskClient):
    """Runs each request in an empty context, so it gets its own app context, `g` and database session.

    The `app` fixture keeps an app context pushed; requests would otherwise share its `g`, where
    Flask-WTF caches the CSRF token and Flask-Login the user across what are separate requests in production.
    """

    def open(self, *args, **kwargs):
        response = contextvars.Context().run(super().open, *args, **kwargs)
        # The request wrote through its own session; the test's must not serve rows it cached before.
        db.session.expire_all()
        return response


def make_app(tmp_path, overrides=None, **environ):
    """An app on a fresh, migrated database; sandbox Twilio unless credentials are given."""
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "SANDBOX_CALL_PACE": 0,
                      **(overrides or {})},
                     environ=base_environ(tmp_path, **environ))
    app.test_client_class = IsolatedClient
    with app.app_context():
        if TEST_DATABASE_URL:
            tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
            with db.engine.begin() as connection:
                connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        else:
            from flask_migrate import upgrade
            upgrade()
    return app


@pytest.fixture
def app(tmp_path, migrated_postgres):
    app = make_app(tmp_path)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def admin(app):
    return users.create_user(ADMIN[0], ADMIN[1], role="admin", name="Ada Admin")


@pytest.fixture
def staff(app):
    return users.create_user(STAFF[0], STAFF[1], role="staff", name="Sam Staff")


def login(client, email, password):
    """Log in through the real form (CSRF token included)."""
    from bs4 import BeautifulSoup

    page = client.get("/login")
    token = BeautifulSoup(page.data, "html.parser").find("input", {"name": "csrf_token"})["value"]
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def admin_client(client, admin):
    response = login(client, *ADMIN)
    assert response.status_code == 303, response.data
    return client


@pytest.fixture
def staff_client(client, staff):
    response = login(client, *STAFF)
    assert response.status_code == 303, response.data
    return client


def sign(app, url, params):
    return RequestValidator(app.config["TWILIO_AUTH_TOKEN"]).compute_signature(url, params)


@pytest.fixture
def signed_post(app, client):
    """POST form `params` to a webhook path, signed like Twilio signs for PUBLIC_BASE_URL + path."""

    def post(path, params, signature=None):
        url = app.config["PUBLIC_BASE_URL"] + path
        headers = {"X-Twilio-Signature": signature if signature is not None else sign(app, url, params)}
        return client.post(path, data=params, headers=headers)

    return post


@pytest.fixture
def make_client(app):
    def create(name="Acme Plumbing", phone="+14155550187", **fields):
        row = Client(name=name, phone=phone, **fields)
        db.session.add(row)
        db.session.commit()
        return row

    return create


@pytest.fixture
def make_number(app):
    counter = iter(range(10, 10_000))

    def create(phone_number=None, client=None, forward_to_number=None, is_active=True, **fields):
        n = next(counter)
        row = PhoneAssignment(
            twilio_sid=fields.pop("twilio_sid", f"PN{n:032x}"),
            phone_number=phone_number or f"+1415555{n:04d}"[:12],
            client_id=client.id if client is not None else None,
            forward_to_number=forward_to_number, is_active=is_active, **fields)
        db.session.add(row)
        db.session.commit()
        return row

    return create


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def chromium():
    """The Chromium to drive, or the test is skipped and said to be not run (which fails a CI run)."""
    path = chromium_path()
    if not path:
        note_not_run("browser tests", "chromium not found")
        pytest.skip("chromium not found")
    return path


@pytest.fixture
def artifacts_dir():
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
