"""Staff and their API tokens."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from phoneapp.extensions import db
from phoneapp.models.base import utcnow

ROLES = ("admin", "staff")


def new_session_token():
    """A fresh session generation for a user: every login cookie carries it, rotating it ends them all."""
    return secrets.token_urlsafe(32)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    role: Mapped[str] = mapped_column(sa.String(10), default="staff")
    is_active_user: Mapped[bool] = mapped_column("is_active", sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # Times on pages are shown in this zone; none: APP_TIMEZONE.
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    # The user's session generation. Flask-Login keeps get_id() ("<id>:<token>") in the session and any
    # remember cookie, so a new token here ends every session and remember cookie of this user at once.
    session_token: Mapped[str] = mapped_column(sa.String(64), default=new_session_token)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")

    __table_args__ = (sa.CheckConstraint("role in ('admin', 'staff')", name="role"),)

    @property
    def is_active(self):
        return self.is_active_user

    @property
    def is_admin(self):
        return self.role == "admin"

    def get_id(self):
        """Flask-Login's alternative id: the user and the session generation it was logged in under."""
        return f"{self.id}:{self.session_token}"

    def end_sessions(self):
        """Sign this user out everywhere: sessions and remember cookies saved so far stop working."""
        self.session_token = new_session_token()

    def set_password(self, password):
        """A new password ends the sessions opened with the old one."""
        self.password_hash = generate_password_hash(password)
        self.end_sessions()

    def check_password(self, password):
        return check_password_hash(self.password_hash, password)

    def __repr__(self):
        return f"<User {self.email} {self.role}>"


class ApiToken(db.Model):
    """A bearer token; only its SHA-256 is kept, the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")

    @staticmethod
    def hash_token(token):
        return hashlib.sha256(token.encode()).hexdigest()

    def __repr__(self):
        return f"<ApiToken {self.prefix}… user={self.user_id}>"
