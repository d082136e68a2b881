"""Settings read from the environment (and `.env`), validated once at start-up."""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from phoneapp.domain.phones import InvalidPhoneNumber, parse_phone


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


def _positive_int(environ, name, default, minimum=1):
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise ConfigError(f"{name} must be a whole number of at least {minimum}; got {raw!r}")
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


def _positive_duration(environ, name, default_seconds, example):
    seconds = _duration(environ, name, default_seconds)
    if seconds < 1:
        raise ConfigError(f"{name} must be at least 1 second (e.g. {example})")
    return seconds


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


def _engine_options(database_url):
    options = {"pool_pre_ping": True}
    if database_url.startswith("postgresql"):
        # A database host that stopped answering must fail fast: webhooks then route from the cache.
        options["connect_args"] = {"connect_timeout": 3}
    return options


def _secret_key(environ, instance_path, production):
    key = (environ.get("SECRET_KEY") or "").strip()
    if production:
        _check_production_secret_key(key)
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


# Names reserved for documentation, tests and private networks (RFC 2606, RFC 6761, RFC 8375, ICANN's .internal):
# no deployment that Twilio calls lives under them.
_RESERVED_SUFFIXES = ("localhost", "test", "example", "invalid", "local", "internal", "lan", "home.arpa",
                      "example.com", "example.net", "example.org")
MIN_SECRET_KEY_LENGTH = 32
# Words of the keys that tutorials, templates and .env samples ship with; a key made only of them is no secret.
_PLACEHOLDER_WORDS = {
    "app", "change", "changeme", "changethis", "default", "demo", "dev", "development", "django", "dummy",
    "example", "fake", "flask", "for", "here", "insecure", "key", "local", "me", "my", "not", "only", "password",
    "phoneapp", "placeholder", "please", "prod", "production", "replace", "sample", "secret", "session", "set",
    "some", "staging", "super", "test", "testing", "this", "todo", "unsafe", "use", "value", "very", "your",
}
_LONGEST_PLACEHOLDER_WORD = max(map(len, _PLACEHOLDER_WORDS))
_MIN_DISTINCT_KEY_CHARACTERS = 10
_KEY_HINT = 'e.g. the output of: python -c "import secrets; print(secrets.token_urlsafe(48))"'


def _is_loopback_host(host):
    host = (host or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_public_host(host):
    """True when `host` names a machine on the internet, i.e. one Twilio's real requests could come to."""
    host = (host or "").rstrip(".").lower()
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    if "." not in host:
        return False
    return not any(host == suffix or host.endswith("." + suffix) for suffix in _RESERVED_SUFFIXES)


def _only_placeholder_words(key):
    """True when the key, lower-cased and without separators, is nothing but placeholder words strung together."""
    text = re.sub(r"[^a-z0-9]", "", key.lower())
    # reachable[i]: text[:i] splits into placeholder words and digits ("changeme123", "secretkeysecretkey").
    reachable = [True] + [False] * len(text)
    for end in range(1, len(text) + 1):
        after_digit = text[end - 1].isdigit() and reachable[end - 1]
        after_word = any(reachable[start] and text[start:end] in _PLACEHOLDER_WORDS
                         for start in range(max(0, end - _LONGEST_PLACEHOLDER_WORD), end))
        reachable[end] = after_digit or after_word
    return reachable[-1]


def _check_production_secret_key(key):
    if not key:
        raise ConfigError("SECRET_KEY must be set with real Twilio credentials: the key phoneapp generates under "
                          "instance/ belongs to one machine's demo, while every web process and worker of a "
                          f"deployment must sign sessions with the same key ({_KEY_HINT})")
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"SECRET_KEY is too short for production: {len(key)} characters, at least "
                          f"{MIN_SECRET_KEY_LENGTH} needed so sessions cannot be forged by guessing it ({_KEY_HINT})")
    if _only_placeholder_words(key) or len(set(key)) < _MIN_DISTINCT_KEY_CHARACTERS:
        raise ConfigError("SECRET_KEY is a placeholder, not a random value: anyone who has seen the same sample "
                          f"can forge sessions ({_KEY_HINT})")


def _debug_requested(environ):
    # The same reading Flask gives FLASK_DEBUG (and `flask run --debug`, which sets it).
    raw = (environ.get("FLASK_DEBUG") or "").strip().lower()
    return bool(raw) and raw not in ("0", "false", "no")


