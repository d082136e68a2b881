"""Staff accounts, API tokens and the login throttle."""
import secrets
from datetime import timedelta

import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import ROLES, ApiToken, LoginAttempt, User, utcnow
from phoneapp.services.errors import ValidationError

MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "pa_"


def create_user(email, password, role="staff", name=""):
    """A new staff account; ValidationError for a taken e-mail, weak password or unknown role."""
    errors = {}
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 254:
        errors["email"] = "not an e-mail address"
    elif db.session.scalars(sa.select(User).where(User.email == email)).first() is not None:
        errors["email"] = "a user with this e-mail already exists"
    if role not in ROLES:
        errors["role"] = f"must be one of {', '.join(ROLES)}"
    if len(password or "") < MIN_PASSWORD_LENGTH:
        errors["password"] = f"at least {MIN_PASSWORD_LENGTH} characters"
    if errors:
        raise ValidationError(errors)
    user = User(email=email, role=role, name=name or email.split("@")[0])
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def find_user(email):
    return db.session.scalars(sa.select(User).where(User.email == (email or "").strip().lower())).first()


def issue_token(user):
    """A new API token for `user`; the plain token is returned once and only its hash is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user=user, token_hash=ApiToken.hash_token(token), prefix=token[:10]))
    db.session.commit()
    return token


def user_for_token(token):
    """The active user owning `token`, or None."""
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    row = db.session.scalars(
        sa.select(ApiToken).where(ApiToken.token_hash == ApiToken.hash_token(token), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None or not row.user.is_active:
        return None
    row.last_used_at = utcnow()
    db.session.commit()
    return row.user


def login_blocked_for(email, remote_addr, max_failures, window_seconds):
    """Seconds until another try is allowed, or 0 when this address may try this e-mail now."""
    since = utcnow() - timedelta(seconds=window_seconds)
    failures = db.session.scalars(
        sa.select(LoginAttempt.attempted_at)
        .where(LoginAttempt.email == email, LoginAttempt.remote_addr == remote_addr,
               LoginAttempt.attempted_at >= since)
        .order_by(LoginAttempt.attempted_at)
    ).all()
    if len(failures) < max_failures:
        return 0
    oldest_counted = failures[-max_failures]
    return max(1, int((oldest_counted + timedelta(seconds=window_seconds) - utcnow()).total_seconds()))


def note_failed_login(email, remote_addr):
    db.session.add(LoginAttempt(email=email, remote_addr=remote_addr))
    db.session.commit()


def clear_failed_logins(email, remote_addr):
    db.session.execute(sa.delete(LoginAttempt).where(LoginAttempt.email == email,
                                                     LoginAttempt.remote_addr == remote_addr))
    db.session.commit()
