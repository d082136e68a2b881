"""The staff's web pages: one blueprint per area, each owning its page, its htmx fragments and its form posts."""
from phoneapp.web import (
    alerts,
    auth,
    blocked_numbers,
    calls,
    clients,
    dashboard,
    filters,
    health,
    numbers,
    users,
    webhook_endpoints,
)

AREAS = (auth, dashboard, numbers, clients, calls, blocked_numbers, alerts, health, users, webhook_endpoints)


def register_web(app):
    """Register every area's blueprint, the login manager's settings and the templates' filters."""
    for area in AREAS:
        app.register_blueprint(area.bp)
    auth.init_login(app)
    filters.register_filters(app, sections={area.bp.name for area in AREAS if area is not auth})
