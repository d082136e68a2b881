"""The sandbox account served as Twilio's REST API (2010-04-01 and Monitor v1), as a plain WSGI app."""
from __future__ import annotations

import functools
import hmac
import json
import logging
import re
from datetime import UTC, datetime
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from phoneapp.sandbox.account import NUMBER_FIELDS, new_sid, rfc2822
from phoneapp.sandbox.audio import recording_media

log = logging.getLogger(__name__)

API = "/2010-04-01"
MONITOR_HOST = "https://monitor.twilio.com"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)
_SID_FIELDS = {"voice_application_sid": "AP", "trunk_sid": "TK", "sms_application_sid": "AP"}
_METHOD_FIELDS = {"voice_method", "voice_fallback_method", "status_callback_method", "sms_method",
                  "sms_fallback_method"}
_URL_FIELDS = {"voice_url", "voice_fallback_url", "status_callback", "sms_url", "sms_fallback_url"}
# Internal bookkeeping kept with a stored call that the Call resource does not show.
_CALL_PRIVATE = ("request",)


class ApiError(Exception):
    """A Twilio-shaped error response."""

    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


_FORM_FIELDS = {_pascal(name): name for name in NUMBER_FIELDS}


def make_rest_app(account, on_call_created=None):
    """A WSGI app answering Twilio REST requests from `account`; `on_call_created(call)` runs after Calls create."""
    create_call = functools.partial(_create_call, on_call_created=on_call_created)
    routes = [
        ("GET", rf"^{API}/Accounts/(?P<account>[^/]+)\.json$", _fetch_account),
        ("GET", rf"^{API}/Accounts/(?P<account>[^/]+)/IncomingPhoneNumbers\.json$", _list_numbers),
        ("GET", rf"^{API}/Accounts/(?P<account>[^/]+)/IncomingPhoneNumbers/(?P<sid>[^/]+)\.json$", _fetch_number),
        ("POST", rf"^{API}/Accounts/(?P<account>[^/]+)/IncomingPhoneNumbers/(?P<sid>[^/]+)\.json$", _update_number),
        ("POST", rf"^{API}/Accounts/(?P<account>[^/]+)/Calls\.json$", create_call),
        ("GET", rf"^{API}/Accounts/(?P<account>[^/]+)/Calls/(?P<sid>[^/]+)\.json$", _fetch_call),
        ("POST", rf"^{API}/Accounts/(?P<account>[^/]+)/Calls/(?P<sid>[^/]+)\.json$", _update_call),
        ("POST", rf"^{API}/Accounts/(?P<account>[^/]+)/Messages\.json$", _create_message),
        ("GET", rf"^{API}/Accounts/(?P<account>[^/]+)/Recordings/(?P<sid>RE[0-9a-fA-F]{{32}})(?:\.wav)?$",
         recording_media),
        ("GET", r"^/v1/Alerts$", _list_alerts),
        ("GET", r"^/v1/Alerts/(?P<sid>[^/]+)$", _fetch_alert),
    ]
    routes = [(method, re.compile(pattern), view) for method, pattern, view in routes]

    def app(environ, start_response):
        request = Request(environ)
        try:
            _authenticate(request, account)
            matches = [(method, match, view) for method, pattern, view in routes
                       if (match := pattern.match(request.path))]
            if not matches:
                raise _not_found(request)
            chosen = next(((match, view) for method, match, view in matches if method == request.method), None)
            if chosen is None:
                raise ApiError(405, 20004, "Method not allowed")
            match, view = chosen
            args = match.groupdict()
            if "account" in args and args.pop("account") != account.account_sid:
                raise _not_found(request)
            answer = view(request, account, **args)
            response = answer if isinstance(answer, Response) else _json(*answer)
        except ApiError as error:
            response = _json(error.status, {
                "code": error.code, "message": error.message,
                "more_info": f"https://www.twilio.com/docs/errors/{error.code}", "status": error.status,
            })
            if error.status == 401:
                response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        except Exception:
            log.exception("sandbox REST request %s %s failed", request.method, request.path)
            response = _json(500, {"code": 20500, "message": "Internal Server Error",
                                   "more_info": "https://www.twilio.com/docs/errors/20500", "status": 500})
        return response(environ, start_response)

    return app


