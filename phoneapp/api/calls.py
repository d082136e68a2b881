"""/api/call-records: the call history, newest first unless sorted, filtered, searched and paginated."""
import sqlalchemy as sa
from flask import request

from phoneapp.api.blueprint import bp
from phoneapp.api.inputs import PAGE_ARGS, QueryArgs, json_body
from phoneapp.api.queries import paginate, row_or_404
from phoneapp.domain.call_status import LIVE_STATUSES, TERMINAL_STATUSES
from phoneapp.models import CallRecord
from phoneapp.services.call_details import call_events, timeline, update_notes_and_tags
from phoneapp.services.call_log import DEFAULT_SORT, SORTS, call_conditions, search_problem, sort_order
from phoneapp.services.call_outcomes import outcome_expression
from phoneapp.services.serializers import call_event_json, call_record_json, page_json

# The status filter takes Twilio's call statuses and, besides, the outcome words the call log shows.
CALL_STATUSES = tuple(LIVE_STATUSES) + tuple(sorted(TERMINAL_STATUSES))
OUTCOME_FILTERS = ("answered", "missed", "voicemail")
STATUS_FILTERS = CALL_STATUSES + OUTCOME_FILTERS
FILTER_ARGS = ("phone_assignment_id", "client_id", "status", "outcome", "since", "until", "is_test", "q", "sort")


@bp.get("/call-records")
def list_calls():
    """Call records, newest first unless sorted, paginated, filtered and searched by caller."""
    args = QueryArgs(PAGE_ARGS + FILTER_ARGS)
    page, per_page = args.page()
    number_id = args.integer("phone_assignment_id")
    client_id = args.integer("client_id")
    status = args.choice("status", STATUS_FILTERS)
    outcomes = args.outcomes("outcome")
    since, until = args.moment("since"), args.moment("until")
    is_test = args.boolean("is_test")
    q = _search(args)
    sort = args.choice("sort", SORTS) or DEFAULT_SORT
    if since is not None and until is not None and since > until:
        args.errors["until"] = "must not be before since"
    args.done()

    tests = {None: "include", True: "only", False: "exclude"}[is_test]
    statement = (sa.select(CallRecord)
                 .where(*call_conditions(number_id=number_id, client_id=client_id, outcome=outcomes,
                                         since=since, until=until, tests=tests, q=q))
                 .order_by(*sort_order(sort)))
    if status in OUTCOME_FILTERS:
        statement = statement.where(outcome_expression() == status)
    elif status is not None:
        statement = statement.where(CallRecord.status == status)
    rows, total = paginate(statement, page, per_page)
    return page_json([call_record_json(record) for (record,) in rows], page, per_page, total)


def _search(args):
    """`q`, part of the caller's number or name; None when absent or blank."""
    if "q" in args.errors or not (request.args.get("q") or "").strip():
        return None
    problem = search_problem(request.args["q"])
    if problem:
        args.errors["q"] = problem
        return None
    return request.args["q"]


@bp.get("/call-records/<int:call_id>")
def get_call(call_id):
    """One call record."""
    return call_record_json(row_or_404(CallRecord, call_id, "call record"))


@bp.patch("/call-records/<int:call_id>")
def update_call(call_id):
    """Change a call's notes and tags; any other field is refused."""
    record = row_or_404(CallRecord, call_id, "call record")
    return call_record_json(update_notes_and_tags(record, json_body()))


@bp.get("/call-records/<int:call_id>/events")
def list_call_events(call_id):
    """The call's timeline: every request Twilio made about it, in the order received, paginated like every list."""
    args = QueryArgs(PAGE_ARGS)
    page, per_page = args.page()
    args.done()
    record = row_or_404(CallRecord, call_id, "call record")
    # Repeats and late arrivals are told from what came before, so the whole call is read (a few dozen rows).
    entries = timeline(call_events(record))
    shown = entries[(page - 1) * per_page:page * per_page]
    return page_json([call_event_json(entry) for entry in shown], page, per_page, len(entries))
