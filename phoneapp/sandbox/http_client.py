"""The sandbox behind the twilio client's http_client seam: REST requests answered in-process, no network."""
from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from twilio.http import HttpClient
from twilio.http.response import Response
from werkzeug.test import Client as WsgiClient

from phoneapp.sandbox.rest import make_rest_app
from phoneapp.twilio.gateway import DEFAULT_TIMEOUT

log = logging.getLogger(__name__)


class SandboxHttpClient(HttpClient):
    """Answers the twilio client's requests in-process from the sandbox REST app (no network)."""

    def __init__(self, account, on_call_created=None, logger=log):
        super().__init__(logger, is_async=False, timeout=DEFAULT_TIMEOUT)
        self.account = account
        self.app = make_rest_app(account, on_call_created=on_call_created)

    def request(self, method, uri, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        """Run the request through the sandbox WSGI app and return its answer."""
        parts = urlsplit(uri)
        query = parts.query
        if params:
            extra = urlencode(_without_none(params), doseq=True)
            query = f"{query}&{extra}" if query and extra else (query or extra)
        headers = dict(headers or {})
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        body = None
        if data:
            if headers.get("Content-Type", "").endswith("json"):
                body = json.dumps(data)
            else:
                body = urlencode(_without_none(data), doseq=True)
                headers["Content-Type"] = "application/x-www-form-urlencoded"
        # A fresh test client per request: it holds no state we need, and threads never share one.
        answer = WsgiClient(self.app).open(
            path=parts.path, base_url=f"{parts.scheme}://{parts.netloc}", query_string=query,
            method=method.upper(), data=body, headers=headers,
        )
        self._test_only_last_response = Response(answer.status_code, answer.get_data(as_text=True),
                                                 dict(answer.headers))
        return self._test_only_last_response


def _without_none(values: Mapping) -> dict:
    return {key: value for key, value in values.items() if value is not None}
