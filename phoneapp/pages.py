"""Full pages: dashboard, tracking numbers, clients and the call log."""
import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import login_required
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from phoneapp import analytics, number_cards
from phoneapp.call_log import (
    FILTER_NAMES,
    TEST_CALL_CHOICES,
    call_log_context,
    call_log_filters,
    calls_csv,
    calls_select,
    export_filename,
    paginate_calls,
)
from phoneapp.call_status import call_outcome
from phoneapp.dashboard import dashboard_figures
from phoneapp.extensions import db
from phoneapp.jobs import QueueUnavailable
from phoneapp.models import AuditEvent, Client, PhoneAssignment, utcnow
from phoneapp.number_status import STATUS_KEYS
from phoneapp.phones import display_phone
from phoneapp.services import alerts as alert_service
from phoneapp.services import clients as client_service
from phoneapp.services import test_calls
from phoneapp.services.errors import ValidationError
from phoneapp.services.statuses import number_statuses
from phoneapp.services.verify_queue import due_for_verification, queue_verification

bp = Blueprint("pages", __name__)

HISTORY_PER_PAGE = 25
CLIENT_FORM_FIELDS = ("name", "phone", "email", "notes")


def page_arg():
    page = request.args.get("page", type=int) or 1
    return max(page, 1)


@bp.get("/")
@login_required
def dashboard():
    """Today's calls, numbers by status, failed forwards, numbers needing attention and recent calls."""
    return render_template("pages/dashboard.html", figures=dashboard_figures(), recent_calls=recent_calls(),
                           alerts=alert_service.open_alerts())


def recent_calls(limit=10):
    return db.session.scalars(calls_select().limit(limit)).unique().all()


@bp.get("/numbers")
@login_required
def numbers():
    """A card per tracking number, a page at a time, filtered by status or text."""
    status = request.args.get("status") or None
    if status not in (None, *STATUS_KEYS):
        status = None
    search = (request.args.get("q") or "").strip()[:100]
    listing = number_cards.numbers_page(status=status, search=search, page=page_arg())
    due = mark_due_checks([card.number for card in listing.cards])
    if due:
        statuses = number_statuses(due)
        for card in listing.cards:
            card.status = statuses.get(card.number.id, card.status)
    page = render_template("pages/numbers.html", listing=listing, cards=listing.cards, counts=listing.counts,
                           status=status, search=search, since=utcnow().isoformat(),
                           filter_args={key: value for key, value in (("status", status), ("q", search)) if value})
    if due:
        # Queued after rendering: committing first would make every card on the page reload its number.
        try:
            queue_verification(due)
        except QueueUnavailable:
            # The cards go back to "due for a check" on their next poll; the health page says why.
            current_app.logger.warning("could not queue a check of %d numbers: the job queue is unreachable",
                                       len(due))
    return page


def mark_due_checks(numbers):
    """The page's numbers whose last check is too old, shown as verifying until the queued check is done."""
    now = utcnow()
    due = due_for_verification(numbers, now=now, max_age_seconds=current_app.config["VERIFY_MAX_AGE"])
    for number in due:
        set_committed_value(number, "verify_queued_at", now)
    return due


@bp.get("/numbers/<int:number_id>")
@login_required
def number_detail(number_id):
    """One tracking number: its card, Twilio configuration, call history and audit trail."""
    number = db.get_or_404(PhoneAssignment, number_id)
    card = number_cards.card_for(number)
    pagination = paginate_calls(calls_select(number_id=number.id), HISTORY_PER_PAGE)
    events = db.session.scalars(
        sa.select(AuditEvent).options(joinedload(AuditEvent.actor))
        .where(AuditEvent.subject_type == "PhoneAssignment", AuditEvent.subject_id == number.id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(100)
    ).all()
    return render_template("pages/number_detail.html", number=number, card=card, pagination=pagination,
                           events=events, client_names=client_names_in(events),
                           tests=test_calls.latest_tests(number.id))


def client_names_in(events):
    """{client id: name} for the client ids an audit trail mentions, so it reads as names."""
    ids = set()
    for event in events:
        for side in (event.before or {}, event.after or {}):
            if isinstance(side.get("client_id"), int):
                ids.add(side["client_id"])
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(Client.id, Client.name).where(Client.id.in_(ids))).all())


@bp.get("/numbers/<int:number_id>/edit")
@login_required
def edit_number(number_id):
    """The assignment form on a page of its own, for browsers without scripts."""
    number = db.get_or_404(PhoneAssignment, number_id)
    return render_template("pages/number_edit.html", number=number, form=assignment_form_values(number),
                           errors={}, clients=number_cards.client_choices(number.client_id))


def assignment_form_values(number):
    return {"client_id": str(number.client_id or ""), "forward_to_number": shown_phone(number.forward_to_number),
            "friendly_name": number.friendly_name or ""}


def shown_phone(e164):
    """A stored number as staff type it; parse_phone reads it back to the same E.164."""
    return display_phone(e164, current_app.config["PHONE_REGION"]) if e164 else ""


def client_form_data():
    """The client form's fields as strings, exactly as the services expect raw input."""
    return {field: request.form.get(field, "") for field in CLIENT_FORM_FIELDS}


