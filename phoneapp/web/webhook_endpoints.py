"""The Webhooks pages: where outbound webhooks go, each endpoint's deliveries as they happen, and Redeliver.

Admins add, switch and remove endpoints; staff see them and may redeliver (SPEC §10).
"""
from functools import wraps

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from phoneapp.extensions import db
from phoneapp.models import Client, WebhookDelivery, WebhookEndpoint
from phoneapp.services import webhook_endpoints as endpoints
from phoneapp.services.errors import ValidationError
from phoneapp.web.view_helpers import acting_user, page_and_fragment, requested_page, row_or_404

bp = Blueprint("webhook_endpoints", __name__)

DELIVERIES_PER_PAGE = 50
# How often an endpoint's deliveries log refreshes itself while something is still owed.
POLL_SECONDS = 3


def admins_only(view):
    """Only admins decide where call data is sent."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403, description="Only admins add, switch or remove webhook endpoints.")
        return view(*args, **kwargs)
    return wrapped


def list_page(form, errors, status=200):
    rows = db.session.scalars(endpoints.endpoints_select()).unique().all()
    clients = db.session.execute(db.select(Client.id, Client.name).order_by(Client.name, Client.id)).all()
    return render_template("webhook_endpoints/endpoints.html", rows=rows, clients=clients, form=form, errors=errors,
                           latest=endpoints.latest_deliveries([endpoint.id for endpoint in rows]),
                           event_types=endpoints.EVENT_TYPES, max_description=endpoints.MAX_DESCRIPTION_LENGTH), status


def endpoint_data(form):
    """The add form as the service reads it; the client select sends "" for Every client."""
    data = {"url": form["url"], "description": form["description"], "events": form["events"]}
    if form["client_id"]:
        if not form["client_id"].isdigit() or len(form["client_id"]) > 12:
            raise ValidationError({"client_id": "choose a client from the list, or Every client"})
        data["client_id"] = int(form["client_id"])
    return data


def allow_private():
    return current_app.config["OUTBOUND_WEBHOOKS_ALLOW_PRIVATE"]


@bp.get("/webhooks")
@login_required
def index():
    """Every endpoint with its state, and (for admins) the form that adds one."""
    return list_page(form={"events": list(endpoints.EVENT_TYPES)}, errors={})


@bp.post("/webhooks")
@login_required
@admins_only
def create():
    """Answer with the secret itself: a redirect would have to carry it in a URL or the session."""
    form = {field: request.form.get(field, "").strip() for field in ("url", "description", "client_id")}
    form["events"] = request.form.getlist("events")
    try:
        endpoint = endpoints.create_endpoint(endpoint_data(form), allow_private=allow_private(), actor=acting_user())
    except ValidationError as exc:
        db.session.rollback()
        return list_page(form, exc.details, 422)
    response = make_response(render_template("webhook_endpoints/endpoint_secret.html", endpoint=endpoint))
    # Back, history and proxies must not keep a copy of the page that shows the secret.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@page_and_fragment(bp, "/webhooks/<int:endpoint_id>", "/partials/webhooks/<int:endpoint_id>/deliveries")
@login_required
def detail(endpoint_id, fragment):
    """One endpoint and its deliveries log; or (`fragment`) the log alone, polled while a delivery is owed."""
    endpoint = row_or_404(WebhookEndpoint, endpoint_id)
    pagination = db.paginate(endpoints.deliveries_select(endpoint.id), page=requested_page(),
                             per_page=DELIVERIES_PER_PAGE, error_out=False)
    context = {"endpoint": endpoint, "pagination": pagination, "poll_seconds": POLL_SECONDS,
               "pending": endpoints.has_pending_deliveries(endpoint.id)}
    if fragment:
        return render_template("webhook_endpoints/_deliveries.html", **context)
    return render_template("webhook_endpoints/endpoint_detail.html", secret_hint=endpoints.secret_hint(endpoint),
                           **context)


@bp.post("/webhooks/<int:endpoint_id>/active")
@login_required
@admins_only
def set_active(endpoint_id):
    """Switch an endpoint on (its failing streak forgotten) or off (nothing more is sent to it)."""
    endpoint = row_or_404(WebhookEndpoint, endpoint_id)
    switch_on = request.form.get("active") == "1"
    endpoints.update_endpoint(endpoint, {"is_active": switch_on}, allow_private=allow_private(), actor=acting_user())
    flash(f"{endpoint.url} is switched {'on' if switch_on else 'off'}.", "success")
    return redirect(url_for("webhook_endpoints.detail", endpoint_id=endpoint.id), code=303)


@bp.post("/webhooks/<int:endpoint_id>/delete")
@login_required
@admins_only
def delete(endpoint_id):
    """Remove an endpoint and its deliveries log."""
    endpoint = row_or_404(WebhookEndpoint, endpoint_id)
    url = endpoint.url
    endpoints.delete_endpoint(endpoint, actor=acting_user())
    flash(f"Removed {url}: nothing more is sent to it.", "success")
    return redirect(url_for("webhook_endpoints.index"), code=303)


@bp.post("/webhooks/deliveries/<int:delivery_id>/redeliver")
@login_required
def redeliver(delivery_id):
    """Send a delivery again, as soon as a worker is free; back to its endpoint's log."""
    delivery = row_or_404(WebhookDelivery, delivery_id)
    endpoint_id = delivery.endpoint_id
    try:
        endpoints.redeliver_delivery(delivery.id)
    except ValidationError as exc:
        flash(f"Not redelivered: the endpoint {exc.details['endpoint']}.", "error")
    else:
        flash(f"Delivery {delivery_id} is queued again: a worker sends it shortly.", "success")
    return redirect(url_for("webhook_endpoints.detail", endpoint_id=endpoint_id, _anchor="deliveries"), code=303)
