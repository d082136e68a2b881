"""htmx fragments and the forms that answer with one; each also works opened or posted directly."""
from datetime import datetime, timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from phoneapp import number_cards
from phoneapp.call_log import call_log_context
from phoneapp.dashboard import dashboard_figures
from phoneapp.extensions import db
from phoneapp.htmx import is_htmx
from phoneapp.models import PhoneAssignment, TestCall, utcnow
from phoneapp.pages import assignment_form_values, recent_calls
from phoneapp.public_urls import expected_webhooks
from phoneapp.sandbox.account import OUTCOMES as SIMULATED_OUTCOMES
from phoneapp.services import assignments, test_calls
from phoneapp.services.errors import ValidationError
from phoneapp.services.simulator import place_simulated_call

bp = Blueprint("partials", __name__, url_prefix="/partials")

# A page shows at most a page of cards; more ids than that in one request are not a page asking.
MAX_CARDS_SHOWN = number_cards.NUMBERS_PER_PAGE


def render_card(number, note=None, note_kind="info", calling=False, changed=False, test_call=None):
    html = render_template("partials/_number_card.html", card=number_cards.card_for(number), note=note,
                           note_kind=note_kind, calling=calling, test_call=test_call)
    # The page's status totals listen for this and refresh themselves.
    return html, 200, ({"HX-Trigger": "numbers-changed"} if changed else {})


def render_form(number, form, errors, status=200):
    template = "partials/_number_form.html" if is_htmx() else "pages/number_edit.html"
    return render_template(template, number=number, form=form, errors=errors,
                           clients=number_cards.client_choices(number.client_id)), status


def done(number, message, twilio_problem=None):
    """The fresh card for htmx; for a plain form post, a flash and a 303 to the number's page."""
    kind = "success"
    if twilio_problem:
        message, kind = f"{message} But Twilio is not pointed at phoneapp yet: {twilio_problem}", "warning"
    if is_htmx():
        return render_card(number, note=message, note_kind=kind, changed=True)
    flash(message, kind)
    return redirect(url_for("pages.number_detail", number_id=number.id), code=303)


@bp.get("/numbers/<int:number_id>/card")
@login_required
def number_card(number_id):
    """One number's card; it polls itself while a call or a test (`test_call`) on it is under way."""
    number = db.get_or_404(PhoneAssignment, number_id)
    test = None
    test_call_id = request.args.get("test_call", type=int)
    if test_call_id is not None:
        test = db.session.get(TestCall, test_call_id)
        if test is None or test.phone_assignment_id != number.id:
            test = None
        else:
            test_calls.expire_if_overdue(test)
    return render_card(number, test_call=test)


@bp.get("/numbers/<int:number_id>/edit")
@login_required
def edit_number(number_id):
    """The assignment form, swapped in place of the card."""
    number = db.get_or_404(PhoneAssignment, number_id)
    return render_template("partials/_number_form.html", number=number, form=assignment_form_values(number),
                           errors={}, clients=number_cards.client_choices(number.client_id))


@bp.post("/numbers/<int:number_id>")
@login_required
def update_number(number_id):
    """Assign, reassign, change the forward target or rename; audited."""
    number = db.get_or_404(PhoneAssignment, number_id)
    form = {field: (request.form.get(field) or "").strip()
            for field in ("client_id", "forward_to_number", "friendly_name")}
    try:
        assignments.update_assignment(number, form)
    except ValidationError as exc:
        db.session.rollback()
        return render_form(number, form, exc.details, 422)
    return done(number, "Saved.", assignments.point_twilio_here(number))


@bp.post("/numbers/<int:number_id>/active")
@login_required
def set_number_active(number_id):
    """Switch a number on or off; audited."""
    number = db.get_or_404(PhoneAssignment, number_id)
    value = request.form.get("is_active")
    if value not in ("true", "false"):
        abort(400, "is_active must be true or false")
    assignments.update_assignment(number, {"is_active": value == "true"})
    return done(number, "Activated." if number.is_active else "Deactivated.", assignments.point_twilio_here(number))


