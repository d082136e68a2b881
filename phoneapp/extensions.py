"""Extension objects, bound to the app in create_app()."""
from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Named constraints keep migrations identical on SQLite and PostgreSQL and let batch mode drop them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
# The login throttle's limits are on the login view; each app's config names the storage (Redis or memory).
# A storage that stops answering is replaced by memory in this process until it is back, rather than refusing
# every login. The headers Flask-Limiter could add would tell a guesser how many tries remain: off.
limiter = Limiter(key_func=get_remote_address, strategy="moving-window", key_prefix="login-throttle",
                  swallow_errors=True, in_memory_fallback_enabled=True, fail_on_first_breach=False,
                  headers_enabled=False)


@limiter.request_filter
def twilio_webhooks_are_not_throttled():
    # Only staff logins are throttled: Twilio's requests skip the throttle's bookkeeping, which cost each call
    # more CPU than its routing.
    return request.blueprint == "webhooks"
