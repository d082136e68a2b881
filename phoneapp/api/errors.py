"""API errors: always {"error": ..., "details": {...}} with a 4xx (or 502 when Twilio failed)."""
from flask import current_app, jsonify
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from phoneapp.extensions import db
from phoneapp.services.errors import NotFound, UpstreamError, ValidationError


class ApiError(Exception):
    """A refusal the API reports as is: status, one-line message, and details per field."""

    def __init__(self, status, message, details=None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def error_response(status, message, details=None, headers=None):
    response = jsonify(error=message, details={key: str(value) for key, value in (details or {}).items()})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def register_error_handlers(bp):
    """Attach the API's handlers to `bp`; errors outside its views get the app's JSON handlers."""

    @bp.errorhandler(ApiError)
    def api_error(error):
        return error_response(error.status, error.message, error.details, error.headers)

    @bp.errorhandler(ValidationError)
    def invalid_input(error):
        # A service may have flushed before it found the problem; nothing of it may be committed later.
        db.session.rollback()
        return error_response(400, f"invalid input: {error.message}", error.details)

    @bp.errorhandler(NotFound)
    def not_found(error):
        db.session.rollback()
        return error_response(404, error.message, {error.field: error.message} if error.field else {})

    @bp.errorhandler(UpstreamError)
    def upstream_error(error):
        db.session.rollback()
        return error_response(502, error.message, {"upstream": "Twilio refused the request or could not be reached"})

    @bp.errorhandler(IntegrityError)
    def conflict(error):
        # Two requests raced to create the same row; the loser may simply retry.
        db.session.rollback()
        current_app.logger.info("API write conflict: %s", error.orig)
        return error_response(409, "the change conflicts with another one made at the same time; retry it",
                              {"conflict": "a unique value was taken meanwhile"})

    @bp.errorhandler(RequestEntityTooLarge)
    def too_large(error):
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return error_response(413, "request body too large", {"body": f"at most {limit} bytes"} if limit else {})

    @bp.errorhandler(HTTPException)
    def http_error(error):
        headers = {key: value for key, value in error.get_headers() if key.lower() == "allow"}
        return error_response(error.code, error.description or error.name, {}, headers)
