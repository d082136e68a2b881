"""WSGI entry point for gunicorn: `gunicorn wsgi:app`."""
import sys

from phoneapp import ConfigError, create_app
from phoneapp.services.webhook_events import start_writer

try:
    app = create_app()
except ConfigError as error:
    sys.exit(f"phoneapp cannot start: {error}")
# Webhooks logged by a process that stopped before writing them are written without waiting for a call.
start_writer(app)
