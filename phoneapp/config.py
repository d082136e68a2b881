"""Settings read from the environment (and `.env`), validated once at start-up."""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from phoneapp.phones import InvalidPhoneNumber, parse_phone


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


SANDBOX_TEST_CALLER = "+14155550100"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _flag(environ, name, default=False):
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _duration(environ, name, default_seconds):
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default_seconds
    match = _DURATION.match(raw)
    if not match:
        raise ConfigError(f"{name} must be a number of seconds or like 15m, 2h, 1d; got {raw!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _phone(environ, name, region):
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return parse_phone(raw, region=region)
    except InvalidPhoneNumber as exc:
        raise ConfigError(f"{name} is not a valid phone number: {exc.reason}") from None


def _phone_list(environ, name, region):
    numbers = []
    for part in (environ.get(name) or "").split(","):
        if part.strip():
            try:
                numbers.append(parse_phone(part, region=region))
            except InvalidPhoneNumber as exc:
                raise ConfigError(f"{name} holds an invalid phone number {part.strip()!r}: {exc.reason}") from None
    return numbers


def _positive_int(environ, name, default):
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1; got {raw!r}")
    return int(raw)


def _delays(environ, name, default):
    """Seconds to wait before each retry, e.g. "10,60" retries twice; "" or "none" never retries."""
    raw = environ.get(name)
    if raw is None:
        return list(default)
    if raw.strip().lower() in ("", "none"):
        return []
    delays = []
    for part in raw.split(","):
        match = _DURATION.match(part)
        if not match:
            raise ConfigError(f"{name} must list retry delays such as 10,60 or 30s,5m; got {raw!r}")
        delays.append(int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    return delays


def _smtp_url(environ):
    raw = (environ.get("SMTP_URL") or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname:
        raise ConfigError("SMTP_URL must look like smtp://user:password@mail.example.com:587 "
                          f"(or smtps://, smtp+starttls://); got scheme {parts.scheme!r}")
    return raw


def _base_url(environ, name, default=None):
    raw = (environ.get(name) or "").strip() or default
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL such as https://calls.example.com; got {raw!r}")
    return raw.rstrip("/")


def _database_url(environ, instance_path):
    url = (environ.get("DATABASE_URL") or "").strip()
    if not url:
        return f"sqlite:///{Path(instance_path) / 'phoneapp.db'}"
    # Hosting platforms hand out postgres:// URLs; SQLAlchemy needs the psycopg 3 driver named.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _secret_key(environ, instance_path):
    key = (environ.get("SECRET_KEY") or "").strip()
    if key:
        return key, False
    # Embedded default: a random key kept in instance/ so sessions survive restarts.
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip(), True
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key, True


def load_config(environ, instance_path):
    """Build the Flask config mapping from environment variables."""
    region = (environ.get("PHONE_REGION") or "US").strip().upper()
    account_sid = (environ.get("TWILIO_ACCOUNT_SID") or "").strip()
    auth_token = (environ.get("TWILIO_AUTH_TOKEN") or "").strip()
    if bool(account_sid) != bool(auth_token):
        missing = "TWILIO_AUTH_TOKEN" if account_sid else "TWILIO_ACCOUNT_SID"
        raise ConfigError(f"{missing} is required when the other Twilio credential is set "
                          "(leave both unset for sandbox mode)")
    sandbox = not account_sid
    public_base_url = _base_url(environ, "PUBLIC_BASE_URL", "http://localhost:5000" if sandbox else None)
    if public_base_url is None:
        raise ConfigError("PUBLIC_BASE_URL is required with real Twilio credentials: "
                          "it is the address Twilio calls and signs, e.g. https://calls.example.com")
    timezone = (environ.get("APP_TIMEZONE") or "UTC").strip()
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"APP_TIMEZONE is not a known time zone: {timezone!r}") from None
    secret_key, generated_key = _secret_key(environ, instance_path)
    return {
        "SECRET_KEY": secret_key,
        "SECRET_KEY_GENERATED": generated_key,
        "SQLALCHEMY_DATABASE_URI": _database_url(environ, instance_path),
        "REDIS_URL": (environ.get("REDIS_URL") or "").strip() or None,
        "SANDBOX": sandbox,
        "TWILIO_ACCOUNT_SID": account_sid or None,
        "TWILIO_AUTH_TOKEN": auth_token or None,
        "TWILIO_API_BASE_URL": _base_url(environ, "TWILIO_API_BASE_URL"),
        "PUBLIC_BASE_URL": public_base_url,
        "PHONE_REGION": region,
        "DEFAULT_FORWARD_NUMBER": _phone(environ, "DEFAULT_FORWARD_NUMBER", region),
        # The sandbox has its own simulated test phone; with Twilio it must be a number of the account.
        "TEST_CALLER_ID": _phone(environ, "TEST_CALLER_ID", region) or (SANDBOX_TEST_CALLER if sandbox else None),
        "RECORD_CALLS": _flag(environ, "RECORD_CALLS"),
        "DIAL_TIMEOUT": _duration(environ, "DIAL_TIMEOUT", 20),
        "APP_TIMEZONE": timezone,
        "VERIFY_MAX_AGE": _duration(environ, "VERIFY_MAX_AGE", 3600),
        "ALERT_EMAILS": [e.strip() for e in (environ.get("ALERT_EMAILS") or "").split(",") if e.strip()],
        "ALERT_SMS_NUMBERS": _phone_list(environ, "ALERT_SMS_NUMBERS", region),
        "SMTP_URL": _smtp_url(environ),
        "ALERT_EMAIL_FROM": (environ.get("ALERT_EMAIL_FROM") or "").strip() or None,
        "ALERT_SMS_FROM": _phone(environ, "ALERT_SMS_FROM", region),
        # Background work (SPEC §6): how often each periodic job runs, and when a number fixes itself.
        "AUTO_FIX_WEBHOOKS": _flag(environ, "AUTO_FIX_WEBHOOKS", default=True),
        "SYNC_INTERVAL": _duration(environ, "SYNC_INTERVAL", 15 * 60),
        "VERIFY_INTERVAL": _duration(environ, "VERIFY_INTERVAL", 30 * 60),
        "HEALTH_CHECK_INTERVAL": _duration(environ, "HEALTH_CHECK_INTERVAL", 60),
        "MONITOR_ALERTS_INTERVAL": _duration(environ, "MONITOR_ALERTS_INTERVAL", 5 * 60),
        "TEST_CALL_TIMEOUT": _duration(environ, "TEST_CALL_TIMEOUT", 90),
        "JOB_RETRY_DELAYS": _delays(environ, "JOB_RETRY_DELAYS", (10, 60)),
        "WORKER_THREADS": _positive_int(environ, "WORKER_THREADS", 4),
        "RQ_QUEUE": (environ.get("RQ_QUEUE") or "phoneapp").strip(),
        "SANDBOX_CALL_PACE": float(environ.get("SANDBOX_CALL_PACE") or 1.5),
        "LOGIN_MAX_FAILURES": 5,
        "LOGIN_WINDOW_SECONDS": 15 * 60,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": public_base_url.startswith("https://"),
        "REMEMBER_COOKIE_SECURE": public_base_url.startswith("https://"),
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "WTF_CSRF_TIME_LIMIT": None,
    }


def read_environ():
    """The process environment, with `.env` from the working directory merged under it."""
    from dotenv import dotenv_values

    merged = {k: v for k, v in dotenv_values(os.path.join(os.getcwd(), ".env")).items() if v is not None}
    merged.update(os.environ)
    return merged
