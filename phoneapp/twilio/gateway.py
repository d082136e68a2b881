"""Everything phoneapp asks of Twilio's REST API, behind one small interface.

No other module imports the twilio REST client or its exceptions: failures reach callers as
TwilioError, and the same gateway runs against Twilio, a local test server, or the sandbox.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from werkzeug.test import Client as WsgiClient

log = logging.getLogger(__name__)

# Twilio itself gives a webhook 15 s; a REST call taking longer than this is better failed and retried.
DEFAULT_TIMEOUT = 10.0
_NUMBER_SID = re.compile(r"^PN[0-9a-fA-F]{32}$")
# What a player needs to know of Twilio's answer to play and seek a recording; nothing else is passed on.
MEDIA_HEADERS = ("Content-Type", "Content-Length", "Content-Range", "Accept-Ranges")
MEDIA_CHUNK_SIZE = 64 * 1024
# The whole file, the range asked for, or "that range is past the end": a player handles each itself.
MEDIA_STATUSES = (200, 206, 416)


@dataclass(frozen=True)
class NumberConfig:
    """A Twilio phone number and the voice settings phoneapp cares about."""

    sid: str
    phone_number: str
    friendly_name: str
    voice_url: str | None
    voice_method: str | None
    voice_fallback_url: str | None
    status_callback: str | None
    voice_application_sid: str | None
    trunk_sid: str | None

    @property
    def routed_elsewhere(self) -> bool:
        """True when Twilio ignores voice_url because an application or SIP trunk takes the calls."""
        return bool(self.voice_application_sid or self.trunk_sid)


@dataclass(frozen=True)
class Media:
    """A recording as Twilio serves it: its status, the headers a player needs, and its bytes as they arrive."""

    status: int
    headers: dict
    chunks: Iterator[bytes]
    close: Callable[[], None]


class TwilioError(Exception):
    """Talking to Twilio failed: an error status, a refused connection or a timeout."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class NumberNotFound(TwilioError):
    """The phone number SID is not in the account."""


def _blank_to_none(value):
    return value or None


def _number_config(instance) -> NumberConfig:
    return NumberConfig(
        sid=instance.sid,
        phone_number=instance.phone_number,
        friendly_name=instance.friendly_name or "",
        voice_url=_blank_to_none(instance.voice_url),
        voice_method=_blank_to_none(instance.voice_method),
        voice_fallback_url=_blank_to_none(instance.voice_fallback_url),
        status_callback=_blank_to_none(instance.status_callback),
        voice_application_sid=_blank_to_none(instance.voice_application_sid),
        trunk_sid=_blank_to_none(instance.trunk_sid),
    )


def _error_from_response(response) -> TwilioError:
    status = getattr(response, "status_code", None)
    code, message = None, f"Twilio answered HTTP {status}"
    try:
        body = json.loads(response.text)
        code = body.get("code")
        message = body.get("message") or body.get("detail") or message
    except (ValueError, AttributeError, TypeError):
        pass
    return TwilioError(message, status=status, code=code if isinstance(code, int) else None)


@contextmanager
def _translated(not_found: str | None = None):
    """Turn the twilio library's and requests' exceptions into TwilioError / NumberNotFound."""
    try:
        yield
    except TwilioRestException as exc:
        error = TwilioError(str(exc.msg), status=exc.status, code=exc.code)
    except TwilioServiceException as exc:
        error = TwilioError(exc.detail or exc.title, status=exc.status, code=exc.code)
    except TwilioException as exc:
        # A failed list page arrives as TwilioException("Unable to fetch page", response).
        response = exc.args[1] if len(exc.args) > 1 else None
        error = _error_from_response(response) if response is not None else TwilioError(str(exc))
    except requests.Timeout as exc:
        error = TwilioError(f"Twilio did not answer in time: {exc}")
    except requests.RequestException as exc:
        error = TwilioError(f"could not reach Twilio: {exc}")
    except json.JSONDecodeError as exc:
        error = TwilioError(f"Twilio answered with something that is not JSON: {exc}")
    else:
        return
    if not_found is not None and error.status == 404:
        raise NumberNotFound(f"number {not_found} is not in the Twilio account",
                             status=404, code=error.code) from error
    raise error


