"""phoneapp: call tracking and forwarding for agencies renting Twilio numbers."""
import logging
from pathlib import Path

from flask import Flask
from sqlalchemy.engine import make_url
from werkzeug.middleware.proxy_fix import ProxyFix

from phoneapp.config import ConfigError, load_config, read_environ
from phoneapp.extensions import csrf, db, limiter, login_manager
from phoneapp.services.instance_folder import unwritable
from phoneapp.services.routing_cache_keeper import keep_routing_cache, write_routing_cache_at_start_up
from phoneapp.services.routing_table import RoutingCache
from phoneapp.services.webhook_events import write_orphans_at_start_up
from phoneapp.services.webhook_log import DatabaseOutage, WebhookLog

__all__ = ["create_app", "ConfigError"]

MIGRATIONS_DIRECTORY = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(overrides=None, environ=None, *, with_migrations=True):
    """Build the app from the environment (or `environ`), then apply `overrides` (tests).

    `with_migrations=False` leaves out the `flask db` commands (Flask-Migrate): a web server never runs them, and
    Alembic with what it imports weighs 12 MB in each of its processes.
    """
    app = Flask(__name__, instance_relative_config=True)
    environ = read_environ() if environ is None else environ
    # The web processes and workers of one install must share it (the sandbox account, the routing cache).
    instance_path = (overrides or {}).get("INSTANCE_PATH") or environ.get("INSTANCE_PATH") or app.instance_path
    app.instance_path = str(instance_path)
    _require_writable_folder(app.instance_path, "INSTANCE_PATH")
    app.config.update(load_config(environ, app.instance_path))
    app.config["SANDBOX_STATE_PATH"] = str(Path(app.instance_path) / "sandbox-account.json")
    app.config["ROUTING_CACHE_PATH"] = str(Path(app.instance_path) / "routing-cache.json")
    # Every webhook is logged here before it is answered; it must survive a restart of the web process.
    app.config["WEBHOOK_LOG_PATH"] = str(Path(app.instance_path) / "webhook-log")
    app.config["DATABASE_RETRY_PAUSE"] = 2.0
    app.config.update(overrides or {})
    _require_writable_folder(app.config["WEBHOOK_LOG_PATH"], "the webhook log (INSTANCE_PATH/webhook-log)")
    database_file = sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])
    if database_file is not None:
        _require_writable_folder(str(Path(database_file).parent), f"the SQLite database {database_file}'s folder")

    if app.config["SANDBOX"]:
        _use_sandbox_credentials(app)

    # X-Forwarded-* only from the proxies configured in front: otherwise anybody picks their own address and
    # walks past the login throttle. The client is the Nth address from the end of X-Forwarded-For; the other
    # headers are the nearest proxy's, which sets rather than appends them. Signatures do not depend on any of
    # this (they use PUBLIC_BASE_URL).
    proxies = app.config["TRUSTED_PROXY_COUNT"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=1, x_host=1, x_port=1, x_prefix=1)

    db.init_app(app)
    app.config["MIGRATIONS_DIRECTORY"] = MIGRATIONS_DIRECTORY
    if with_migrations:
        from flask_migrate import Migrate

        # Named constraints (extensions.NAMING_CONVENTION) and batch mode keep SQLite's migrations like PostgreSQL's.
        Migrate(app, db, directory=MIGRATIONS_DIRECTORY, render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    _configure_sqlite(app)
    app.extensions["phoneapp.routing_cache"] = RoutingCache(app.config["ROUTING_CACHE_PATH"])
    # Tests refresh the cache when they mean to; a server keeps it current in every web process.
    app.config.setdefault("KEEP_ROUTING_CACHE", not app.testing)
    # Tests read what a webhook wrote as soon as it is answered; servers write in batches behind the answers.
    app.config.setdefault("WEBHOOK_WRITES_INLINE", app.testing)
    app.extensions["phoneapp.webhook_log"] = WebhookLog(app.config["WEBHOOK_LOG_PATH"])
    app.extensions["phoneapp.database_outage"] = DatabaseOutage(app.config["DATABASE_RETRY_PAUSE"])

    from phoneapp import errors, webhooks
    from phoneapp.api import bp as api_bp
    from phoneapp.cli import register_cli
    from phoneapp.security import init_security
    from phoneapp.web import register_web

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(api_bp)
    register_web(app)
    # Twilio signs its requests instead; the API checks CSRF itself for cookie sessions.
    csrf.exempt(webhooks.bp)
    csrf.exempt(api_bp)
    errors.register_error_handlers(app)
    init_security(app)
    register_cli(app)
    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO)
    # Webhooks a stopped process logged but never wrote: into the database now, not on the next webhook.
    write_orphans_at_start_up(app)
    # The fallback URL answers from the cache alone: a new machine's must hold every number before its first call.
    write_routing_cache_at_start_up(app)
    if app.config["KEEP_ROUTING_CACHE"]:
        # Web processes only (not the worker, nor a command): they are the ones that serve requests.
        app.before_request(keep_routing_cache)
    return app


def _require_writable_folder(path, what):
    """Refuse to start, naming the path, when a folder phoneapp must write to cannot be made or written.

    Found at start-up rather than by the first login (a 500) or the first webhook (lost): a probe file is
    written and removed, which a read-only mount refuses whatever the permission bits say.
    """
    problem = unwritable(path)
    if problem:
        raise ConfigError(f"{what}: {path} cannot be written ({problem}); "
                          "give phoneapp's user a writable folder there")


def sqlite_file(database_url):
    """The file of a sqlite:/// URL, None for an in-memory database or another engine."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return url.database


def _use_sandbox_credentials(app):
    from phoneapp.sandbox.account import SandboxAccount

    account = SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])
    app.config["TWILIO_ACCOUNT_SID"] = account.account_sid
    app.config["TWILIO_AUTH_TOKEN"] = account.auth_token


def _configure_sqlite(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event

    with app.app_context():
        engine = db.engine

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # WAL lets the page polls read while a webhook writes; busy_timeout waits instead of failing.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=15000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