def _json(status: int, body: dict) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers["Twilio-Request-Id"] = new_sid("RQ")
    return response


def _not_found(request) -> ApiError:
    return ApiError(404, 20404, f"The requested resource {request.path} was not found")


def _authenticate(request, account) -> None:
    auth = request.authorization
    ok = (auth is not None and auth.type == "basic"
          and hmac.compare_digest((auth.username or "").encode(), account.account_sid.encode())
          and hmac.compare_digest((auth.password or "").encode(), account.auth_token.encode()))
    if not ok:
        raise ApiError(401, 20003, "Authenticate")


def _page_args(request) -> tuple[int, int]:
    try:
        size = int(request.args.get("PageSize", DEFAULT_PAGE_SIZE))
        page = int(request.args.get("Page", 0))
    except ValueError:
        raise ApiError(400, 20001, "PageSize and Page must be integers") from None
    if size < 1 or page < 0:
        raise ApiError(400, 20001, "PageSize must be at least 1 and Page at least 0")
    return min(size, MAX_PAGE_SIZE), page


# -- 2010-04-01 -----------------------------------------------------------------


def _account_uri(account) -> str:
    return f"{API}/Accounts/{account.account_sid}"


def _fetch_account(request, account):
    resource = account.account_resource()
    base = _account_uri(account)
    names = {"calls": "Calls", "incoming_phone_numbers": "IncomingPhoneNumbers", "recordings": "Recordings",
             "notifications": "Notifications", "applications": "Applications", "messages": "Messages"}
    return 200, {
        "auth_token": account.auth_token,
        "date_created": resource["date_created"],
        "date_updated": resource["date_updated"],
        "friendly_name": resource["friendly_name"],
        "owner_account_sid": account.account_sid,
        "sid": account.account_sid,
        "status": resource["status"],
        "subresource_uris": {key: f"{base}/{name}.json" for key, name in names.items()},
        "type": "Full",
        "uri": f"{base}.json",
    }


def _number_resource(account, number: dict) -> dict:
    return dict(number, uri=f"{_account_uri(account)}/IncomingPhoneNumbers/{number['sid']}.json")


def _phone_filter(pattern: str):
    # A '+' sent unencoded in a query string arrives as a space.
    pattern = pattern.strip().replace(" ", "+")
    if "*" in pattern:
        regex = re.compile(re.escape(pattern).replace(r"\*", r"\d"))
        return lambda phone: regex.search(phone) is not None
    return lambda phone: pattern in phone


def _list_numbers(request, account):
    size, page = _page_args(request)
    numbers = account.numbers()
    filters = {key: request.args[key] for key in ("PhoneNumber", "FriendlyName") if request.args.get(key)}
    if "PhoneNumber" in filters:
        matches = _phone_filter(filters["PhoneNumber"])
        numbers = [n for n in numbers if matches(n["phone_number"])]
    if "FriendlyName" in filters:
        numbers = [n for n in numbers if n["friendly_name"] == filters["FriendlyName"]]
    start = page * size
    token = request.args.get("PageToken", "")
    if token.startswith("PA"):
        # The token names the last record already served, so numbers added or removed
        # while a client pages through do not shift records between pages.
        after = next((i for i, n in enumerate(numbers) if n["sid"] == token[2:]), None)
        if after is not None:
            start = after + 1
    items = numbers[start:start + size]
    path = f"{_account_uri(account)}/IncomingPhoneNumbers.json"

    def uri(page_number, page_token=None):
        query = dict(filters, PageSize=size, Page=page_number)
        if page_token:
            query["PageToken"] = page_token
        return f"{path}?{urlencode(query)}"

    has_next = start + size < len(numbers)
    return 200, {
        "incoming_phone_numbers": [_number_resource(account, n) for n in items],
        "end": start + len(items) - 1 if items else start,
        "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1, "PA" + items[-1]["sid"]) if has_next and items else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "start": start,
        "uri": uri(page, token or None),
    }


