"""JSON API (/api): staff sessions or bearer tokens."""
# Imported for their routes, which attach themselves to bp.
from phoneapp.api import blocked_numbers, calls, checks, clients, health, numbers, openapi, webhook_endpoints  # noqa: E402,F401
from phoneapp.api.blueprint import bp

__all__ = ["bp"]
