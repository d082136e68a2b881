"""The Block list page: callers turned away for every client or for one, with a form to add one and Delete."""
import re

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required

from phoneapp.extensions import db
from phoneapp.models import BlockedNumber, Client
from phoneapp.services.block_list import blocked_numbers_select
from phoneapp.services.block_list_changes import MAX_REASON_LENGTH, add_blocked_number, delete_blocked_number
from phoneapp.services.errors import ValidationError
from phoneapp.web.view_helpers import acting_user, requested_page, row_or_404, shown_phone

bp = Blueprint("blocked_numbers", __name__, url_prefix="/blocked-numbers")

PER_PAGE = 100
# The client select sends "" for "Every client" and a client's id otherwise.
_CLIENT_ID = re.compile(r"^[0-9]{1,12}$")


def list_page(form, errors, status=200):
    pagination = db.paginate(blocked_numbers_select(newest_first=True), page=requested_page(), per_page=PER_PAGE,
                             error_out=False)
    client_choices = db.session.execute(sa.select(Client.id, Client.name).order_by(Client.name, Client.id)).all()
    return render_template("blocked_numbers/blocked_numbers.html", pagination=pagination, clients=client_choices,
                           form=form, errors=errors, max_reason=MAX_REASON_LENGTH), status


@bp.get("")
@login_required
def index():
    """Every blocked number and prefix, newest first, with the form that adds one."""
    return list_page(form={}, errors={})


@bp.post("")
@login_required
def create():
    """Block a number or prefix; the page again, nothing saved, with the reasons beside the fields when refused."""
    form = {field: request.form.get(field, "").strip() for field in ("number", "client_id", "reason")}
    try:
        if form["client_id"] and not _CLIENT_ID.match(form["client_id"]):
            raise ValidationError({"client_id": "choose a client from the list, or Every client"})
        entry = add_blocked_number(form["number"], int(form["client_id"]) if form["client_id"] else None,
                                   form["reason"], actor=acting_user(), region=current_app.config["PHONE_REGION"])
    except ValidationError as exc:
        db.session.rollback()
        return list_page(form, exc.details, 422)
    scope = f"for {entry.client.name}" if entry.client is not None else "for every client"
    flash(f"Blocked {described(entry)} {scope}: such calls are rejected from now on.", "success")
    return redirect(url_for("blocked_numbers.index"), code=303)


@bp.post("/<int:blocked_number_id>/delete")
@login_required
def delete(blocked_number_id):
    """Take an entry off the list: its callers get through again."""
    entry = row_or_404(BlockedNumber, blocked_number_id)
    what = described(entry)
    delete_blocked_number(entry.id, actor=acting_user())
    flash(f"Unblocked {what}: such calls get through again.", "success")
    return redirect(url_for("blocked_numbers.index"), code=303)


def described(entry):
    """What an entry blocks, in a sentence: a number as staff type it, or the numbers a prefix starts."""
    if entry.number.endswith("*"):
        return f"numbers starting {entry.number[:-1]}"
    return shown_phone(entry.number)