def _fetch_number(request, account, sid):
    number = account.get_number(sid)
    if number is None:
        raise _not_found(request)
    return 200, _number_resource(account, number)


def _update_number(request, account, sid):
    if account.get_number(sid) is None:
        raise _not_found(request)
    changes = {}
    for key, value in request.form.items():
        field = _FORM_FIELDS.get(key)
        if field is None:
            continue
        if field == "voice_caller_id_lookup":
            changes[field] = value.lower() == "true"
        elif field in _METHOD_FIELDS:
            if value.upper() not in ("GET", "POST"):
                raise ApiError(400, 21403, f"{key} must be GET or POST")
            changes[field] = value.upper()
        elif field in _URL_FIELDS and value and not _URL.match(value):
            raise ApiError(400, 21402, f"{key} is not a valid URL: {value}")
        elif field in _SID_FIELDS and value and not re.fullmatch(_SID_FIELDS[field] + "[0-9a-fA-F]{32}", value):
            raise ApiError(400, 21401, f"{key} is not a valid SID: {value}")
        else:
            changes[field] = value
    return 200, _number_resource(account, account.update_number(sid, **changes))


def _call_resource(account, call: dict) -> dict:
    body = {key: value for key, value in call.items() if key not in _CALL_PRIVATE}
    base = f"{_account_uri(account)}/Calls/{call['sid']}"
    body["uri"] = f"{base}.json"
    body["subresource_uris"] = {"notifications": f"{base}/Notifications.json",
                                "recordings": f"{base}/Recordings.json", "events": f"{base}/Events.json"}
    return body


