"""Staff accounts, API tokens and checking a login's password."""
import functools
import secrets
from zoneinfo import available_timezones

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from phoneapp.domain.business_hours import parse_zone
from phoneapp.extensions import db
from phoneapp.models import ROLES, ApiToken, User, utcnow
from phoneapp.services.audit import record_audit
from phoneapp.services.errors import ValidationError

MIN_PASSWORD_LENGTH = 10
MAX_NAME_LENGTH = 120
TOKEN_PREFIX = "pa_"
EMAIL_TAKEN = "a user with this e-mail already exists"


def user_fields(user):
    """What the audit trail keeps of an account: never the password hash."""
    return {"email": user.email, "name": user.name, "role": user.role, "is_active": user.is_active_user}


def create_user(email, password, role="staff", name="", actor=None):
    """A new staff account, audited; ValidationError for a taken e-mail, weak password or unknown role."""
    errors = {}
    email = (email or "").strip().lower()
    name = (name or "").strip()
    if "@" not in email or len(email) > 254:
        errors["email"] = "not an e-mail address"
    elif db.session.scalars(sa.select(User).where(User.email == email)).first() is not None:
        errors["email"] = EMAIL_TAKEN
    if len(name) > MAX_NAME_LENGTH:
        errors["name"] = f"at most {MAX_NAME_LENGTH} characters"
    if role not in ROLES:
        errors["role"] = f"must be one of {', '.join(ROLES)}"
    if len(password or "") < MIN_PASSWORD_LENGTH:
        errors["password"] = f"at least {MIN_PASSWORD_LENGTH} characters"
    if errors:
        raise ValidationError(errors)
    user = User(email=email, role=role, name=name or email.split("@")[0])
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:
        # Two admins adding the same address at once: the unique index decides, the loser gets the reason.
        db.session.rollback()
        raise ValidationError({"email": EMAIL_TAKEN}) from None
    record_audit("create_user", user, after=user_fields(user), actor=actor)
    db.session.commit()
    return user


def users_with_token_counts():
    """Every account with how many of its API tokens still work, in one grouped query."""
    live = (sa.select(ApiToken.user_id, sa.func.count().label("tokens"))
            .where(ApiToken.revoked_at.is_(None))
            .group_by(ApiToken.user_id).subquery())
    return db.session.execute(
        sa.select(User, sa.func.coalesce(live.c.tokens, 0))
        .outerjoin(live, live.c.user_id == User.id)
        .order_by(User.email)
    ).all()


def tokens_of(user):
    """A user's tokens, newest first, revoked ones included so the history stays readable."""
    return db.session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == user.id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    ).all()


def _is_last_active_admin(user):
    """True when `user` is the only active admin left.

    The rows are locked so two admins demoting each other at the same moment cannot both pass.
    """
    if not (user.role == "admin" and user.is_active_user):
        return False
    admin_ids = db.session.scalars(
        sa.select(User.id).where(User.role == "admin", User.is_active_user.is_(True))
        .order_by(User.id).with_for_update()
    ).all()
    return admin_ids == [user.id]


def _refuse_self_or_last_admin(user, field, own_reason, actor):
    if actor is not None and actor.id == user.id:
        raise ValidationError({field: own_reason})
    if _is_last_active_admin(user):
        raise ValidationError({field: "this is the last active admin; make another admin first"})


def set_role(user, role, actor=None):
    """Make `user` an admin or staff; nobody demotes themselves and one active admin always remains."""
    if role not in ROLES:
        raise ValidationError({"role": f"must be one of {', '.join(ROLES)}"})
    if role == user.role:
        return user
    if user.role == "admin":
        _refuse_self_or_last_admin(user, "role", "you cannot remove your own admin role", actor)
    before = {"role": user.role}
    user.role = role
    record_audit("change_role", user, before=before, after={"role": role}, actor=actor)
    db.session.commit()
    return user


def set_active(user, active, actor=None):
    """Deactivate or reactivate an account; its tokens stop working while it is inactive.

    Either way its sessions end for good: a cookie saved before deactivation stays dead after reactivation.
    """
    if active == user.is_active_user:
        return user
    if not active:
        _refuse_self_or_last_admin(user, "is_active", "you cannot deactivate your own account", actor)
    user.is_active_user = active
    user.end_sessions()
    record_audit("activate_user" if active else "deactivate_user", user,
                 before={"is_active": not active}, after={"is_active": active}, actor=actor)
    db.session.commit()
    return user


@functools.cache
def time_zone_names():
    """Every IANA time zone name this machine knows, sorted: the choices of a user's own zone."""
    return tuple(sorted(available_timezones()))


def set_timezone(user, name, actor=None):
    """Show `user` page times in `name`, an IANA time zone; blank: APP_TIMEZONE. ValidationError for anything else."""
    name = (name or "").strip()
    zone = None
    if name:
        parsed, why = parse_zone(name)
        if why is None and parsed.key not in time_zone_names():
            why = f"{name[:64]!r} is not a time zone (use a name such as America/New_York)"
        if why:
            raise ValidationError({"timezone": why})
        zone = parsed.key
    if zone == user.timezone:
        return user
    before = {"timezone": user.timezone}
    user.timezone = zone
    record_audit("change_timezone", user, before=before, after={"timezone": zone}, actor=actor)
    db.session.commit()
    return user


def end_sessions(user):
    """Sign `user` out of every browser: each session and remember cookie saved so far stops working.

    API tokens are separate and keep working.
    """
    user.end_sessions()
    db.session.commit()
    return user


def find_user(email):
    return db.session.scalars(sa.select(User).where(User.email == (email or "").strip().lower())).first()


def issue_token(user, actor=None):
    """A new API token for `user`; the plain token is returned once and only its hash is kept.

    The trail names the token by its prefix, never by the token.
    """
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user=user, token_hash=ApiToken.hash_token(token), prefix=token[:10])
    db.session.add(row)
    db.session.flush()
    record_audit("issue_token", user, after={"token_id": row.id, "token_prefix": row.prefix}, actor=actor)
    db.session.commit()
    return token


def revoke_token(token_row, actor=None):
    """Stop a token from working; it stays listed, with when it was revoked."""
    if token_row.revoked_at is not None:
        return token_row
    token_row.revoked_at = utcnow()
    record_audit("revoke_token", token_row.user,
                 before={"token_id": token_row.id, "token_prefix": token_row.prefix},
                 after={"token_id": token_row.id, "token_prefix": None}, actor=actor)
    db.session.commit()
    return token_row


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


def authenticate(email, password):
    """The active user with this e-mail and password, or None.

    Every attempt costs one password hash with the hasher and parameters User.set_password uses: an unknown
    e-mail is checked against a dummy hash, an inactive account's password is checked before it is refused.
    Otherwise the time of the answer would tell which e-mails have accounts.
    """
    user = find_user(email)
    if user is None:
        check_password_hash(dummy_password_hash(), password)
        return None
    if not user.check_password(password) or not user.is_active:
        return None
    return user


@functools.cache
def dummy_password_hash():
    """A hash of a random password nobody knows, made once per process like User.set_password makes them."""
    return generate_password_hash(secrets.token_urlsafe(32))
