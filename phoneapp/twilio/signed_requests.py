"""Requests signed the way Twilio signs its webhooks, and the transports that deliver them.

Shared by the dry check (phoneapp asking its own /twilio/voice) and the sandbox (a simulated Twilio).
A transport is `transport(url, params, headers) -> (status, body)`: it form-POSTs `params` to `url`
and may raise on a connection failure or timeout, which counts as "not answered", as with Twilio.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator


@dataclass
class WebhookRequest:
    """One request the simulated Twilio made, and what came back."""

    kind: str  # voice, fallback, dial-event, whisper, recording, dial-action, record-action, redirect, status
    url: str
    params: dict
    headers: dict
    status: int | None = None
    body: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the app answered with a status below 400."""
        return self.status is not None and self.status < 400


def signed_request(auth_token: str, url: str, params: dict, kind: str = "webhook") -> WebhookRequest:
    """A prepared, not yet sent, request signed the way Twilio signs webhooks."""
    params = {key: str(value) for key, value in params.items()}
    headers = {
        "X-Twilio-Signature": RequestValidator(auth_token).compute_signature(url, params),
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "TwilioProxy/1.1",
        # Twilio keeps this token across retries of one request, so receivers can spot repeats.
        "I-Twilio-Idempotency-Token": secrets.token_hex(16),
    }
    return WebhookRequest(kind=kind, url=url, params=params, headers=headers)


def deliver(transport, request: WebhookRequest) -> WebhookRequest:
    """Send a prepared request (again, for a retry) and return a copy holding the answer."""
    sent = replace(request, params=dict(request.params), headers=dict(request.headers),
                   status=None, body="", error=None)
    try:
        sent.status, sent.body = transport(sent.url, sent.params, sent.headers)
    except Exception as exc:  # a refused connection or a timeout is a failed webhook, not a crash
        sent.error = f"{type(exc).__name__}: {exc}"
    return sent


def http_transport(timeout: float = 15.0):
    """A transport that POSTs over HTTP, giving up after Twilio's 15 s."""
    import requests

    session = requests.Session()

    def send(url, params, headers):
        response = session.post(url, data=params, headers=headers, timeout=timeout, allow_redirects=False)
        return response.status_code, response.text

    return send


def wsgi_transport(app):
    """A transport that hands each request to a WSGI app in-process, under the URL's own host."""
    from werkzeug.test import Client

    def send(url, params, headers):
        parts = urlsplit(url)
        response = Client(app).post(parts.path, base_url=f"{parts.scheme}://{parts.netloc}",
                                    query_string=parts.query, data=urlencode(params), headers=headers)
        return response.status_code, response.get_data(as_text=True)

    return send