def _create_call(request, account, on_call_created=None):
    form = request.form
    to, from_ = form.get("To", "").strip(), form.get("From", "").strip()
    if not to:
        raise ApiError(400, 21201, "No 'To' number is specified")
    if not from_:
        raise ApiError(400, 21213, "No 'From' number is specified")
    if not (_E164.match(to) or to.startswith(("client:", "sip:"))):
        raise ApiError(400, 21211, f"Invalid 'To' Phone Number: {to}")
    if not (_E164.match(from_) or from_.startswith("client:")):
        raise ApiError(400, 21212, f"Invalid 'From' Phone Number: {from_}")
    if not (form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")):
        raise ApiError(400, 21205, "Url, Twiml or ApplicationSid is required")
    for key in ("Url", "StatusCallback", "FallbackUrl"):
        if form.get(key) and not _URL.match(form[key]):
            raise ApiError(400, 21205, f"{key} is not a valid URL: {form[key]}")
    try:
        timeout = int(form.get("Timeout", 60))
    except ValueError:
        raise ApiError(400, 21218, "Timeout must be an integer") from None
    now = rfc2822()
    own = account.find_number(from_)
    call = account.record_call({
        "sid": new_sid("CA"), "date_created": now, "date_updated": now, "parent_call_sid": None,
        "to": to, "to_formatted": to, "from": from_, "from_formatted": from_,
        "phone_number_sid": own["sid"] if own else None, "status": "queued",
        "start_time": None, "end_time": None, "duration": None, "price": None, "price_unit": "USD",
        "direction": "outbound-api", "answered_by": None, "api_version": "2010-04-01",
        "forwarded_from": None, "group_sid": None, "caller_name": None, "queue_time": "0", "trunk_sid": None,
        "request": {
            "url": form.get("Url"), "method": form.get("Method", "POST").upper(), "twiml": form.get("Twiml"),
            "application_sid": form.get("ApplicationSid"), "fallback_url": form.get("FallbackUrl"),
            "status_callback": form.get("StatusCallback"),
            "status_callback_method": form.get("StatusCallbackMethod", "POST").upper(),
            # Repeated form keys, one per event, as the twilio client sends a list.
            "status_callback_events": form.getlist("StatusCallbackEvent"),
            "timeout": min(timeout, 600), "record": form.get("Record", "false").lower() == "true",
            "machine_detection": form.get("MachineDetection"),
        },
    })
    if on_call_created is not None:
        try:
            on_call_created(call)
        except Exception:
            # The call exists either way, as with Twilio; a failing hook must not turn that into an error.
            log.exception("sandbox on_call_created hook failed for %s", call["sid"])
    return 201, _call_resource(account, call)


def _fetch_call(request, account, sid):
    call = account.get_call(sid)
    if call is None:
        raise _not_found(request)
    return 200, _call_resource(account, call)


_ENDED = ("completed", "busy", "no-answer", "failed", "canceled")


def _update_call(request, account, sid):
    call = account.get_call(sid)
    if call is None:
        raise _not_found(request)
    status = request.form.get("Status", "")
    if status and status not in ("completed", "canceled"):
        raise ApiError(400, 21218, f"Status must be completed or canceled, not {status}")
    if status and call.get("status") not in _ENDED:
        # Hanging up a call that has not been answered cancels it, as Twilio does.
        ended = "completed" if call.get("status") == "in-progress" or status == "completed" else "canceled"
        call = account.update_call(sid, status=ended, end_time=rfc2822())
    return 200, _call_resource(account, call)


def _create_message(request, account):
    form = request.form
    to, from_, body = form.get("To", "").strip(), form.get("From", "").strip(), form.get("Body", "")
    if not _E164.match(to):
        raise ApiError(400, 21211, f"Invalid 'To' Phone Number: {to}")
    if not _E164.match(from_):
        raise ApiError(400, 21212, f"Invalid 'From' Phone Number: {from_}")
    if not body.strip():
        raise ApiError(400, 21602, "Message body is required")
    if len(body) > 1600:
        raise ApiError(400, 21617, "The concatenated message body exceeds the 1600 character limit")
    message = account.record_message({"to": to, "from": from_, "body": body})
    base = f"{_account_uri(account)}/Messages/{message['sid']}"
    return 201, dict(message, uri=f"{base}.json", subresource_uris={"media": f"{base}/Media.json"})


# -- Monitor v1 -------------------------------------------------------------------


def _parse_date(request, key):
    raw = request.args.get(key)
    if not raw:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ApiError(400, 20001, f"{key} must be YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ")


def _list_alerts(request, account):
    size, page = _page_args(request)
    start, end = _parse_date(request, "StartDate"), _parse_date(request, "EndDate")
    if end is not None and len(request.args["EndDate"]) == 10:
        end = end.replace(hour=23, minute=59, second=59)
    level = request.args.get("LogLevel")
    alerts = []
    for alert in account.alerts():
        created = datetime.strptime(alert["date_created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if (start and created < start) or (end and created > end) or (level and alert["log_level"] != level):
            continue
        alerts.append(alert)
    items = alerts[page * size:(page + 1) * size]
    filters = {key: request.args[key] for key in ("LogLevel", "StartDate", "EndDate") if request.args.get(key)}

    def url(page_number):
        return f"{MONITOR_HOST}/v1/Alerts?{urlencode(dict(filters, PageSize=size, Page=page_number))}"

    return 200, {
        "alerts": [_alert_resource(a) for a in items],
        "meta": {
            "first_page_url": url(0), "key": "alerts",
            # Absolute, like Twilio's v1 APIs; clients pointed elsewhere must rewrite the host.
            "next_page_url": url(page + 1) if (page + 1) * size < len(alerts) else None,
            "page": page, "page_size": size,
            "previous_page_url": url(page - 1) if page > 0 else None, "url": url(page),
        },
    }


def _alert_resource(alert: dict) -> dict:
    return dict(alert, url=f"{MONITOR_HOST}/v1/Alerts/{alert['sid']}")


def _fetch_alert(request, account, sid):
    alert = next((a for a in account.alerts() if a["sid"] == sid), None)
    if alert is None:
        raise _not_found(request)
    return 200, dict(_alert_resource(alert), request_variables="", response_body="", response_headers="",
                     request_headers="")
