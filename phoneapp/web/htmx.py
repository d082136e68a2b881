"""Small helpers for htmx requests."""
from flask import request


def is_htmx():
    """True when htmx (not a full page load) made this request."""
    return request.headers.get("HX-Request") == "true"
