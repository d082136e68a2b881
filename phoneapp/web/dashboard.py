"""The dashboard: today's calls, numbers by status, failed forwards, what needs attention, the latest calls."""
from flask import Blueprint, render_template
from flask_login import login_required

from phoneapp.services import alerts as alert_service
from phoneapp.services.dashboard import dashboard_figures, recent_calls
from phoneapp.web.view_helpers import page_and_fragment

bp = Blueprint("dashboard", __name__)


@page_and_fragment(bp, "/", "/partials/dashboard")
@login_required
def dashboard(fragment):
    """The whole dashboard, or (`fragment`) its live part: counters, failed forwards, numbers needing attention."""
    if fragment:
        return render_template("dashboard/_dashboard_live.html", figures=dashboard_figures())
    return render_template("dashboard/dashboard.html", figures=dashboard_figures(), recent_calls=recent_calls(),
                           alerts=alert_service.open_alerts())


@bp.get("/partials/recent-calls")
@login_required
def recent_calls_list():
    """The dashboard's latest calls."""
    return render_template("dashboard/_recent_calls.html", recent_calls=recent_calls())
