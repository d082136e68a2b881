"""Error responses: JSON for the API, TwiML-free plain text for webhooks, pages for browsers."""
from flask import current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from phoneapp.web.htmx import is_htmx


def _is_webhook():
    # Twilio's routes, including the old per-client voice URL kept under /api/twilio/.
    return request.blueprint == "webhooks" or request.path.startswith(("/twilio/", "/api/twilio/"))


def _wants_json():
    return request.path.startswith("/api/") and not _is_webhook()


def _size(count):
    for unit, size in (("MB", 1024 * 1024), ("KB", 1024)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"


def too_large_message():
    """What a refused oversized request is told: the limits, in words."""
    config = current_app.config
    return (f"The request is too large: phoneapp accepts at most {_size(config['MAX_CONTENT_LENGTH'])} in one "
            f"request and at most {config['MAX_FORM_PARTS']} form fields.")


def register_error_handlers(app):
    # The body is refused when first read, which the CSRF and Twilio signature checks do before any view writes.
    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error):
        message = too_large_message()
        if _wants_json():
            return jsonify(error="request body too large",
                           details={"body": f"at most {current_app.config['MAX_CONTENT_LENGTH']} bytes"}), 413
        if _is_webhook():
            return message, 413, {"Content-Type": "text/plain; charset=utf-8"}
        if is_htmx():
            return render_template("errors/_fragment.html", code=413, message=message), 413
        return render_template("errors/error.html", code=413, title="Request too large", message=message), 413

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        if _wants_json():
            return jsonify(error="CSRF token missing or invalid", details={"reason": error.description}), 400
        return render_template("errors/error.html", code=400, title="Form expired",
                               message="The form was open too long or came from elsewhere. Reload and try again."), 400

    @app.errorhandler(HTTPException)
    def http_error(error):
        # A 405 must still say which methods are allowed.
        headers = {name: value for name, value in error.get_headers() if name == "Allow"}
        if _wants_json():
            return jsonify(error=error.description or error.name, details={}), error.code, headers
        if _is_webhook():
            # Twilio's debugger shows this body: say why ("CallSid is required"), not just "Bad Request".
            return error.description or error.name, error.code, {"Content-Type": "text/plain", **headers}
        if is_htmx():
            return (render_template("errors/_fragment.html", code=error.code, message=error.description),
                    error.code, headers)
        return render_template("errors/error.html", code=error.code, title=error.name,
                               message=error.description), error.code, headers

    @app.errorhandler(Exception)
    def unexpected_error(error):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return jsonify(error="internal error", details={}), 500
        if _is_webhook():
            # Twilio logs the body in its debugger; a staff page (and its session cookie) means nothing there.
            return "internal error; it was logged", 500, {"Content-Type": "text/plain"}
        return render_template("errors/error.html", code=500, title="Something went wrong",
                               message="The error was logged. Please try again."), 500
