"""Login and logout, session and bearer-token users, and what an unauthenticated request gets."""
import hmac
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from phoneapp.extensions import db, login_manager
from phoneapp.models import MAX_ID, User, utcnow
from phoneapp.services import users
from phoneapp.web.htmx import is_htmx

bp = Blueprint("auth", __name__)


def init_login(app):
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"


@login_manager.user_loader
def load_user(alternative_id):
    """The user of a session, from Flask-Login's alternative id "<id>:<session token>" (User.get_id).

    A session saved before the user's token was rotated (logout anywhere, deactivation, reactivation, a new
    password) names an old token and opens nothing; so does one from before the tokens existed (a bare id).
    """
    user_id, _, token = str(alternative_id).partition(":")
    if not (user_id.isascii() and user_id.isdigit()) or int(user_id) > MAX_ID or not token:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.is_active or not hmac.compare_digest(user.session_token.encode(), token.encode()):
        return None
    return user


@login_manager.request_loader
def load_user_from_bearer(req):
    header = req.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    user = users.user_for_token(header[len("Bearer "):].strip())
    if user is not None:
        req.environ["phoneapp.bearer"] = True
    return user


@login_manager.unauthorized_handler
def unauthorized():
    if request.blueprint == "api" or request.path.startswith("/api/"):
        return jsonify(error="authentication required",
                       details={"hint": "log in, or send Authorization: Bearer <token>"}), 401
    if is_htmx():
        # A polling fragment must send the whole page to the login form, not paste it into a card,
        # and after login staff return to the page they were on, not to the fragment.
        login_url = url_for("auth.login", next=page_behind_fragment())
        return "", 401, {"HX-Redirect": login_url}
    return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))


def page_behind_fragment():
    """The same-site path of the page an htmx request came from, if it says."""
    parts = urlsplit(request.headers.get("HX-Current-URL", ""))
    if parts.netloc and parts.netloc != request.host:
        return None
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else "")) if parts.path else None


def safe_next(target):
    """Only same-site relative paths, so a crafted link cannot bounce staff to another site."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login form."""
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.dashboard"))
    next_url = safe_next(request.values.get("next"))
    error = None
    status = 200
    email = ""
    if request.method == "POST":
        email = (request.form.get("email") or "").strip().lower()
        password = request.form.get("password") or ""
        remote = request.remote_addr or "unknown"
        wait = users.login_blocked_for(email, remote, current_app.config["LOGIN_MAX_FAILURES"],
                                       current_app.config["LOGIN_WINDOW_SECONDS"])
        if wait:
            error = f"Too many failed attempts. Try again in {max(1, round(wait / 60))} minute(s)."
            status = 429
        else:
            user = users.find_user(email)
            if user is None or not user.is_active or not user.check_password(password):
                users.note_failed_login(email, remote)
                error = "Wrong e-mail or password."
                status = 401
            else:
                users.clear_failed_logins(email, remote)
                # A fresh session at login, so a planted session id is worth nothing.
                session.clear()
                login_user(user)
                user.last_login_at = utcnow()
                db.session.commit()
                return redirect(next_url or url_for("dashboard.dashboard"), code=303)
    return render_template("auth/login.html", error=error, email=email, next_url=next_url), status


@bp.post("/logout")
@login_required
def logout():
    """End the session, and every other session of this user: a copied or saved cookie must not outlive it."""
    if not request.environ.get("phoneapp.bearer"):
        users.end_sessions(current_user._get_current_object())
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"), code=303)
