"""The api blueprint and who may use it: a session (with a CSRF token for changes) or a bearer token."""
from functools import wraps

from flask import Blueprint, request
from flask_login import current_user

from phoneapp.api.errors import ApiError, register_error_handlers
from phoneapp.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api")
register_error_handlers(bp)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def acting_user():
    """Who the audit trail names for this request's changes: the session's or the token's user."""
    return current_user._get_current_object()


def is_bearer_request():
    """True when the user came from an Authorization header rather than the session cookie."""
    return bool(request.environ.get("phoneapp.bearer"))


@bp.before_request
def authenticate():
    """Every API route needs a user; cookie sessions also need a CSRF token to change anything."""
    # A CORS preflight carries no credentials and gets nothing but the Allow header back.
    if request.method == "OPTIONS":
        return None
    if not current_user.is_authenticated:
        if request.headers.get("Authorization", "").startswith("Bearer "):
            raise ApiError(401, "invalid or revoked API token",
                           {"authorization": "the bearer token is unknown, revoked or its user is inactive"},
                           headers={"WWW-Authenticate": 'Bearer realm="phoneapp", error="invalid_token"'})
        raise ApiError(401, "authentication required",
                       {"hint": "log in, or send Authorization: Bearer <token>"},
                       headers={"WWW-Authenticate": 'Bearer realm="phoneapp"'})
    # A browser sends the session cookie along with any site's form; a bearer token is never sent by accident.
    if request.method in UNSAFE_METHODS and not is_bearer_request():
        csrf.protect()
    return None


def require_role(*roles):
    """Decorator: 403 unless the current user has one of `roles`."""
    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                raise ApiError(403, "not allowed for your role",
                               {"role": f"needs {' or '.join(roles)}; you are {current_user.role}"})
            return view(*args, **kwargs)
        return wrapped
    return decorate
