"""/api/call-records: the call history, newest first, filtered and paginated."""
import sqlalchemy as sa

from phoneapp.api.blueprint import bp
from phoneapp.api.inputs import MAX_ID, PAGE_ARGS, QueryArgs
from phoneapp.api.queries import paginate
from phoneapp.api.serializers import call_record_json, page_json
from phoneapp.call_status import LIVE_STATUSES, TERMINAL_STATUSES
from phoneapp.extensions import db
from phoneapp.models import CallRecord, PhoneAssignment
from phoneapp.number_cards import outcome_expression
from phoneapp.services.errors import NotFound

# The status filter takes Twilio's call statuses and, besides, the outcome words the call log shows.
CALL_STATUSES = tuple(LIVE_STATUSES) + tuple(sorted(TERMINAL_STATUSES))
OUTCOME_FILTERS = ("answered", "missed", "voicemail")
STATUS_FILTERS = CALL_STATUSES + OUTCOME_FILTERS
FILTER_ARGS = ("phone_assignment_id", "client_id", "status", "since", "until", "is_test")


def _calls_with_client():
    return (sa.select(CallRecord, PhoneAssignment.client_id)
            .outerjoin(PhoneAssignment, CallRecord.phone_assignment_id == PhoneAssignment.id))


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

    statement = _calls_with_client().order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
    if number_id is not None:
        statement = statement.where(CallRecord.phone_assignment_id == number_id)
    if client_id is not None:
        statement = statement.where(PhoneAssignment.client_id == client_id)
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
    return page_json([call_record_json(record, owner) for record, owner in rows], page, per_page, total)


@bp.get("/call-records/<int:call_id>")
def get_call(call_id):
    """One call record."""
    row = None
    if call_id <= MAX_ID:
        row = db.session.execute(_calls_with_client().where(CallRecord.id == call_id)).first()
    if row is None:
        raise NotFound(f"no call record with id {call_id}")
    return call_record_json(*row)
