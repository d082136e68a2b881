"""Error responses: JSON for the API, TwiML-free plain text for webhooks, pages for browsers."""
from flask import jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from phoneapp.htmx import is_htmx


def _wants_json():
    return request.path.startswith("/api/")


def register_error_handlers(app):
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
        if request.path.startswith("/twilio/"):
            return error.name, error.code, {"Content-Type": "text/plain", **headers}
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
        return render_template("errors/error.html", code=500, title="Something went wrong",
                               message="The error was logged. Please try again."), 500
