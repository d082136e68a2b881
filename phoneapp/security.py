"""Security headers on every response (pages, htmx fragments, the API, webhooks, static files), and body limits."""
from flask import current_app, request
from flask_login import current_user
from flask_talisman import Talisman
from werkzeug.exceptions import RequestEntityTooLarge

# Everything a page needs is served by phoneapp itself: htmx is vendored, app.js and app.css are files, charts
# are inline SVG, and recordings are links that open on Twilio, not players embedded here.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "font-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

# Nothing here uses a device or a tracking API; a script that got in anyway gets none of them.
PERMISSIONS_POLICY = {
    "accelerometer": "()",
    "browsing-topics": "()",
    "camera": "()",
    "display-capture": "()",
    "geolocation": "()",
    "gyroscope": "()",
    "magnetometer": "()",
    "microphone": "()",
    "payment": "()",
    "usb": "()",
}

HSTS_MAX_AGE = 365 * 24 * 3600
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def init_security(app):
    """Send the security headers, refuse oversized bodies up front; cookies and HTTPS stay with the settings."""
    # First of all before_request functions: the CSRF check and the Twilio signature parse the form, and a
    # body of 170,000 fields costs a second to parse before it could be refused.
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_oversized_body)
    app.after_request(keep_private_answers_out_of_caches)
    public_https = app.config["PUBLIC_BASE_URL"].startswith("https://")
    Talisman(
        app,
        content_security_policy=CONTENT_SECURITY_POLICY,
        frame_options="DENY",
        # Same-origin pages still send it, which Flask-WTF's CSRF check of HTTPS forms relies on; links out
        # (recordings on Twilio) reveal nothing of where staff were.
        referrer_policy="same-origin",
        permissions_policy=PERMISSIONS_POLICY,
        # TLS ends at the reverse proxy, and the sandbox demo and the tests run on plain http://localhost:
        # a redirect to https here would break both and protect nothing the proxy does not.
        force_https=False,
        # Only a site whose public address is https may tell browsers never to use http again; Talisman
        # further sends it on secure requests only. This host alone: names below it are not phoneapp's to pin.
        strict_transport_security=public_https,
        strict_transport_security_max_age=HSTS_MAX_AGE,
        strict_transport_security_include_subdomains=False,
        # config.py decides the cookie flags from PUBLIC_BASE_URL; Talisman's own default would mark the
        # session cookie Secure on every request and lock staff out of the http:// demo.
        session_cookie_secure=False,
        session_cookie_http_only=app.config["SESSION_COOKIE_HTTPONLY"],
        session_cookie_samesite=app.config["SESSION_COOKIE_SAMESITE"],
    )


def refuse_oversized_body():
    # Werkzeug enforces MAX_CONTENT_LENGTH only when a view reads the body; a DELETE or a view that ignores its
    # body would otherwise act on a request that is refused everywhere else.
    limit = request.max_content_length
    if limit is not None and request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()
    # Werkzeug bounds the parts of a multipart body, not the fields of an urlencoded one: count them unparsed.
    # The body is cached, so the form is parsed from it later as usual.
    if request.mimetype == "application/x-www-form-urlencoded" and request.method in BODY_METHODS:
        body = request.get_data(cache=True)
        if body and body.count(b"&") + 1 > current_app.config["MAX_FORM_PARTS"]:
            raise RequestEntityTooLarge()


def keep_private_answers_out_of_caches(response):
    """Pages, fragments, exports and API answers for a signed-in user, and TwiML: no browser or proxy keeps a copy.

    Back after logout, a shared computer or a caching proxy would otherwise show calls and clients to whoever
    comes next. Static files stay cacheable; an answer that set its own Cache-Control keeps it.
    """
    if request.endpoint == "static" or "Cache-Control" in response.headers:
        return response
    # TwiML names the phones calls go to; asked first, a webhook costs no look at the session for its user.
    if request.blueprint == "webhooks" or request.path.startswith("/api/") or current_user.is_authenticated:
        response.headers["Cache-Control"] = "no-store"
    return response
