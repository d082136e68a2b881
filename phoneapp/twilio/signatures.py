"""Twilio request signatures, checked against the public URL Twilio actually called."""
from functools import wraps

from flask import abort, current_app, request
from twilio.request_validator import RequestValidator, compare


def public_request_url():
    """PUBLIC_BASE_URL + path + the raw query string: what Twilio signed, whatever proxy sits between."""
    url = current_app.config["PUBLIC_BASE_URL"] + request.path
    if request.query_string:
        # Byte-identical query: re-encoding it would change the signed text.
        url += "?" + request.query_string.decode("latin-1")
    return url


def signature_is_valid():
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    validator = RequestValidator(current_app.config["TWILIO_AUTH_TOKEN"])
    url = public_request_url()
    # Twilio signs the URL as configured: one signature settles nearly every request. Only one that fails it pays
    # for the library's whole check, which also tries the URL with and without its port.
    return compare(validator.compute_signature(url, request.form), signature) or validator.validate(
        url, request.form, signature)


def require_twilio_signature(view):
    """Refuse (403, nothing written) any request not signed by our Twilio account. No off switch."""

    @wraps(view)
    def checked(*args, **kwargs):
        if not signature_is_valid():
            current_app.logger.warning("refused unsigned or forged Twilio request to %s", request.path)
            abort(403)
        return view(*args, **kwargs)

    return checked
