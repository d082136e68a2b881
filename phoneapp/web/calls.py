"""The call log: its page and polling table, filtered and paginated, and the filtered calls as CSV."""
import csv
import io
import re
from datetime import UTC
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import login_required

from phoneapp.domain.call_status import FAILED_OUTCOMES, OUTCOMES, outcome_of
from phoneapp.extensions import db
from phoneapp.models import CallRecord, Client, PhoneAssignment
from phoneapp.services import call_details
from phoneapp.services.call_log import (
    CALLS_PER_PAGE,
    DEFAULT_SORT,
    EXPORT_BATCH_SIZE,
    FILTER_NAMES,
    TEST_CALL_CHOICES,
    calls_select,
    export_batches,
    filter_choices,
    paginate_calls,
    read_filters,
)
from phoneapp.services.errors import NotFound, UpstreamError, ValidationError
from phoneapp.services.recordings import media_addresses, open_media
from phoneapp.web.filters import page_zone
from phoneapp.web.view_helpers import page_and_fragment, requested_page, row_or_404

bp = Blueprint("calls", __name__)

_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_HEADER = (
    "call_id", "started_at", "tracking_number", "number_name", "client", "caller", "caller_city", "caller_state",
    "forwarded_to", "outcome", "answered_by", "route_rule", "status", "dial_status", "duration_seconds", "test",
    "recording_url",
    "voicemail_url", "twilio_call_sid",
)


def call_log_context():
    """Everything the call log table needs, for the page and its polling fragment alike."""
    filters, problems = read_filters(request.args)
    pagination = paginate_calls(calls_select(**filters.select_args()), requested_page(), CALLS_PER_PAGE)
    return {"pagination": pagination, "filters": filters, "filter_problems": problems,
            "page_args": filters.query_args(), "show_count": True, "sorting": sort_headers(filters)}


def sort_headers(filters):
    """{column: (its aria-sort or None, the link that sorts by it)}: a sorted column's link turns its order round,
    another column's sorts by it, newest or longest first; the other filters are kept either way."""
    headers = {}
    for column in ("started_at", "duration"):
        state = {column: "ascending", f"-{column}": "descending"}.get(filters.sort)
        sort = column if state == "descending" else f"-{column}"
        args = {**filters.query_args(), "sort": None if sort == DEFAULT_SORT else sort}
        headers[column] = (state, url_for("calls.calls", **args))
    return headers


@page_and_fragment(bp, "/calls", "/partials/calls")
@login_required
def calls(fragment):
    """The call log, narrowed by number, client, outcome, days, tests and caller, sorted by time or duration; or
    (`fragment`) its table."""
    context = call_log_context()
    if fragment:
        return render_template("calls/_calls_table.html", poll=True, **context)
    if context["pagination"].page > max(context["pagination"].pages, 1):
        abort(404)
    numbers, clients = filter_choices()
    return render_template("calls/calls.html", numbers=numbers, clients=clients,
                           outcomes=outcome_choices(context["filters"].outcome),
                           test_choices=TEST_CALL_CHOICES, **context)


def outcome_choices(current):
    """(value, label) for the outcome menu: each word, failed forwards, and whatever combination a link asked for."""
    choices = [(word, word) for word in OUTCOMES]
    choices.append((",".join(FAILED_OUTCOMES), " or ".join(FAILED_OUTCOMES) + " (failed forwards)"))
    if current and current not in dict(choices):
        words = current.split(",")
        choices.append((current, ", ".join(words[:-1]) + " or " + words[-1]))
    return choices


