"""The Users pages: accounts, roles, deactivation and API tokens (admins only), and everybody's own settings."""
from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from phoneapp.extensions import db, login_manager
from phoneapp.models import ROLES, ApiToken, User
from phoneapp.services import users as user_service
from phoneapp.services.audit import audit_trail
from phoneapp.services.errors import ValidationError
from phoneapp.web.view_helpers import acting_user, row_or_404

bp = Blueprint("users", __name__, url_prefix="/users")

NEW_USER_FIELDS = ("email", "name", "role")
# The only routes here that are not admins': each works on the signed-in user's own account and nobody else's.
OWN_ACCOUNT_ENDPOINTS = frozenset({"users.account", "users.set_own_timezone"})


@bp.before_request
def admins_only():
    """Guard every route here at once, so a route added later cannot forget it."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin and request.endpoint not in OWN_ACCOUNT_ENDPOINTS:
        abort(403, description="Only admins manage users.")
    return None


def list_page(form, errors, status=200):
    return render_template("users/users.html", rows=user_service.users_with_token_counts(), roles=ROLES,
                           min_password=user_service.MIN_PASSWORD_LENGTH, form=form, errors=errors), status


def detail_page(user, errors=None, status=200):
    events = audit_trail("User", user.id)
    return render_template("users/user_detail.html", user=user, tokens=user_service.tokens_of(user), roles=ROLES,
                           events=events, client_names={}, errors=errors or {}), status


def refused(user, exc):
    """Nothing changed: the page again with the reason beside the control that asked for it."""
    db.session.rollback()
    return detail_page(user, exc.details, 422)


def changed(user, change, message):
    """Make `change` to an account: back to its page with `message()`, or the page with the reason it was refused."""
    try:
        change()
    except ValidationError as exc:
        return refused(user, exc)
    flash(message(), "success")
    return redirect(url_for("users.detail", user_id=user.id), code=303)


@bp.get("")
def index():
    """Every account, with a form to add one."""
    return list_page(form={"role": "staff"}, errors={})


@bp.post("")
def create():
    """Add an account; the list again with the reasons when the input is refused."""
    form = {field: request.form.get(field, "") for field in NEW_USER_FIELDS}
    try:
        user = user_service.create_user(form["email"], request.form.get("password", ""), role=form["role"],
                                        name=form["name"], actor=acting_user())
    except ValidationError as exc:
        # Not echoed back: a typed password must not end up in the page's HTML or the browser's cache.
        return list_page(form, exc.details, 422)
    flash(f"User {user.email} added.", "success")
    return redirect(url_for("users.detail", user_id=user.id), code=303)


@bp.get("/<int:user_id>")
def detail(user_id):
    """One account: role, status, API tokens and what was changed on it."""
    return detail_page(row_or_404(User, user_id))


@bp.post("/<int:user_id>/role")
def change_role(user_id):
    """Make an account admin or staff."""
    user = row_or_404(User, user_id)
    return changed(user, lambda: user_service.set_role(user, request.form.get("role", ""), actor=acting_user()),
                   lambda: f"{user.email} is {'an admin' if user.is_admin else 'staff'} now.")


@bp.post("/<int:user_id>/deactivate")
def deactivate(user_id):
    """Lock an account out; it and its history stay."""
    user = row_or_404(User, user_id)
    return changed(user, lambda: user_service.set_active(user, False, actor=acting_user()),
                   lambda: f"{user.email} is deactivated: signed out and API tokens refused.")


@bp.post("/<int:user_id>/activate")
def activate(user_id):
    """Let a deactivated account back in, with the tokens it had."""
    user = row_or_404(User, user_id)
    return changed(user, lambda: user_service.set_active(user, True, actor=acting_user()),
                   lambda: f"{user.email} is active again.")


@bp.post("/<int:user_id>/tokens")
def issue_token(user_id):
    """Answer with the new token itself: a redirect would have to carry it in a URL or the session."""
    user = row_or_404(User, user_id)
    if not user.is_active:
        return refused(user, ValidationError({"tokens": "the account is inactive; reactivate it first"}))
    token = user_service.issue_token(user, actor=acting_user())
    response = make_response(render_template("users/user_token.html", user=user, token=token))
    # Back, history and proxies must not keep a copy of the page that shows the token.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.post("/<int:user_id>/tokens/<int:token_id>/revoke")
def revoke_token(user_id, token_id):
    """Stop one token from working."""
    token = row_or_404(ApiToken, token_id)
    if token.user_id != user_id:
        abort(404)
    user_service.revoke_token(token, actor=acting_user())
    flash(f"Token {token.prefix}… revoked.", "success")
    return redirect(url_for("users.detail", user_id=user_id), code=303)


def account_page(form, errors, status=200):
    return render_template("users/account.html", zones=user_service.time_zone_names(), form=form,
                           errors=errors), status


@bp.get("/me")
def account():
    """The signed-in user's own settings: the time zone pages show times in."""
    return account_page({"timezone": current_user.timezone or ""}, {})


@bp.post("/me/timezone")
def set_own_timezone():
    """Show the signed-in user's pages in a time zone of their own, or in the app's again."""
    name = request.form.get("timezone", "")
    try:
        user_service.set_timezone(acting_user(), name, actor=acting_user())
    except ValidationError as exc:
        db.session.rollback()
        return account_page({"timezone": name}, exc.details, 422)
    flash(f"Times are shown in {current_user.timezone or current_app.config['APP_TIMEZONE']} now.", "success")
    return redirect(url_for("users.account"), code=303)
