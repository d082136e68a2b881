"""WSGI entry point for gunicorn: `gunicorn wsgi:app`."""
import sys

from phoneapp import ConfigError, create_app
from phoneapp.services.webhook_events import start_replayer

try:
    app = create_app()
except ConfigError as error:
    sys.exit(f"phoneapp cannot start: {error}")
# Webhooks held by a process that stopped during a database outage are written without waiting for a call.
start_replayer(app)
