"""WSGI entry point for gunicorn: `gunicorn wsgi:app`."""
import sys

from phoneapp import ConfigError, create_app
from phoneapp.services.routing_cache_keeper import start_routing_cache_keeper
from phoneapp.services.webhook_events import start_writer

try:
    # The `flask db` commands are run with app.py; a web process is lighter without them.
    app = create_app(with_migrations=False)
except ConfigError as error:
    sys.exit(f"phoneapp cannot start: {error}")
# Webhooks logged by a process that stopped before writing them are written without waiting for a call, and
# the routing cache is kept current from the start, not from the first request.
start_writer(app)
start_routing_cache_keeper(app)