class TwilioGateway:
    """The Twilio account as phoneapp uses it: numbers, webhooks, calls, health and Monitor alerts."""

    def __init__(self, account_sid: str, auth_token: str, http_client=None):
        self.account_sid = account_sid
        self.sandbox = getattr(http_client, "account", None)
        self._client = Client(account_sid, auth_token,
                              http_client=http_client or TwilioHttpClient(timeout=DEFAULT_TIMEOUT))

    def list_numbers(self, page_size: int = 1000) -> list[NumberConfig]:
        """Every number in the account, following all pages."""
        with _translated():
            return [_number_config(n) for n in self._client.incoming_phone_numbers.stream(page_size=page_size)]

    def fetch_number(self, sid: str) -> NumberConfig:
        """One number by PN sid; NumberNotFound if the account has no such number."""
        if not _NUMBER_SID.match(sid or ""):
            # The SDK puts the sid into the URL path unescaped; never send anything but a real SID.
            raise NumberNotFound(f"{sid!r} is not a phone number SID", status=404, code=20404)
        with _translated(not_found=sid):
            return _number_config(self._client.incoming_phone_numbers(sid).fetch())

    def find_number_by_phone(self, phone_number: str) -> NumberConfig | None:
        """The account's number with exactly this E.164 phone number, or None."""
        with _translated():
            for number in self._client.incoming_phone_numbers.stream(phone_number=phone_number, page_size=50):
                if number.phone_number == phone_number:
                    return _number_config(number)
        return None

    def update_number_webhooks(self, sid: str, *, voice_url: str, voice_fallback_url: str,
                               status_callback: str) -> NumberConfig:
        """Point a number's voice, fallback and status URLs at phoneapp (POST) and detach apps/trunks."""
        if not _NUMBER_SID.match(sid or ""):
            raise NumberNotFound(f"{sid!r} is not a phone number SID", status=404, code=20404)
        with _translated(not_found=sid):
            updated = self._client.incoming_phone_numbers(sid).update(
                voice_url=voice_url, voice_method="POST",
                voice_fallback_url=voice_fallback_url, voice_fallback_method="POST",
                status_callback=status_callback, status_callback_method="POST",
                # Twilio ignores voice_url while either is set; an empty value clears them.
                voice_application_sid="", trunk_sid="",
            )
        return _number_config(updated)

    def create_call(self, *, to: str, from_: str, status_callback: str, status_callback_events: list[str],
                    url: str | None = None, twiml: str | None = None, timeout: int = 30) -> str:
        """Place an outbound call running `twiml`, or the TwiML fetched from `url`; returns the CA sid."""
        if (url is None) == (twiml is None):
            raise ValueError("give exactly one of url and twiml")
        what = {"url": url, "method": "POST"} if url is not None else {"twiml": twiml}
        with _translated():
            call = self._client.calls.create(
                to=to, from_=from_, status_callback=status_callback, status_callback_method="POST",
                status_callback_event=list(status_callback_events), timeout=timeout, **what,
            )
        return call.sid

    def fetch_call(self, sid: str) -> dict:
        """A call's to, from, status and parent; used to tie a Monitor alert to the number that was called."""
        with _translated():
            call = self._client.calls(sid).fetch()
        return {"sid": call.sid, "to": call.to, "from": call._from, "status": call.status,
                "direction": call.direction, "parent_call_sid": call.parent_call_sid}

    def end_call(self, sid: str) -> None:
        """Hang up a call that is still queued, ringing or in progress (Twilio ignores it for an ended call)."""
        with _translated():
            self._client.calls(sid).update(status="completed")

    def send_sms(self, *, to: str, from_: str, body: str) -> str:
        """Send a text message; returns the SM sid."""
        with _translated():
            message = self._client.messages.create(to=to, from_=from_, body=body)
        return message.sid

    def fetch_account(self) -> dict:
        """The account's sid, friendly name and status (active/suspended/closed)."""
        with _translated():
            account = self._client.api.v2010.accounts(self.account_sid).fetch()
        return {"sid": account.sid, "friendly_name": account.friendly_name, "status": account.status}

    def list_monitor_alerts(self, start_date=None, limit: int = 1000) -> list[dict]:
        """Monitor alerts (webhook errors such as 11200), newest first; date_created is an aware datetime."""
        if isinstance(start_date, datetime) and start_date.tzinfo is not None:
            # Twilio reads StartDate as GMT; the SDK formats the clock time as is.
            start_date = start_date.astimezone(UTC)
        kwargs = {"limit": limit, "page_size": min(max(limit, 1), 1000)}
        if isinstance(start_date, (datetime, date, str)):
            kwargs["start_date"] = start_date
        with _translated():
            alerts = self._client.monitor.v1.alerts.list(**kwargs)
        return [{
            "sid": a.sid, "error_code": a.error_code, "log_level": a.log_level, "alert_text": a.alert_text,
            "request_url": a.request_url, "request_method": a.request_method, "resource_sid": a.resource_sid,
            "more_info": a.more_info, "date_created": a.date_created, "service_sid": a.service_sid,
        } for a in alerts]

    def fetch_media(self, url: str, byte_range: str | None = None) -> Media:
        """A recording's audio from its Twilio URL with the account's credentials, streamed, `Range` passed on."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or parts.username or not (host == "twilio.com" or host.endswith(".twilio.com")):
            # The account's credentials go to Twilio and nowhere else.
            raise TwilioError(f"{url[:100]!r} is not an address on Twilio's API")
        headers = {"Range": byte_range} if byte_range else {}
        http = self._client.http_client
        sandbox_app = getattr(http, "app", None)
        if sandbox_app is not None:
            # The sandbox answers in-process, as it answers the REST client; its audio must stay bytes.
            answer = WsgiClient(sandbox_app).open(parts.path, base_url=f"{parts.scheme}://{parts.netloc}",
                                                  query_string=parts.query, headers=headers,
                                                  auth=self._client.auth, buffered=False)
            status, received, chunks, close = answer.status_code, answer.headers, answer.response, answer.close
        else:
            target = http.rewrite(url) if isinstance(http, HostRewritingHttpClient) else url
            session = getattr(http, "session", None) or requests.Session()
            with _translated():
                # Redirects are followed (Twilio may hand media off); requests drops the credentials on another host.
                response = session.get(target, headers=headers, auth=self._client.auth, stream=True,
                                       timeout=DEFAULT_TIMEOUT)
            status, received, close = response.status_code, response.headers, response.close
            chunks = _streamed(response)
        if status not in MEDIA_STATUSES:
            # Twilio says why in a small JSON body; its first chunk holds it.
            head = next(iter(chunks), b"")[:4096]
            close()
            raise _error_from_response(SimpleNamespace(status_code=status, text=head.decode("utf-8", "replace")))
        return Media(status, {name: received[name] for name in MEDIA_HEADERS if name in received}, chunks, close)


def _streamed(response):
    """The body a chunk at a time; Twilio going quiet midway ends it early (the player has what came)."""
    try:
        yield from response.iter_content(MEDIA_CHUNK_SIZE)
    except requests.RequestException as exc:
        log.warning("recording download from Twilio broke off: %s", exc)
    finally:
        response.close()


class HostRewritingHttpClient(TwilioHttpClient):
    """Sends every Twilio API request (api., monitor., …) to one base URL, keeping path and query."""

    def __init__(self, base_url: str, timeout: float = DEFAULT_TIMEOUT, **kwargs):
        super().__init__(timeout=timeout, **kwargs)
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path.rstrip("/")

    def rewrite(self, url: str) -> str:
        """The URL as sent: the base URL's scheme and host (and path prefix) in place of Twilio's."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host != "twilio.com" and not host.endswith(".twilio.com"):
            return url
        return urlunsplit((self._scheme, self._netloc, self._prefix + parts.path, parts.query, ""))

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        """Make the request against the base URL instead of Twilio."""
        return super().request(method, self.rewrite(url), params=params, data=data, headers=headers,
                               auth=auth, timeout=timeout, allow_redirects=allow_redirects)


def gateway_for(settings: Mapping) -> TwilioGateway:
    """The gateway the settings describe: a local test server (TWILIO_API_BASE_URL), or Twilio itself."""
    base_url = settings.get("TWILIO_API_BASE_URL")
    http_client = HostRewritingHttpClient(base_url) if base_url else None
    return TwilioGateway(settings["TWILIO_ACCOUNT_SID"], settings["TWILIO_AUTH_TOKEN"], http_client)
