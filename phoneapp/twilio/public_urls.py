"""Addresses Twilio uses to reach phoneapp: PUBLIC_BASE_URL plus the route's path."""
from flask import current_app


def public_url(endpoint, **values):
    """Absolute public URL of `endpoint`; works in requests, the CLI and the worker alike."""
    # Building from the URL map (not url_for) needs no request and no SERVER_NAME. Bound once per app: binding
    # costs more than building, and the adapter only reads the map.
    adapter = current_app.extensions.get("phoneapp.public_urls")
    if adapter is None:
        adapter = current_app.extensions["phoneapp.public_urls"] = current_app.url_map.bind("phoneapp.invalid")
    return current_app.config["PUBLIC_BASE_URL"] + adapter.build(endpoint, values)


def expected_webhooks():
    """What each tracking number's Twilio configuration must say."""
    return {
        "voice_url": public_url("webhooks.voice"),
        "voice_fallback_url": public_url("webhooks.fallback"),
        "status_callback": public_url("webhooks.call_status"),
    }
