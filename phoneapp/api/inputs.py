"""Reading API input: JSON bodies and query strings, refused with a 4xx that names the field."""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from flask import request

from phoneapp.api.errors import ApiError
from phoneapp.domain.call_status import OUTCOMES, outcome_words
from phoneapp.models import MAX_ID
from phoneapp.services.errors import ValidationError

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
_DIGITS = re.compile(r"^[0-9]+$")
_TRUE, _FALSE = "true", "false"


def _json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _no_duplicate_keys(pairs):
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"duplicate key(s) {', '.join(map(repr, duplicates))}")
    return dict(pairs)


def _no_constants(name):
    raise ValueError(f"{name} is not a JSON number")


def json_body(allow_empty=False):
    """The request's JSON object; 415 if it is not JSON, 400 if it cannot be read, 413 if too big.

    With `allow_empty`, a request with no body at all stands for `{}` (every field optional).
    """
    if allow_empty and not request.get_data(cache=True):
        return {}
    if not request.is_json:
        raise ApiError(415, "the request body must be JSON",
                       {"content_type": f"expected application/json, got {request.mimetype or 'none'}"})
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not valid JSON", {"body": "not UTF-8 text"}) from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "request body is not valid JSON",
                       {"body": f"{exc.msg} at line {exc.lineno} column {exc.colno}"}) from None
    except RecursionError:
        raise ApiError(400, "request body is not valid JSON", {"body": "nested too deeply"}) from None
    except ValueError as exc:  # duplicate keys, NaN/Infinity, integers too long to convert
        raise ApiError(400, "request body is not valid JSON", {"body": str(exc)}) from None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object",
                       {"body": f"expected an object, got {_json_type(data)}"})
    return data


# -- body fields: types here, meaning (valid phone, existing client) in the services -------------

def text(max_length=None, nullable=False):
    def check(value):
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            return "must be a string or null" if nullable else "must be a string"
        if "\x00" in value:
            return "must not contain NUL characters"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text"
        if max_length is not None and len(value) > max_length:
            return f"at most {max_length} characters"
        return None
    return check


def record_id(nullable=False):
    def check(value):
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
            return "must be an id (a positive integer) or null" if nullable else "must be an id (a positive integer)"
        return None
    return check


def boolean():
    def check(value):
        return None if isinstance(value, bool) else "must be true or false"
    return check


def check_body(data, fields, required=()):
    """Refuse unknown fields, missing required ones and wrong JSON types, naming each field."""
    errors = {}
    for name in sorted(set(data) - set(fields)):
        errors[name] = "unknown field"
    for name in required:
        if name not in data:
            errors[name] = "required"
    for name, check in fields.items():
        if name in data and name not in errors:
            problem = check(data[name])
            if problem:
                errors[name] = problem
    if errors:
        raise ValidationError(errors)
    return data


# -- query strings -------------------------------------------------------------------------------

class QueryArgs:
    """The query string checked against the parameters an endpoint documents; errors collected per name."""

    def __init__(self, allowed):
        self.errors = {}
        for name in sorted(set(request.args) - set(allowed)):
            self.errors[name] = "unknown query parameter"
        for name in sorted(set(request.args) & set(allowed)):
            if len(request.args.getlist(name)) > 1:
                self.errors[name] = "given more than once"

    def _raw(self, name):
        if name in self.errors or name not in request.args:
            return None
        return request.args[name]

    def integer(self, name, default=None, minimum=1, maximum=MAX_ID):
        raw = self._raw(name)
        if raw is None:
            return default
        # The length check comes first: int() refuses strings of thousands of digits with a ValueError.
        if not _DIGITS.match(raw) or len(raw) > 12 or not minimum <= int(raw) <= maximum:
            self.errors[name] = f"must be a whole number from {minimum} to {maximum}"
            return default
        return int(raw)

    def boolean(self, name):
        raw = self._raw(name)
        if raw is None:
            return None
        if raw.lower() not in (_TRUE, _FALSE):
            self.errors[name] = "must be true or false"
            return None
        return raw.lower() == _TRUE

    def choice(self, name, choices):
        raw = self._raw(name)
        if raw is None:
            return None
        if raw not in choices:
            self.errors[name] = f"must be one of: {', '.join(choices)}"
            return None
        return raw

    def outcomes(self, name):
        """Outcome words joined by commas ("voicemail,missed"), as a tuple in OUTCOMES order."""
        raw = self._raw(name)
        if raw is None:
            return None
        words = outcome_words(raw)
        if words is None:
            self.errors[name] = f"must be one or more of: {', '.join(OUTCOMES)}, joined by commas"
        return words

    def moment(self, name):
        """An ISO 8601 date or date-time as naive UTC; one without an offset is taken as UTC."""
        raw = self._raw(name)
        if raw is None:
            return None
        try:
            value = datetime.fromisoformat(raw.strip())
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
        except (ValueError, OverflowError):
            self.errors[name] = "must be an ISO 8601 date or date-time, e.g. 2024-05-01T13:00:00Z"
            return None
        return value

    def page(self):
        """(page, per_page) with the API's defaults and limits."""
        return self.integer("page", 1), self.integer("per_page", DEFAULT_PER_PAGE, maximum=MAX_PER_PAGE)

    def done(self):
        """Raise for everything found wrong so far, all fields at once."""
        if self.errors:
            raise ValidationError(self.errors)


PAGE_ARGS = ("page", "per_page")
