"""An app under test: its environment, its database, and a test client whose requests stay apart."""
import contextvars
import os

import sqlalchemy as sa
from flask.testing import FlaskClient

from phoneapp import create_app
from phoneapp.extensions import db

PUBLIC_BASE_URL = "https://calls.example.test"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")


def base_environ(tmp_path, **extra):
    """The environment an app under test sees: nothing from the developer's shell or .env."""
    environ = {
        "SECRET_KEY": "tests-only-session-key-5c0e8a2f9b7d4163e8a1c6f0",
        "DATABASE_URL": TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'test.db'}",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    }
    environ.update({key: value for key, value in extra.items() if value is not None})
    return environ


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
