"""Clients: the list with its add form, a client's page with chart, numbers and calls, editing and removal."""
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required

from phoneapp.extensions import db
from phoneapp.models import Client, PhoneAssignment, utcnow
from phoneapp.services import clients as client_service
from phoneapp.services import number_cards
from phoneapp.services.audit import audit_trail, client_names_in
from phoneapp.services.call_log import calls_select, paginate_calls
from phoneapp.services.client_rules import NOTICE_EVENTS, rule_summary
from phoneapp.services.client_stats import client_call_stats
from phoneapp.services.errors import ValidationError
from phoneapp.web.client_rules_form import (
    DAY_NAMES,
    errors_by_input,
    form_from_client,
    notices_form_from_client,
    notices_in_words,
    read_notices_form,
    read_rules_form,
    zone_choices,
)
from phoneapp.web.view_helpers import acting_user, requested_page, row_or_404, shown_phone

bp = Blueprint("clients", __name__)

HISTORY_PER_PAGE = 25
CLIENT_FORM_FIELDS = ("name", "phone", "email", "notes")


def client_form_data():
    """The client form's fields as strings, exactly as the services expect raw input."""
    return {field: request.form.get(field, "") for field in CLIENT_FORM_FIELDS}


def warn_of_namesakes(client):
    """Two clients of one name are allowed (two branches, say) but more often a client added twice: say so."""
    others = client_service.namesakes(client)
    if others:
        flash(f"{others} other client{'s are' if others > 1 else ' is'} also named “{client.name}”. "
              "If it is the same client, keep one and move its numbers there.", "warning")


@bp.get("/clients")
@login_required
def clients():
    """Clients with a form to add one."""
    return render_template("clients/clients.html", rows=client_service.clients_with_counts(), form={}, errors={})


@bp.post("/clients")
@login_required
def create_client():
    """Add a client; the list again with the reasons when the input is refused."""
    data = client_form_data()
    try:
        client = client_service.create_client(data, current_app.config["PHONE_REGION"], actor=acting_user())
    except ValidationError as exc:
        return render_template("clients/clients.html", rows=client_service.clients_with_counts(), form=data,
                               errors=exc.details), 422
    flash(f"Client “{client.name}” added.", "success")
    warn_of_namesakes(client)
    return redirect(url_for("clients.client_detail", client_id=client.id), code=303)


@bp.get("/clients/<int:client_id>")
@login_required
def client_detail(client_id):
    """One client: details, calls per day, tracking numbers and call history."""
    client = row_or_404(Client, client_id)
    numbers = db.session.scalars(
        number_cards.numbers_query().where(PhoneAssignment.client_id == client.id)).unique().all()
    pagination = paginate_calls(calls_select(client_id=client.id), requested_page(), HISTORY_PER_PAGE)
    events = audit_trail("Client", client.id)
    return render_template("clients/client_detail.html", client=client, cards=number_cards.build_cards(numbers),
                           pagination=pagination, stats=client_call_stats(client.id), since=utcnow().isoformat(),
                           summary=rule_summary(client, client.phone, utcnow(), current_app.config),
                           notices_summary=notices_in_words(client),
                           events=events, client_names=client_names_in(events))


def render_rules_form(client, form, errors, status=200):
    return render_template("clients/client_rules.html", client=client, form=form, errors=errors,
                           zones=zone_choices(), day_names=DAY_NAMES), status


@bp.get("/clients/<int:client_id>/rules")
@login_required
def edit_client_rules(client_id):
    """The routing rules form: hours, after hours, failover and the greeting."""
    client = row_or_404(Client, client_id)
    config = current_app.config
    return render_rules_form(client, form_from_client(client, config["PHONE_REGION"], config["APP_TIMEZONE"]), {})


@bp.post("/clients/<int:client_id>/rules")
@login_required
def update_client_rules(client_id):
    """Save the routing rules; on any bad field nothing is saved and each reason shows by its input."""
    client = row_or_404(Client, client_id)
    shown, data, errors = read_rules_form(request.form)
    region = current_app.config["PHONE_REGION"]
    if client.timezone is None and data["timezone"] == current_app.config["APP_TIMEZONE"]:
        # The select shows the app's zone for a client that follows it; saving the form must not pin it there.
        data["timezone"] = None
    try:
        if errors:
            # Checked all the same, so every reason shows at once rather than one round at a time.
            client_service.clean_client_fields(data, region, partial=True, current=client)
        else:
            client_service.update_client_rules(client, data, region, actor=acting_user())
    except ValidationError as exc:
        errors.update(exc.details)
    if errors:
        db.session.rollback()
        return render_rules_form(client, shown, errors_by_input(errors), 422)
    flash(f"Routing rules of “{client.name}” saved.", "success")
    return redirect(url_for("clients.client_detail", client_id=client.id, _anchor="client-rules"), code=303)


def render_notices_form(client, form, errors, status=200):
    return render_template("clients/client_notices.html", client=client, form=form, errors=errors,
                           events=NOTICE_EVENTS), status


@bp.get("/clients/<int:client_id>/notices")
@login_required
def edit_client_notices(client_id):
    """The notices form: who is e-mailed and texted about which of the client's calls."""
    client = row_or_404(Client, client_id)
    return render_notices_form(client, notices_form_from_client(client, current_app.config["PHONE_REGION"]), {})


@bp.post("/clients/<int:client_id>/notices")
@login_required
def update_client_notices(client_id):
    """Save the notices; on any bad address, number or event nothing is saved and each reason shows by its input."""
    client = row_or_404(Client, client_id)
    shown, data = read_notices_form(request.form)
    try:
        client_service.update_client_notices(client, data, current_app.config["PHONE_REGION"], actor=acting_user())
    except ValidationError as exc:
        db.session.rollback()
        return render_notices_form(client, shown, errors_by_input(exc.details), 422)
    flash(f"Notices of “{client.name}” saved.", "success")
    return redirect(url_for("clients.client_detail", client_id=client.id, _anchor="client-notices"), code=303)


@bp.get("/clients/<int:client_id>/edit")
@login_required
def edit_client(client_id):
    """The client edit form."""
    client = row_or_404(Client, client_id)
    form = {field: getattr(client, field) or "" for field in CLIENT_FORM_FIELDS}
    form["phone"] = shown_phone(client.phone)
    form["is_active"] = client.is_active
    return render_template("clients/client_edit.html", client=client, form=form, errors={})


@bp.post("/clients/<int:client_id>/edit")
@login_required
def update_client(client_id):
    """Save the client edit form."""
    client = row_or_404(Client, client_id)
    data = client_form_data()
    data["is_active"] = request.form.get("is_active") == "on"
    try:
        client_service.update_client(client, data, current_app.config["PHONE_REGION"], actor=acting_user())
    except ValidationError as exc:
        db.session.rollback()
        return render_template("clients/client_edit.html", client=client, form=data, errors=exc.details), 422
    flash(f"Client “{client.name}” saved.", "success")
    warn_of_namesakes(client)
    return redirect(url_for("clients.client_detail", client_id=client.id), code=303)


@bp.post("/clients/<int:client_id>/delete")
@login_required
def delete_client(client_id):
    """Remove a client; its numbers become unassigned and keep their history."""
    client = row_or_404(Client, client_id)
    name = client.name
    client_service.delete_client(client, actor=acting_user())
    flash(f"Client “{name}” deleted. Its numbers are unassigned now.", "success")
    return redirect(url_for("clients.clients"), code=303)
