"""The Alerts page: what is wrong now, who has seen it, and whether admins were told."""
import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import selectinload

from phoneapp.extensions import db, login_manager
from phoneapp.models import Alert, PhoneAssignment
from phoneapp.services import alerts as alert_service
from phoneapp.services.notifications import notice_status
from phoneapp.web.htmx import is_htmx
from phoneapp.web.view_helpers import row_or_404

bp = Blueprint("alerts", __name__, url_prefix="/alerts")

RESOLVED_SHOWN = 50
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@bp.before_request
def staff_only():
    """Guard every route here at once, so a route added later cannot forget it."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def with_people():
    """Alerts with their number, its client and who acknowledged them, loaded up front for the table."""
    return sa.select(Alert).options(selectinload(Alert.phone_assignment).selectinload(PhoneAssignment.client),
                                    selectinload(Alert.acknowledged_by))


@bp.get("")
def index():
    """Open alerts, errors first, then the most recently resolved ones."""
    open_rows = db.session.scalars(
        with_people().where(Alert.resolved_at.is_(None)).order_by(Alert.last_seen_at.desc(), Alert.id.desc())
    ).all()
    open_rows = sorted(open_rows, key=lambda alert: SEVERITY_ORDER.get(alert.severity, len(SEVERITY_ORDER)))
    resolved_rows = db.session.scalars(
        with_people().where(Alert.resolved_at.is_not(None))
        .order_by(Alert.resolved_at.desc(), Alert.id.desc()).limit(RESOLVED_SHOWN)
    ).all()
    return render_template("alerts/alerts.html", open_alerts=open_rows, resolved_alerts=resolved_rows,
                           resolved_shown=RESOLVED_SHOWN)


@bp.post("/<int:alert_id>/acknowledge")
def acknowledge(alert_id):
    """Mark an alert as seen; htmx gets the updated row, a plain form a redirect back to the list."""
    alert = row_or_404(Alert, alert_id)
    alert_service.acknowledge_alert(alert, current_user)
    if is_htmx():
        return render_template("alerts/_alert_row.html", alert=alert)
    flash("Alert acknowledged.", "success")
    return redirect(url_for("alerts.index", _anchor=f"alert-{alert.id}"), code=303)


@bp.app_template_global()
def open_alert_count():
    """How many alerts are open, for the main navigation; one COUNT per page."""
    try:
        return alert_service.open_alert_count()
    except SQLAlchemyError:
        # The count is decoration: an error page about a failing database must still render.
        return None


bp.add_app_template_global(notice_status, "notice_status")

