"""/api/call-records: the call history, newest first, filtered and paginated."""
import sqlalchemy as sa

from phoneapp.api.blueprint import bp
from phoneapp.api.inputs import PAGE_ARGS, QueryArgs
from phoneapp.api.queries import paginate, row_or_404
from phoneapp.api.serializers import call_record_json, page_json
from phoneapp.call_status import LIVE_STATUSES, TERMINAL_STATUSES
from phoneapp.models import CallRecord
from phoneapp.number_cards import outcome_expression

# The status filter takes Twilio's call statuses and, besides, the outcome words the call log shows.
CALL_STATUSES = tuple(LIVE_STATUSES) + tuple(sorted(TERMINAL_STATUSES))
OUTCOME_FILTERS = ("answered", "missed", "voicemail")
STATUS_FILTERS = CALL_STATUSES + OUTCOME_FILTERS
FILTER_ARGS = ("phone_assignment_id", "client_id", "status", "since", "until", "is_test")


@bp.get("/call-records")
def list_calls():
    """Call records, newest first, paginated and filtered."""
    args = QueryArgs(PAGE_ARGS + FILTER_ARGS)
    page, per_page = args.page()
    number_id = args.integer("phone_assignment_id")
    client_id = args.integer("client_id")
    status = args.choice("status", STATUS_FILTERS)
    since, until = args.moment("since"), args.moment("until")
    is_test = args.boolean("is_test")
    if since is not None and until is not None and since > until:
        args.errors["until"] = "must not be before since"
    args.done()

    statement = sa.select(CallRecord).order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
    if number_id is not None:
        statement = statement.where(CallRecord.phone_assignment_id == number_id)
    if client_id is not None:
        statement = statement.where(CallRecord.client_id == client_id)
    if status in OUTCOME_FILTERS:
        statement = statement.where(outcome_expression() == status)
    elif status is not None:
        statement = statement.where(CallRecord.status == status)
    if since is not None:
        statement = statement.where(CallRecord.started_at >= since)
    if until is not None:
        statement = statement.where(CallRecord.started_at < until)
    if is_test is not None:
        statement = statement.where(CallRecord.is_test.is_(is_test))
    rows, total = paginate(statement, page, per_page)
    return page_json([call_record_json(record) for (record,) in rows], page, per_page, total)


@bp.get("/call-records/<int:call_id>")
def get_call(call_id):
    """One call record."""
    return call_record_json(row_or_404(CallRecord, call_id, "call record"))
