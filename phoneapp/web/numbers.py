"""Tracking numbers: the cards page, a number's own page, its card and forms in place, tests and sandbox calls."""
from datetime import datetime, timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy.orm.attributes import set_committed_value

from phoneapp.domain.number_status import STATUS_GROUPS, STATUS_KEYS
from phoneapp.extensions import db
from phoneapp.jobs import QueueUnavailable, enqueue
from phoneapp.jobs.on_demand import AlreadyTesting, due_for_verification, queue_verification, start_test_call
from phoneapp.models import MAX_ID, JobRun, PhoneAssignment, TestCall, utcnow
from phoneapp.sandbox.account import OUTCOMES as SIMULATED_OUTCOMES
from phoneapp.services import assignments, call_tests, import_uploads, legacy_import, number_cards
from phoneapp.services.audit import audit_trail, client_names_in
from phoneapp.services.call_log import calls_select, paginate_calls
from phoneapp.services.errors import ValidationError
from phoneapp.services.health import check_worker
from phoneapp.services.number_statuses import number_statuses
from phoneapp.services.simulator import place_simulated_call
from phoneapp.twilio.public_urls import expected_webhooks
from phoneapp.web.htmx import is_htmx
from phoneapp.web.view_helpers import acting_user, page_and_fragment, requested_page, row_or_404, shown_phone

bp = Blueprint("numbers", __name__)

HISTORY_PER_PAGE = 25
# A page shows at most a page of cards; more ids than that in one request are not a page asking.
MAX_CARDS_SHOWN = number_cards.NUMBERS_PER_PAGE
# Twice the polling interval: a call committed just after one look is still caught by the next.
CHANGES_OVERLAP = timedelta(seconds=6)
ASSIGNMENT_FIELDS = ("client_id", "forward_to_number", "friendly_name")
ALREADY_TESTING = "A test of this number is already running, so no second one was started; its steps show below."