def _check_public_base_url(public_base_url, sandbox):
    host = urlsplit(public_base_url).hostname
    if sandbox:
        if is_public_host(host):
            raise ConfigError(f"PUBLIC_BASE_URL is the public address {public_base_url} but TWILIO_ACCOUNT_SID and "
                              "TWILIO_AUTH_TOKEN are unset, so this is the sandbox: Twilio's real requests would all "
                              "be refused for their signatures. Set the Twilio credentials, or use a local address "
                              "such as http://localhost:5000 for the sandbox")
        return
    if not public_base_url.startswith("https://") and not _is_loopback_host(host):
        raise ConfigError(f"PUBLIC_BASE_URL must be an https:// address with real Twilio credentials, not "
                          f"{public_base_url}: the session cookie and Twilio's signed requests would cross "
                          "the network in clear text")


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
    _check_public_base_url(public_base_url, sandbox)
    if not sandbox and _debug_requested(environ):
        raise ConfigError("FLASK_DEBUG is on with real Twilio credentials: the debugger shows settings and runs "
                          "code for whoever opens an error page; turn it off (unset FLASK_DEBUG, no --debug)")
    timezone = (environ.get("APP_TIMEZONE") or "UTC").strip()
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"APP_TIMEZONE is not a known time zone: {timezone!r}") from None
    secret_key, generated_key = _secret_key(environ, instance_path, production=not sandbox)
    redis_url = (environ.get("REDIS_URL") or "").strip() or None
    return {
        "SECRET_KEY": secret_key,
        "SECRET_KEY_GENERATED": generated_key,
        "SQLALCHEMY_DATABASE_URI": _database_url(environ, instance_path),
        "REDIS_URL": redis_url,
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
        # Outbound webhooks may reach loopback, private and link-local addresses (tests, one-machine setups).
        "OUTBOUND_WEBHOOKS_ALLOW_PRIVATE": _flag(environ, "OUTBOUND_WEBHOOKS_ALLOW_PRIVATE"),
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
        # Workers beat every 10 s; silent this long, none counts as running (banner, alert, Test says so).
        "WORKER_SILENT_AFTER": _duration(environ, "WORKER_SILENT_AFTER", 60),
        # Twilio cuts a forwarded call at 4 hours (<Dial timeLimit>): a call silent for longer is over.
        "CALL_SILENT_AFTER": _duration(environ, "CALL_SILENT_AFTER", 4 * 3600 + 30 * 60),
        # How soon a change made on another machine reaches this one's routing cache, which the fallback URL
        # answers from.
        "ROUTING_CACHE_REFRESH_SECONDS": _positive_duration(environ, "ROUTING_CACHE_REFRESH_SECONDS", 60, "60 or 1m"),
        "MONITOR_ALERTS_INTERVAL": _duration(environ, "MONITOR_ALERTS_INTERVAL", 5 * 60),
        "TEST_CALL_TIMEOUT": _duration(environ, "TEST_CALL_TIMEOUT", 90),
        "JOB_RETRY_DELAYS": _delays(environ, "JOB_RETRY_DELAYS", (10, 60)),
        "WORKER_THREADS": _positive_int(environ, "WORKER_THREADS", 4),
        "RQ_QUEUE": (environ.get("RQ_QUEUE") or "phoneapp").strip(),
        "SANDBOX_CALL_PACE": float(environ.get("SANDBOX_CALL_PACE") or 1.5),
        # The login throttle: failed logins per address and account, and per account from every address.
        "LOGIN_MAX_FAILURES": _positive_int(environ, "LOGIN_MAX_FAILURES", 5),
        "LOGIN_ACCOUNT_MAX_FAILURES": _positive_int(environ, "LOGIN_ACCOUNT_MAX_FAILURES", 20),
        "LOGIN_WINDOW_SECONDS": _positive_duration(environ, "LOGIN_WINDOW_SECONDS", 15 * 60, "900 or 15m"),
        # Counted in Redis when there is one, so every web process shares the counts; else in each process.
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2} if redis_url else {},
        # Reverse proxies in front whose X-Forwarded-* headers are believed; 0: none, the peer is the client.
        "TRUSTED_PROXY_COUNT": _positive_int(environ, "TRUSTED_PROXY_COUNT", 0, minimum=0),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": public_base_url.startswith("https://"),
        "REMEMBER_COOKIE_SECURE": public_base_url.startswith("https://"),
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # phoneapp takes no uploads: a multipart body is a handful of short fields at most. (Werkzeug reads an
        # urlencoded body whole, bounded by MAX_CONTENT_LENGTH alone.)
        "MAX_FORM_MEMORY_SIZE": 64 * 1024,
        "MAX_FORM_PARTS": 100,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(_database_url(environ, instance_path)),
        "WTF_CSRF_TIME_LIMIT": None,
    }


def read_environ():
    """The process environment, with `.env` from the working directory merged under it."""
    from dotenv import dotenv_values

    merged = {k: v for k, v in dotenv_values(os.path.join(os.getcwd(), ".env")).items() if v is not None}
    merged.update(os.environ)
    return merged
