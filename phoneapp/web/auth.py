"""Login and logout, the login throttle, session and bearer-token users, and what an unauthenticated request gets."""
import hmac
import math
import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_limiter import RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user

from phoneapp.extensions import db, limiter, login_manager
from phoneapp.models import MAX_ID, User, utcnow
from phoneapp.services import users
from phoneapp.web.htmx import is_htmx

bp = Blueprint("auth", __name__)


def init_login(app):
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    # Made now, not by the first login for an unknown e-mail, which would then take twice as long.
    users.dummy_password_hash()


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


# The login throttle (Flask-Limiter, storage per RATELIMIT_STORAGE_URI). Only failed logins count (answered 401);
# once a limit is reached every attempt it covers is refused with 429, the right password too, until the oldest
# failure in the window is older than LOGIN_WINDOW_SECONDS. The address is the peer, or what the trusted
# proxies say (TRUSTED_PROXY_COUNT). A failure is counted once answered, so attempts already in flight when a
# limit is reached are still answered: at most one more per web thread.
ADDRESS_AND_ACCOUNT = "address+account"


def submitted_account():
    """The e-mail of a login attempt, the way accounts are stored (no longer than one can be); "-" for none."""
    return (request.form.get("email") or "").strip().lower()[:254] or "-"


def address_and_account():
    return f"{get_remote_address()} {submitted_account()}"


def failures_per_address_and_account():
    config = current_app.config
    return f"{config['LOGIN_MAX_FAILURES']} per {config['LOGIN_WINDOW_SECONDS']} seconds"


def failures_per_account():
    config = current_app.config
    return f"{config['LOGIN_ACCOUNT_MAX_FAILURES']} per {config['LOGIN_WINDOW_SECONDS']} seconds"


def failed_login(response):
    return response.status_code == 401


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(failures_per_address_and_account, key_func=address_and_account, scope=ADDRESS_AND_ACCOUNT,
               methods=["POST"], deduct_when=failed_login)
@limiter.limit(failures_per_account, key_func=submitted_account, scope="account",
               methods=["POST"], deduct_when=failed_login)
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
        user = users.authenticate(email, request.form.get("password") or "")
        if user is None:
            error = "Wrong e-mail or password."
            status = 401
        else:
            forget_failures_from_this_address()
            # A fresh session at login, so a planted session id is worth nothing.
            session.clear()
            login_user(user)
            user.last_login_at = utcnow()
            db.session.commit()
            return redirect(next_url or url_for("dashboard.dashboard"), code=303)
    return render_template("auth/login.html", error=error, email=email, next_url=next_url), status


def forget_failures_from_this_address():
    """After the right password, this address's failures for the account are forgiven (typos); the account's
    own count, which may hold somebody else's guesses from elsewhere, is kept."""
    for counted in limiter.current_limits:
        if counted.request_args[-1].endswith(ADDRESS_AND_ACCOUNT):
            try:
                limiter.limiter.clear(counted.limit, *counted.request_args)
            except Exception:  # the storage's errors of every kind: the failures stay, the login goes on
                current_app.logger.warning("could not clear the login throttle's count", exc_info=True)


@bp.errorhandler(RateLimitExceeded)
def too_many_attempts(_error):
    """The login form again, saying how long to wait: until the last limit reached lets another attempt in."""
    reset_at = max((counted.window.reset_time for counted in limiter.current_limits if counted.breached),
                   default=0)
    seconds = max(1.0, reset_at - time.time())
    minutes = math.ceil(seconds / 60)
    error = f"Too many attempts; try again in {minutes} minute{'' if minutes == 1 else 's'}."
    email = (request.form.get("email") or "").strip().lower()
    page = render_template("auth/login.html", error=error, email=email,
                           next_url=safe_next(request.values.get("next")))
    return page, 429, {"Retry-After": str(math.ceil(seconds))}


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