@bp.get("/calls/export.csv")
@login_required
def export_calls():
    """The call log's filtered calls as a CSV download, streamed a batch at a time."""
    filters, problems = read_filters(request.args)
    if problems:
        # A dropped filter would export more calls than were asked for: show why on the log instead.
        flash("Some filters could not be used, so nothing was exported. Fix or clear them and export again.",
              "warning")
        given = {name: request.args[name] for name in FILTER_NAMES if name in request.args}
        return redirect(url_for("calls.calls", **given), code=303)
    response = Response(stream_with_context(calls_csv(filters)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{export_filename(filters)}"'
    return response


def export_filename(filters):
    """calls-acme-plumbing-missed-2024-05-01-to-2024-05-31.csv and the like: what the file holds, by its filters."""
    parts = []
    if filters.client is not None:
        client = db.session.get(Client, filters.client)
        parts.append(_slug(client.name if client else "") or f"client-{filters.client}")
    if filters.number is not None:
        number = db.session.get(PhoneAssignment, filters.number)
        parts.append(number.phone_number.lstrip("+") if number else f"number-{filters.number}")
    if filters.outcome:
        parts.append(_slug(filters.outcome))
    if filters.q and _slug(filters.q):
        parts.append("matching-" + _slug(filters.q))
    if filters.tests != "include":
        parts.append("test-calls-only" if filters.tests == "only" else "without-test-calls")
    if filters.date_from and filters.date_to:
        parts.append(f"{filters.date_from}-to-{filters.date_to}")
    elif filters.date_from:
        parts.append(f"from-{filters.date_from}")
    elif filters.date_to:
        parts.append(f"until-{filters.date_to}")
    return "-".join(["calls", *(parts or ["all"])]) + ".csv"


def _slug(text):
    """Plain ASCII for a file name: letters and digits, words joined by hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")


def spreadsheet_safe(value):
    """Text a spreadsheet shows as text: a leading apostrophe before anything it would run as a formula."""
    if value is None:
        return ""
    if value.startswith(_FORMULA_STARTS) and not _E164.match(value):
        return "'" + value
    return value


def export_row(row, zone):
    """One call as the export's cells, in EXPORT_HEADER's order."""
    safe = spreadsheet_safe
    started = row.started_at.replace(tzinfo=UTC).astimezone(zone).isoformat(timespec="seconds")
    outcome = outcome_of(row)
    return (row.id, started, safe(row.phone_number or row.to_number), safe(row.friendly_name),
            safe(row.client_name), safe(row.from_number), safe(row.caller_city), safe(row.caller_state),
            safe(row.forwarded_to), outcome, safe(row.answered_by), safe(row.route_rule), safe(row.status),
            safe(row.dial_status),
            "" if row.duration is None else row.duration, "yes" if row.is_test else "no",
            *media_addresses(row.id, row.recording_url, row.voicemail_url), safe(row.twilio_call_sid))


def csv_text(rows):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def calls_csv(filters, batch_size=EXPORT_BATCH_SIZE):
    """The filtered calls as CSV text: the header, then one chunk per batch, so memory stays flat."""
    zone = ZoneInfo(page_zone())
    yield csv_text([EXPORT_HEADER])
    for rows in export_batches(filters, batch_size):
        yield csv_text(export_row(row, zone) for row in rows)


def call_detail_context(record):
    """What the call's page and its live part show: the call, its legs and its timeline."""
    events = call_details.call_events(record)
    return {"call": record, "legs": call_details.call_legs(events), "timeline": call_details.timeline(events),
            "live": call_details.is_live(record), "shown_params": call_details.shown_params}


@page_and_fragment(bp, "/calls/<int:call_id>", "/partials/calls/<int:call_id>")
@login_required
def call_detail(call_id, fragment):
    """One call: caller, routing, legs, recording, voicemail, notes, tags, timeline; or (`fragment`) its live part."""
    record = row_or_404(CallRecord, call_id)
    context = call_detail_context(record)
    if fragment:
        return (render_template("calls/_call_live.html", **context)
                + render_template("calls/_call_timeline.html", out_of_band=True, **context))
    form = {"notes": record.notes or "", "tags": " ".join(record.tags or [])}
    return render_template("calls/call_detail.html", form=form, errors={}, **context)


@bp.post("/calls/<int:call_id>/notes")
@login_required
def update_call_notes(call_id):
    """Save the call's notes and tags; the page again with the reasons beside the fields when refused."""
    record = row_or_404(CallRecord, call_id)
    form = {"notes": request.form.get("notes", ""), "tags": request.form.get("tags", "")}
    try:
        call_details.update_notes_and_tags(record, {"notes": form["notes"],
                                                    "tags": call_details.split_tags(form["tags"])})
    except ValidationError as exc:
        db.session.rollback()
        return render_template("calls/call_detail.html", form=form, errors=exc.details,
                               **call_detail_context(record)), 400
    flash("Notes and tags saved.", "success")
    return redirect(url_for("calls.call_detail", call_id=record.id, _anchor="notes"), code=303)


@bp.get("/calls/<int:call_id>/recording", endpoint="call_recording", defaults={"kind": "recording"})
@bp.get("/calls/<int:call_id>/voicemail", endpoint="call_voicemail", defaults={"kind": "voicemail"})
@login_required
def call_media(call_id, kind):
    """The call's recording or voicemail streamed from Twilio, a byte range when the player asks for one."""
    record = row_or_404(CallRecord, call_id)
    try:
        media = open_media(record, kind, request.headers.get("Range"))
    except NotFound:
        abort(404, description=f"This call has no {kind}.")
    except UpstreamError as error:
        abort(502, description=error.message)
    headers = dict(media.headers)
    if not headers.get("Content-Type", "").startswith("audio/"):
        # Whatever else came back is never run as a page of phoneapp's.
        headers["Content-Type"] = "application/octet-stream"
    headers["Content-Disposition"] = f'inline; filename="call-{record.id}-{kind}"'
    # The audio of a call never changes; a player seeking back should not fetch it again.
    headers["Cache-Control"] = "private, max-age=3600"
    response = Response(media.chunks, status=media.status, headers=headers, direct_passthrough=True)
    response.call_on_close(media.close)
    return response
