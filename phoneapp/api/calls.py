"""/api/call-records: the call history, newest first, filtered and paginated."""
import sqlalchemy as sa

from phoneapp.api.blueprint import bp
from phoneapp.api.inputs import PAGE_ARGS, QueryArgs
from phoneapp.api.queries import paginate, row_or_404
from phoneapp.domain.call_status import LIVE_STATUSES, TERMINAL_STATUSES
from phoneapp.models import CallRecord
from phoneapp.services.call_log import NEWEST_FIRST, call_conditions
from phoneapp.services.call_outcomes import outcome_expression
from phoneapp.services.serializers import call_record_json, page_json

# The status filter takes Twilio's call statuses and, besides, the outcome words the call log shows.
CALL_STATUSES = tuple(LIVE_STATUSES) + tuple(sorted(TERMINAL_STATUSES))
OUTCOME_FILTERS = ("answered", "missed", "voicemail")
STATUS_FILTERS = CALL_STATUSES + OUTCOME_FILTERS
FILTER_ARGS = ("phone_assignment_id", "client_id", "status", "outcome", "since", "until", "is_test")


@bp.get("/call-records")
def list_calls():
    """Call records, newest first, paginated and filtered."""
    args = QueryArgs(PAGE_ARGS + FILTER_ARGS)
    page, per_page = args.page()
    number_id = args.integer("phone_assignment_id")
    client_id = args.integer("client_id")
    status = args.choice("status", STATUS_FILTERS)
    outcomes = args.outcomes("outcome")
    since, until = args.moment("since"), args.moment("until")
    is_test = args.boolean("is_test")
    if since is not None and until is not None and since > until:
        args.errors["until"] = "must not be before since"
    args.done()

    tests = {None: "include", True: "only", False: "exclude"}[is_test]
    statement = (sa.select(CallRecord)
                 .where(*call_conditions(number_id=number_id, client_id=client_id, outcome=outcomes,
                                         since=since, until=until, tests=tests))
                 .order_by(*NEWEST_FIRST))
    if status in OUTCOME_FILTERS:
        statement = statement.where(outcome_expression() == status)
    elif status is not None:
        statement = statement.where(CallRecord.status == status)
    rows, total = paginate(statement, page, per_page)
    return page_json([call_record_json(record) for (record,) in rows], page, per_page, total)


@bp.get("/call-records/<int:call_id>")
def get_call(call_id):
    """One call record."""
    return call_record_json(row_or_404(CallRecord, call_id, "call record"))
