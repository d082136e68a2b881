"""WSGI entry point for gunicorn: `gunicorn wsgi:app`."""
import sys

from phoneapp import ConfigError, create_app

try:
    app = create_app()
except ConfigError as error:
    sys.exit(f"phoneapp cannot start: {error}")