@bp.get("/numbers")
@login_required
def numbers():
    """A card per tracking number, a page at a time, filtered by status or text."""
    status = request.args.get("status") or None
    if status not in (None, *STATUS_KEYS, *STATUS_GROUPS):
        status = None
    search = (request.args.get("q") or "").strip()[:100]
    listing = number_cards.numbers_page(status=status, search=search, page=requested_page())
    due = mark_due_checks([card.number for card in listing.cards])
    if due:
        statuses = number_statuses(due)
        for card in listing.cards:
            card.status = statuses.get(card.number.id, card.status)
    page = render_template("numbers/numbers.html", listing=listing, cards=listing.cards, counts=listing.counts,
                           status=status, search=search, since=utcnow().isoformat(),
                           **sync_shown(request.args.get("sync", type=int)),
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
    number = row_or_404(PhoneAssignment, number_id)
    pagination = paginate_calls(calls_select(number_id=number.id), requested_page(), HISTORY_PER_PAGE)
    events = audit_trail("PhoneAssignment", number.id)
    return render_template("numbers/number_detail.html", number=number, card=number_cards.card_for(number),
                           pagination=pagination, events=events, client_names=client_names_in(events),
                           tests=call_tests.latest_tests(number.id), tests_below=True)


@page_and_fragment(bp, "/numbers/<int:number_id>/edit", "/partials/numbers/<int:number_id>/edit")
@login_required
def edit_number(number_id, fragment):
    """The assignment form: swapped in place of the card (`fragment`), or on a page of its own without scripts."""
    number = row_or_404(PhoneAssignment, number_id)
    form = {"client_id": str(number.client_id or ""), "forward_to_number": shown_phone(number.forward_to_number),
            "friendly_name": number.friendly_name or ""}
    return render_form(number, form, {}, fragment=fragment)


def render_form(number, form, errors, status=200, *, fragment):
    template = "numbers/_number_form.html" if fragment else "numbers/number_edit.html"
    return render_template(template, number=number, form=form, errors=errors,
                           clients=number_cards.client_choices(number.client_id)), status


def render_card(number, note=None, note_kind="info", calling=False, changed=False, test_call=None,
                already_testing=False):
    # On the number's own page the card says where a running test's steps are instead of repeating them.
    html = render_template("numbers/_number_card.html", card=number_cards.card_for(number), note=note,
                           note_kind=note_kind, calling=calling, test_call=test_call, already_testing=already_testing,
                           tests_below=request.args.get("tests") == "below")
    # The page's status totals listen for this and refresh themselves.
    return html, 200, ({"HX-Trigger": "numbers-changed"} if changed else {})


def done(number, message, twilio_problem=None):
    """The fresh card for htmx; for a plain form post, a flash and a 303 to the number's page."""
    kind = "success"
    if twilio_problem:
        message, kind = f"{message} But Twilio is not pointed at phoneapp yet: {twilio_problem}", "warning"
    if is_htmx():
        return render_card(number, note=message, note_kind=kind, changed=True)
    flash(message, kind)
    return redirect(url_for("numbers.number_detail", number_id=number.id), code=303)


@bp.get("/partials/numbers/<int:number_id>/card")
@login_required
def number_card(number_id):
    """One number's card; it polls itself while a call or a test (`test_call`) on it is under way.

    `already` keeps the note that a second Test started nothing while the card follows the test that runs.
    """
    number = row_or_404(PhoneAssignment, number_id)
    test = None
    test_call_id = request.args.get("test_call", type=int)
    if test_call_id is not None and 1 <= test_call_id <= MAX_ID:
        test = db.session.get(TestCall, test_call_id)
        if test is None or test.phone_assignment_id != number.id:
            test = None
        else:
            call_tests.expire_if_overdue(test)
    if test is not None and test.finished_at is None and request.args.get("already"):
        return render_card(number, note=ALREADY_TESTING, note_kind="warning", test_call=test, already_testing=True)
    return render_card(number, test_call=test)


@bp.post("/partials/numbers/<int:number_id>")
@login_required
def update_number(number_id):
    """Assign, reassign, change the forward target or rename; audited."""
    number = row_or_404(PhoneAssignment, number_id)
    form = {field: (request.form.get(field) or "").strip() for field in ASSIGNMENT_FIELDS}
    try:
        assignments.update_assignment(number, form, actor=acting_user())
    except ValidationError as exc:
        db.session.rollback()
        return render_form(number, form, exc.details, 422, fragment=is_htmx())
    return done(number, "Saved.", assignments.point_twilio_here(number, actor=acting_user()))


@bp.post("/partials/numbers/<int:number_id>/active")
@login_required
def set_number_active(number_id):
    """Switch a number on or off; audited."""
    number = row_or_404(PhoneAssignment, number_id)
    value = request.form.get("is_active")
    if value not in ("true", "false"):
        abort(400, "is_active must be true or false")
    assignments.update_assignment(number, {"is_active": value == "true"}, actor=acting_user())
    return done(number, "Activated." if number.is_active else "Deactivated.",
                assignments.point_twilio_here(number, actor=acting_user()))


@bp.post("/partials/numbers/<int:number_id>/test")
@login_required
def test_number(number_id):
    """Start "Test": a worker runs the dry check and, unless live=0, a live call; the steps show as they come."""
    number = row_or_404(PhoneAssignment, number_id)
    try:
        test = start_test_call(number, acting_user(), live=request.form.get("live", "1") != "0")
    except AlreadyTesting as exc:
        return already_testing(number, exc.test)
    if not is_htmx():
        flash("Test started; its steps show below as they happen." if test.finished_at is None else test.detail,
              "info" if test.finished_at is None else "error")
        return redirect(url_for("numbers.number_detail", number_id=number.id, _anchor="tests"), code=303)
    if request.form.get("panel") == "detail":
        return render_template("numbers/_test_call.html", test=test, poll_self=True)
    return render_card(number, test_call=test, changed=True)


def already_testing(number, test):
    """Test pressed while a test of the number runs (another tab, another person): that test, and why no new one."""
    if not is_htmx():
        flash(ALREADY_TESTING, "warning")
        return redirect(url_for("numbers.number_detail", number_id=number.id, _anchor="tests"), code=303)
    if request.form.get("panel") == "detail":
        return render_template("numbers/_test_call.html", test=test, poll_self=True, panel_note=ALREADY_TESTING)
    return render_card(number, note=ALREADY_TESTING, note_kind="warning", test_call=test, already_testing=True)


@bp.get("/partials/test-calls/<int:test_call_id>")
@login_required
def test_call(test_call_id):
    """One test's steps; the fragment polls itself until the test ends."""
    test = row_or_404(TestCall, test_call_id)
    call_tests.expire_if_overdue(test)
    return render_template("numbers/_test_call.html", test=test, poll_self=True)


# What the sandbox's forwarded phone does, as the card's menu says it.
SIMULATED_ENDINGS = {"answered": "answers", "voicemail": "lets its voicemail pick up", "busy": "is busy",
                     "no-answer": "does not answer", "failed": "fails",
                     "canceled": "rings until the caller hangs up"}


@bp.post("/partials/numbers/<int:number_id>/simulate-call")
@login_required
def simulate_call(number_id):
    """Sandbox only: ring the number from a simulated caller, in the background."""
    if not current_app.config["SANDBOX"]:
        abort(404)
    number = row_or_404(PhoneAssignment, number_id)
    outcome = request.form.get("outcome") or "answered"
    if outcome not in SIMULATED_OUTCOMES:
        abort(400, f"outcome must be one of {', '.join(SIMULATED_OUTCOMES)}")
    try:
        place_simulated_call(number.phone_number, outcome=outcome)
    except (ValueError, RuntimeError) as exc:
        return answer_simulation(number, f"Could not place the call: {exc}", "error")
    if number.is_active and number.target_number:
        note = f"Calling… the first phone rung {SIMULATED_ENDINGS[outcome]}."
    else:
        note = "Calling… nobody takes this number’s calls yet, so the caller will hear a message."
    if number.webhook_url != expected_webhooks()["voice_url"]:
        note += " Twilio is not pointed at phoneapp for this number yet, so the call will not reach it."
    return answer_simulation(number, note, "info", calling=True)


def answer_simulation(number, note, kind, calling=False):
    if is_htmx():
        return render_card(number, note=note, note_kind=kind, calling=calling)
    flash(note, kind)
    return redirect(url_for("numbers.numbers"), code=303)


@bp.get("/partials/numbers/status-counts")
@login_required
def status_counts():
    """How many numbers show each status colour."""
    return render_template("numbers/_status_counts.html", counts=number_cards.status_counts())


@bp.get("/partials/numbers/changes")
@login_required
def number_changes():
    """The cards shown on a page that changed since its last look, each swapped in out of band."""
    now = utcnow()
    since = moment_arg("since", default=now - CHANGES_OVERLAP)
    shown = [int(value) for value in request.args.getlist("card")[:MAX_CARDS_SHOWN] if value.isdigit()]
    changed = number_cards.changed_number_ids(shown, since - CHANGES_OVERLAP)
    numbers = db.session.scalars(
        number_cards.numbers_query().where(PhoneAssignment.id.in_(changed))).unique().all() if changed else []
    return render_template("numbers/_number_changes.html", since=now.isoformat(),
                           changed_cards=number_cards.build_cards(numbers),
                           changed_counts=number_cards.status_counts() if changed else None)


def moment_arg(name, default):
    """A naive-UTC time from the query string, or `default` when it is missing or malformed."""
    try:
        moment = datetime.fromisoformat(request.args[name]).replace(tzinfo=None)
    except (KeyError, ValueError):
        return default
    # Twice the overlap is taken off it; a moment that near the start of time asks for everything anyway.
    return max(moment, datetime.min + 2 * CHANGES_OVERLAP)


def sync_shown(run_id):
    """The sync run "Sync now" started (`run_id`), and the numbers it added once it is done."""
    run = db.session.get(JobRun, run_id) if run_id is not None and 1 <= run_id <= MAX_ID else None
    if run is None or run.name != "sync_numbers":
        return {"sync_run": None}
    finished = run.status in ("succeeded", "failed")
    new_numbers = db.session.scalars(number_cards.numbers_query().where(
        PhoneAssignment.created_at >= run.enqueued_at).limit(MAX_CARDS_SHOWN)).unique().all() if finished else []
    return {"sync_run": run, "sync_worker_ok": finished or check_worker().ok,
            "new_cards": number_cards.build_cards(new_numbers) if new_numbers else []}


@bp.post("/numbers/sync")
@login_required
def sync_now():
    """Queue a sync of the Twilio account's numbers; the page follows it and shows the numbers it adds."""
    try:
        run = enqueue("sync_numbers")
    except QueueUnavailable as exc:
        flash(f"Could not start the sync: {exc}", "error")
        return redirect(url_for("numbers.numbers"), code=303)
    if is_htmx():
        return render_template("numbers/_sync_run.html", **sync_shown(run.id))
    return redirect(url_for("numbers.numbers", sync=run.id), code=303)


@bp.get("/partials/numbers/sync/<int:run_id>")
@login_required
def sync_progress(run_id):
    """How a sync staff started is going; once it ends, the numbers it added, and the page's totals refresh."""
    row_or_404(JobRun, run_id)
    shown = sync_shown(run_id)
    if shown["sync_run"] is None:
        abort(404)
    finished = shown["sync_run"].status in ("succeeded", "failed")
    html = render_template("numbers/_sync_run.html", **shown)
    return html, 200, ({"HX-Trigger": "numbers-changed"} if finished else {})


@bp.get("/numbers/import")
@login_required
def import_form():
    """The Import page: upload the previous front-end's JSON export to see what importing it would do."""
    return render_template("numbers/import.html", stage="upload", errors={})


@bp.post("/numbers/import")
@login_required
def upload_import():
    """Keep the uploaded file and show its dry run; a file that cannot be read is refused beside the field."""
    upload = request.files.get("file")
    content = upload.read() if upload is not None else b""
    reason = "choose the JSON file exported from the previous front-end" if not content else None
    if reason is None:
        try:
            legacy_import.read_import_file(content)
        except legacy_import.ImportFileError as exc:
            reason = str(exc)
    if reason is not None:
        return render_template("numbers/import.html", stage="upload", errors={"file": reason}), 400
    return redirect(url_for("numbers.import_plan", token=import_uploads.keep_upload(content)), code=303)


def _kept_file(token):
    content = import_uploads.kept_upload(token)
    if content is None:
        abort(404)
    return legacy_import.read_import_file(content)


@bp.get("/numbers/import/<token>")
@login_required
def import_plan(token):
    """The dry run: what Apply would create, change and refuse, row by row, and why."""
    plan = legacy_import.plan_import(*_kept_file(token), current_app.config["PHONE_REGION"])
    return render_template("numbers/import.html", stage="plan", token=token, plan=plan.shown(),
                           changes=plan.changes_anything())


@bp.post("/numbers/import/<token>/apply")
@login_required
def apply_import(token):
    """Apply the file in one transaction (planned afresh: the database may have changed since the dry run)."""
    clients_in_file, numbers_in_file = _kept_file(token)
    try:
        plan = legacy_import.apply_import(clients_in_file, numbers_in_file, current_app.config["PHONE_REGION"],
                                          actor=acting_user())
    except legacy_import.ImportConflict as exc:
        flash(f"Nothing was imported: {exc}", "error")
        return redirect(url_for("numbers.import_plan", token=token), code=303)
    import_uploads.keep_result(token, plan.shown())
    return redirect(url_for("numbers.import_result", token=token), code=303)


@bp.get("/numbers/import/<token>/result")
@login_required
def import_result(token):
    """What applying the file did."""
    result = import_uploads.kept_result(token)
    if result is None:
        abort(404)
    return render_template("numbers/import.html", stage="result", token=token, plan=result)