@bp.post("/numbers/<int:number_id>/test")
@login_required
def test_number(number_id):
    """Start "Test": a worker runs the dry check and, unless live=0, a live call; the steps show as they come."""
    number = db.get_or_404(PhoneAssignment, number_id)
    test = test_calls.start_test_call(number, current_user, live=request.form.get("live", "1") != "0")
    if not is_htmx():
        flash("Test started; its steps show below as they happen." if test.finished_at is None else test.detail,
              "info" if test.finished_at is None else "error")
        return redirect(url_for("pages.number_detail", number_id=number.id, _anchor="tests"), code=303)
    if request.form.get("panel") == "detail":
        return render_template("partials/_test_call.html", test=test, poll_self=True)
    return render_card(number, test_call=test, changed=True)


@bp.get("/test-calls/<int:test_call_id>")
@login_required
def test_call(test_call_id):
    """One test's steps; the fragment polls itself until the test ends."""
    test = db.get_or_404(TestCall, test_call_id)
    test_calls.expire_if_overdue(test)
    return render_template("partials/_test_call.html", test=test, poll_self=True)


@bp.post("/numbers/<int:number_id>/simulate-call")
@login_required
def simulate_call(number_id):
    """Sandbox only: ring the number from a simulated caller, in the background."""
    if not current_app.config["SANDBOX"]:
        abort(404)
    number = db.get_or_404(PhoneAssignment, number_id)
    outcome = request.form.get("outcome") or "answered"
    if outcome not in SIMULATED_OUTCOMES:
        abort(400, f"outcome must be one of {', '.join(SIMULATED_OUTCOMES)}")
    try:
        place_simulated_call(number.phone_number, outcome=outcome)
    except (ValueError, RuntimeError) as exc:
        return answer_simulation(number, f"Could not place the call: {exc}", "error")
    note = f"Calling… the forwarded phone will report “{outcome}”."
    if number.webhook_url != expected_webhooks()["voice_url"]:
        note += " Twilio is not pointed at phoneapp for this number yet, so the call will not reach it."
    return answer_simulation(number, note, "info", calling=True)


def answer_simulation(number, note, kind, calling=False):
    if is_htmx():
        return render_card(number, note=note, note_kind=kind, calling=calling)
    flash(note, kind)
    return redirect(url_for("pages.numbers"), code=303)


@bp.get("/numbers/status-counts")
@login_required
def status_counts():
    """How many numbers show each status colour."""
    return render_template("partials/_status_counts.html", counts=number_cards.status_counts())


# Twice the polling interval: a call committed just after one look is still caught by the next.
CHANGES_OVERLAP = timedelta(seconds=6)


@bp.get("/numbers/changes")
@login_required
def number_changes():
    """The cards shown on a page that changed since its last look, each swapped in out of band."""
    now = utcnow()
    since = moment_arg("since", default=now - CHANGES_OVERLAP)
    shown = [int(value) for value in request.args.getlist("card")[:MAX_CARDS_SHOWN] if value.isdigit()]
    changed = number_cards.changed_number_ids(shown, since - CHANGES_OVERLAP)
    numbers = db.session.scalars(
        number_cards.numbers_query().where(PhoneAssignment.id.in_(changed))).unique().all() if changed else []
    return render_template("partials/_number_changes.html", since=now.isoformat(),
                           changed_cards=number_cards.build_cards(numbers),
                           changed_counts=number_cards.status_counts() if changed else None)


def moment_arg(name, default):
    """A naive-UTC time from the query string, or `default` when it is missing or malformed."""
    try:
        return datetime.fromisoformat(request.args[name]).replace(tzinfo=None)
    except (KeyError, ValueError):
        return default


@bp.get("/dashboard")
@login_required
def dashboard_live():
    """The dashboard's counters, failed forwards and numbers needing attention."""
    return render_template("partials/_dashboard_live.html", figures=dashboard_figures())


@bp.get("/calls")
@login_required
def calls_table():
    """The call log table for the current filters and page."""
    return render_template("partials/_calls_table.html", poll=True, **call_log_context())


@bp.get("/recent-calls")
@login_required
def recent_calls_list():
    """The dashboard's latest calls."""
    return render_template("partials/_recent_calls.html", recent_calls=recent_calls())
