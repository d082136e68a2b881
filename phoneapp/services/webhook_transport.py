"""One POST to a webhook receiver, to the address that was checked (SPEC §10).

The receiver's name is resolved here, every address it resolves to is checked, and the connection goes to the
checked address itself, with the name only in the Host header and TLS: a name switched to an inside address
between the check and the connection cannot be used to reach the server's own network. Redirects are not
followed and nothing is retried here; the delivery schedule does that.
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import HTTPError

from phoneapp.domain.outbound_addresses import parse_receiver, refused_address, refused_host

ERROR_LIMIT = 500


@dataclass(frozen=True)
class PostResult:
    """What came of one POST: the receiver's status code, or why there was none, and how long it took."""

    status: int | None
    error: str | None
    seconds: float

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300


def post_webhook(url, body: bytes, headers: dict, *, allow_private: bool, timeout: float) -> PostResult:
    """POST `body` to `url`, connecting only to an address the outbound rules allow."""
    started = time.monotonic()

    def result(status=None, error=None):
        return PostResult(status, error[:ERROR_LIMIT] if error else None, time.monotonic() - started)

    receiver, reason = parse_receiver(url)
    if receiver is None:
        return result(error=f"refused: the URL {reason}")
    reason = refused_host(receiver.host, allow_private=allow_private)
    if reason:
        return result(error=f"refused: {reason}")
    try:
        addresses = _resolve(receiver.host, receiver.port)
    except OSError as exc:
        return result(error=f"{receiver.host} does not resolve ({exc})")
    for address in addresses:
        reason = refused_address(address, allow_private=allow_private)
        if reason:
            return result(error=f"refused: {receiver.host} {reason}")
    pool = _pool(receiver, addresses[0], timeout)
    try:
        response = pool.urlopen("POST", receiver.target, body=body, headers={**headers, "Host": _host_header(receiver)},
                                redirect=False, retries=False, preload_content=False, assert_same_host=False)
        # Only the status counts; the body is not waited for.
        response.close()
        return result(status=response.status,
                      error=None if 200 <= response.status < 300 else _answer_error(response))
    except HTTPError as exc:
        return result(error=f"{type(exc).__name__}: {exc}")
    finally:
        pool.close()


def _resolve(host, port):
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise OSError("no address")
    return addresses


def _pool(receiver, address, timeout):
    options = {"timeout": urllib3.Timeout(total=timeout), "retries": False, "maxsize": 1}
    if receiver.scheme == "https":
        return urllib3.HTTPSConnectionPool(address, receiver.port, server_hostname=receiver.host,
                                           assert_hostname=receiver.host, cert_reqs="CERT_REQUIRED", **options)
    return urllib3.HTTPConnectionPool(address, receiver.port, **options)


def _host_header(receiver):
    host = f"[{receiver.host}]" if ":" in receiver.host else receiver.host
    default_port = 443 if receiver.scheme == "https" else 80
    return host if receiver.port == default_port else f"{host}:{receiver.port}"


def _answer_error(response):
    location = response.headers.get("Location")
    if 300 <= response.status < 400 and location:
        return f"answered {response.status} (redirect to {location}, not followed)"
    return f"answered {response.status}"
