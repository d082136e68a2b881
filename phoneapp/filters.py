"""Jinja filters: phone numbers in national format, times in APP_TIMEZONE."""
from datetime import UTC
from zoneinfo import ZoneInfo

from flask import current_app

from phoneapp.models import utcnow
from phoneapp.phones import display_phone


def local_time(value):
    """A stored naive-UTC time in the configured time zone."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC).astimezone(ZoneInfo(current_app.config["APP_TIMEZONE"]))


def format_datetime(value, fmt="%Y-%m-%d %H:%M"):
    local = local_time(value)
    return local.strftime(fmt) if local else ""


def time_ago(value):
    """'3 min ago' and friends; the exact time goes in a title attribute beside it."""
    if value is None:
        return "never"
    seconds = int((utcnow() - value).total_seconds())
    if seconds < 45:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min")):
        if seconds >= size:
            count = seconds // size
            if unit == "day":
                return f"{count} day{'s' if count != 1 else ''} ago"
            return f"{count} {unit} ago"
    return "just now"


def format_duration(seconds):
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def register_filters(app):
    app.jinja_env.filters["phone"] = lambda value: display_phone(value, app.config["PHONE_REGION"])
    app.jinja_env.filters["datetime"] = format_datetime
    app.jinja_env.filters["ago"] = time_ago
    app.jinja_env.filters["duration"] = format_duration

    @app.context_processor
    def product_context():
        return {"sandbox_mode": app.config["SANDBOX"]}