def clients_with_counts():
    """Clients with how many tracking numbers each has, in one grouped query."""
    counts = (sa.select(PhoneAssignment.client_id, sa.func.count().label("numbers"))
              .group_by(PhoneAssignment.client_id).subquery())
    rows = db.session.execute(
        sa.select(Client, sa.func.coalesce(counts.c.numbers, 0))
        .outerjoin(counts, counts.c.client_id == Client.id)
        .order_by(Client.name)
    ).all()
    return rows


@bp.get("/clients")
@login_required
def clients():
    """Clients with a form to add one."""
    return render_template("pages/clients.html", rows=clients_with_counts(), form={}, errors={})


@bp.post("/clients")
@login_required
def create_client():
    """Add a client; the list again with the reasons when the input is refused."""
    data = client_form_data()
    try:
        client = client_service.create_client(data, current_app.config["PHONE_REGION"])
    except ValidationError as exc:
        return render_template("pages/clients.html", rows=clients_with_counts(), form=data,
                               errors=exc.details), 422
    flash(f"Client “{client.name}” added.", "success")
    return redirect(url_for("pages.client_detail", client_id=client.id), code=303)


@bp.get("/clients/<int:client_id>")
@login_required
def client_detail(client_id):
    """One client: details, calls per day, tracking numbers and call history."""
    client = db.get_or_404(Client, client_id)
    numbers = db.session.scalars(
        number_cards.numbers_query().where(PhoneAssignment.client_id == client.id)).unique().all()
    pagination = paginate_calls(calls_select(client_id=client.id), HISTORY_PER_PAGE)
    return render_template("pages/client_detail.html", client=client, cards=number_cards.build_cards(numbers),
                           pagination=pagination, stats=analytics.client_call_stats(client.id),
                           since=utcnow().isoformat())


@bp.get("/clients/<int:client_id>/edit")
@login_required
def edit_client(client_id):
    """The client edit form."""
    client = db.get_or_404(Client, client_id)
    form = {field: getattr(client, field) or "" for field in CLIENT_FORM_FIELDS}
    form["phone"] = shown_phone(client.phone)
    form["is_active"] = client.is_active
    return render_template("pages/client_edit.html", client=client, form=form, errors={})


@bp.post("/clients/<int:client_id>/edit")
@login_required
def update_client(client_id):
    """Save the client edit form."""
    client = db.get_or_404(Client, client_id)
    data = client_form_data()
    data["is_active"] = request.form.get("is_active") == "on"
    try:
        client_service.update_client(client, data, current_app.config["PHONE_REGION"])
    except ValidationError as exc:
        db.session.rollback()
        return render_template("pages/client_edit.html", client=client, form=data, errors=exc.details), 422
    flash(f"Client “{client.name}” saved.", "success")
    return redirect(url_for("pages.client_detail", client_id=client.id), code=303)


@bp.post("/clients/<int:client_id>/delete")
@login_required
def delete_client(client_id):
    """Remove a client; its numbers become unassigned and keep their history."""
    client = db.get_or_404(Client, client_id)
    name = client.name
    client_service.delete_client(client)
    flash(f"Client “{name}” deleted. Its numbers are unassigned now.", "success")
    return redirect(url_for("pages.clients"), code=303)


@bp.get("/calls")
@login_required
def calls():
    """The call log, newest first, paginated, narrowed by number, client, outcome, days and test calls."""
    context = call_log_context()
    if context["pagination"].page > max(context["pagination"].pages, 1):
        abort(404)
    # Plain rows, not models: the menus list every number and client, which can run to thousands.
    numbers_list = db.session.execute(
        sa.select(PhoneAssignment.id, PhoneAssignment.phone_number, PhoneAssignment.friendly_name)
        .order_by(PhoneAssignment.phone_number)).all()
    clients_list = db.session.execute(sa.select(Client.id, Client.name).order_by(Client.name)).all()
    return render_template("pages/calls.html", numbers=numbers_list, clients=clients_list,
                           outcomes=number_cards.OUTCOMES, test_choices=TEST_CALL_CHOICES, **context)


@bp.get("/calls/export.csv")
@login_required
def export_calls():
    """The call log's filtered calls as a CSV download, streamed a batch at a time."""
    filters, problems = call_log_filters()
    if problems:
        # A dropped filter would export more calls than were asked for: show why on the log instead.
        flash("Some filters could not be used, so nothing was exported. Fix or clear them and export again.",
              "warning")
        given = {name: request.args[name] for name in FILTER_NAMES if name in request.args}
        return redirect(url_for("pages.calls", **given), code=303)
    response = Response(stream_with_context(calls_csv(filters)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{export_filename(filters)}"'
    return response


@bp.app_template_global()
def outcome_of(call):
    """The one-word outcome badge of a call, the same words the call log filters on."""
    return call_outcome(call.status, call.dial_status, call.routed_by, has_voicemail=bool(call.voicemail_url))


NAV_SECTIONS = {
    "dashboard": "dashboard", "numbers": "numbers", "number_detail": "numbers", "edit_number": "numbers",
    "clients": "clients", "create_client": "clients", "client_detail": "clients", "edit_client": "clients",
    "update_client": "clients", "calls": "calls", "export_calls": "calls",
}
# Blueprints that are one section each.
BLUEPRINT_SECTIONS = {"users_admin": "users", "alerts": "alerts", "health": "health"}


@bp.app_template_global()
def nav_section():
    """Which top-nav entry the current page belongs to."""
    blueprint, _, view = (request.endpoint or "").partition(".")
    if blueprint == "pages":
        return NAV_SECTIONS.get(view)
    return BLUEPRINT_SECTIONS.get(blueprint)
