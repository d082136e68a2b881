"""Jinja filters and globals: phone numbers in national format, times in the reader's zone, durations, outcomes, the
nav."""
from flask import current_app, has_request_context, request
from flask_login import current_user

from phoneapp.domain.call_status import outcome_of
from phoneapp.domain.clock import format_local
from phoneapp.domain.durations import format_duration
from phoneapp.domain.phones import display_phone
from phoneapp.domain.recordings import is_safe_link
from phoneapp.models import utcnow
from phoneapp.services.audit import action_label


def page_zone():
    """The zone pages show times in: the signed-in user's own, else APP_TIMEZONE."""
    own = current_user.timezone if has_request_context() and current_user.is_authenticated else None
    return own or current_app.config["APP_TIMEZONE"]


def format_datetime(value, fmt="%Y-%m-%d %H:%M"):
    return format_local(value, page_zone(), fmt)


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


def register_filters(app, sections):
    """`sections`: the blueprints that are each one entry of the top navigation, named alike."""
    app.jinja_env.filters["phone"] = lambda value: display_phone(value, app.config["PHONE_REGION"])
    app.jinja_env.filters["datetime"] = format_datetime
    app.jinja_env.filters["ago"] = time_ago
    app.jinja_env.filters["duration"] = format_duration
    app.jinja_env.filters["audit_action"] = action_label

    app.add_template_global(outcome_of, "outcome_of")
    app.add_template_global(page_zone, "page_zone")
    app.jinja_env.tests["safe_link"] = is_safe_link

    @app.template_global()
    def nav_section():
        """Which top-nav entry the current page belongs to."""
        return request.blueprint if request.blueprint in sections else None

    @app.context_processor
    def product_context():
        return {"sandbox_mode": app.config["SANDBOX"]}
