"""JSON API (/api): staff sessions or bearer tokens."""
from phoneapp.api.blueprint import bp
# Imported for their routes, which attach themselves to bp.
from phoneapp.api import calls, clients, numbers, openapi  # noqa: E402,F401

__all__ = ["bp"]
