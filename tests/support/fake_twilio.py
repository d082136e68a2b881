"""A fake Twilio REST API on a real local port, backed by a sandbox account file."""
from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

from werkzeug.serving import make_server

from phoneapp.sandbox.account import SandboxAccount
from phoneapp.sandbox.rest import make_rest_app


@dataclass
class FakeTwilio:
    """A running fake: point a Twilio client at base_url and inspect or arrange state through account."""

    base_url: str
    account: SandboxAccount
    # (method, path, query string) of every request received, in order; tests may clear it.
    requests: list = field(default_factory=list)

    @property
    def account_sid(self) -> str:
        """The fake account's SID."""
        return self.account.account_sid

    @property
    def auth_token(self) -> str:
        """The fake account's auth token."""
        return self.account.auth_token


@contextmanager
def running_fake_twilio(state_path, on_call_created=None):
    """Serve the sandbox REST app for the account at state_path on 127.0.0.1 until the block ends."""
    account = SandboxAccount.open(state_path)
    rest, seen = make_rest_app(account, on_call_created=on_call_created), []

    def recording(environ, start_response):
        seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("QUERY_STRING", "")))
        return rest(environ, start_response)

    server = make_server("127.0.0.1", 0, recording, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="fake-twilio", daemon=True)
    thread.start()
    try:
        yield FakeTwilio(base_url=f"http://127.0.0.1:{server.server_port}", account=account, requests=seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def unreachable_twilio():
    """Settings of a Twilio account whose API is a local port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    return {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "x" * 32, "TWILIO_API_BASE_URL": closed}
