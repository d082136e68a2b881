"""Shared fixtures: an app on a real database (SQLite, or PostgreSQL from TEST_DATABASE_URL), users, signed webhooks.

How the suite shares code, one rule each way:
- Fixtures are only ever obtained by pytest injection, never imported. They are defined in conftest.py files
  (this one: fixtures several areas use; tests/<area>/conftest.py: fixtures of that area only) and in the
  tests/support/fixtures_*.py plugins listed in `pytest_plugins` below (shared fixtures of one theme). A fixture
  only one test module uses may stay in that module.
- Helpers and constants are plain code in tests/support/ (no fixtures there, apart from the fixtures_* plugins),
  imported as `from tests.support.<module> import ...`. No module imports a test module, a conftest.py or a
  fixtures_* plugin.
"""
import pytest
import sqlalchemy as sa

from phoneapp import create_app
from phoneapp.extensions import db
from phoneapp.models import Client, PhoneAssignment
from phoneapp.services import users
from tests.support.apps import PUBLIC_BASE_URL, TEST_DATABASE_URL, make_app
from tests.support.browser import chromium_path
from tests.support.not_run import IN_CI, not_run, note_not_run
from tests.support.pages import ADMIN, STAFF, login
from tests.support.paths import ROOT
from tests.support.webhooks import sign

pytest_plugins = ("tests.support.fixtures_pages", "tests.support.fixtures_api", "tests.support.fixtures_redis",
                  "tests.support.fixtures_mail")


def pytest_configure(config):
    if not TEST_DATABASE_URL:
        note_not_run("PostgreSQL runs", "TEST_DATABASE_URL is unset, so the suite used SQLite only", service=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for what, why, _ in not_run():
        terminalreporter.write_line(f"not run: {what} ({why})", yellow=True)


def pytest_sessionfinish(session, exitstatus):
    services_pass = bool(TEST_DATABASE_URL)
    fatal = [what for what, _, service in not_run() if not service or services_pass]
    if IN_CI and fatal and session.exitstatus == 0:
        session.exitstatus = 1


@pytest.fixture(scope="session")
def migrated_postgres(tmp_path_factory):
    """Bring the shared PostgreSQL test database to the latest migration once per run."""
    if not TEST_DATABASE_URL:
        return None
    from flask_migrate import upgrade

    from phoneapp.extensions import db as database

    # An instance folder of its own: the project's instance/ may hold a development install's webhook log.
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance"))},
                     environ={"SECRET_KEY": "x", "DATABASE_URL": TEST_DATABASE_URL,
                              "PUBLIC_BASE_URL": PUBLIC_BASE_URL})
    with app.app_context():
        with database.engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
        upgrade()
        database.engine.dispose()
    return TEST_DATABASE_URL


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
    path = ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
