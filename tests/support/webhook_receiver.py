"""A webhook receiver on 127.0.0.1, in a thread: it checks every request's Standard Webhooks signature and keeps it."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from phoneapp.extensions import db
from phoneapp.models import WebhookEndpoint
from phoneapp.services.outbound_webhooks import EVENT_TYPES, create_endpoint_secret

SECRET = create_endpoint_secret()


@dataclass
class Received:
    """One request as the receiver saw it: verified (payload set) or not (error set)."""

    path: str
    headers: dict
    body: bytes
    payload: dict | None
    error: str | None

    @property
    def webhook_id(self):
        return self.headers.get("webhook-id")


@dataclass
class WebhookReceiver:
    """Answers each request with the next of `answers` (a status code), then with `default`.

    `hold`: every request waits, unanswered, until `release()` is called.
    """

    secret: str
    answers: list = field(default_factory=list)
    default: int = 200
    redirect_to: str | None = None
    requests: list = field(default_factory=list)
    hold: bool = False
    server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _released: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/phoneapp"

    @property
    def port(self):
        return self.server.server_address[1]

    def verified(self):
        """The payloads of the requests whose signature checked out, in arrival order."""
        with self._lock:
            return [request.payload for request in self.requests if request.error is None]

    def ids(self):
        with self._lock:
            return [request.webhook_id for request in self.requests]

    def wait_for(self, count, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"the receiver got {len(self.requests)} requests, not {count}, in {timeout} s")

    def release(self):
        self._released.set()

    def _take(self, path, headers, body):
        try:
            payload, error = Webhook(self.secret).verify(body, headers), None
        except WebhookVerificationError as exc:
            payload, error = None, str(exc)
        with self._lock:
            self.requests.append(Received(path, headers, body, payload, error))
            return self.answers.pop(0) if self.answers else self.default


def start_receiver(secret, **options) -> WebhookReceiver:
    receiver = WebhookReceiver(secret, **options)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = receiver._take(self.path, {key.lower(): value for key, value in self.headers.items()}, body)
            if receiver.hold:
                receiver._released.wait(60)
            self.send_response(status)
            if receiver.redirect_to and 300 <= status < 400:
                self.send_header("Location", receiver.redirect_to)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format, *args):
            pass

    receiver.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.server.daemon_threads = True
    threading.Thread(target=receiver.server.serve_forever, daemon=True, name="webhook-receiver").start()
    return receiver


def stop_receiver(receiver):
    receiver.release()
    receiver.server.shutdown()
    receiver.server.server_close()


@contextmanager
def receiving(app, **options):
    """A receiver for `app`'s outbound webhooks, with deliveries to 127.0.0.1 allowed as in a test setup."""
    app.config["OUTBOUND_WEBHOOKS_ALLOW_PRIVATE"] = True
    receiver = start_receiver(SECRET, **options)
    try:
        yield receiver
    finally:
        stop_receiver(receiver)


def add_endpoint(url, events=EVENT_TYPES, *, client_id=None, is_active=True, secret=SECRET):
    """An endpoint as an admin would save it."""
    endpoint = WebhookEndpoint(url=url, events=list(events), secret=secret, client_id=client_id, is_active=is_active)
    db.session.add(endpoint)
    db.session.commit()
    return endpoint
