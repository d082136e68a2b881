"""What Twilio sent about a call, made to fit the columns that keep it.

A value that does not fit is dropped or cut with a warning; an error would set the whole event aside.
"""
from __future__ import annotations

import logging

from phoneapp.domain.fitting import fit_count, fit_sid, fit_text

log = logging.getLogger("phoneapp.services.calls")

# A call's numbers as its record keeps them: control characters removed, at most 32 characters.
NUMBER_LENGTH = 32
CALLER_NAME_LENGTH = 100


def _shown(value, limit=80):
    """`value` short enough for a log line."""
    return value[:limit] + "…" if isinstance(value, str) and len(value) > limit else value


def _fitted(fitted, field, raw, call_sid):
    if fitted.problem is not None:
        log.warning("call %s: %s %r does not fit; %s", call_sid, field, _shown(raw), fitted.problem)
    return fitted.value


def fitted_count(params, field, call_sid):
    """params[field] as a whole number in 0..2**31-1 (a duration in seconds), else None."""
    return _fitted(fit_count(params.get(field)), field, params.get(field), call_sid)


def fitted_text(params, field, length, call_sid):
    """params[field] without control characters, cut to `length`; None when absent."""
    return _fitted(fit_text(params.get(field), length), field, params.get(field), call_sid)


def fitted_sid(params, field, call_sid):
    """params[field] if it can be a SID (it fits String(34), no spaces or controls), else None."""
    return _fitted(fit_sid(params.get(field)), field, params.get(field), call_sid)


def usable_call_sid(params, field="CallSid"):
    """The call's key, or None when there is none or Twilio sent one that cannot be (with a warning): the event is
    then not recorded, as one without a CallSid never was; Twilio has been answered all the same."""
    fitted = fit_sid(params.get(field))
    if fitted.problem is not None:
        log.warning("call ?: %s %r does not fit; %s, the event is not recorded", field, _shown(params.get(field)),
                    fitted.problem)
    return fitted.value


def call_label(*sids):
    """The first of `sids` that can be a SID, to name the call in a warning; "?" when none can."""
    return next((sid for sid in sids if fit_sid(sid).value), "?")


def called_number(params):
    """The To of a call as stored: the key of its number's alerts."""
    return fit_text(params.get("To") or "", NUMBER_LENGTH).value


def caller_fields(params, call_sid):
    """The caller and the called number as the inbound call's own requests name them."""
    return {
        "from_number": fitted_text(params, "From", NUMBER_LENGTH, call_sid) or "",
        "to_number": fitted_text(params, "To", NUMBER_LENGTH, call_sid) or "",
        "caller_city": fitted_text(params, "FromCity", 100, call_sid) or None,
        "caller_state": fitted_text(params, "FromState", 100, call_sid) or None,
        "caller_zip": fitted_text(params, "FromZip", 20, call_sid) or None,
        "caller_country": fitted_text(params, "FromCountry", 10, call_sid) or None,
        # Twilio's caller-name lookup (CNAM), carriers' free text shown as a hint: fitted quietly, as nothing
        # about the call or its number is wrong when it is odd.
        "caller_name": fit_text(params.get("CallerName"), CALLER_NAME_LENGTH).value or None,
    }
