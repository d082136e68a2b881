"""/api/phone-assignments: tracking numbers, who they forward to, and their status dot."""
import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from phoneapp.api.blueprint import acting_user, bp
from phoneapp.api.inputs import PAGE_ARGS, QueryArgs, boolean, check_body, json_body, record_id, text
from phoneapp.api.queries import paginate, row_or_404
from phoneapp.models import PhoneAssignment
from phoneapp.services.assignments import point_twilio_here, release_assignment, update_assignment, upsert_assignment
from phoneapp.services.number_statuses import number_statuses
from phoneapp.services.serializers import assignment_json, assignments_json, page_json

UPDATE_BODY = {
    "client_id": record_id(nullable=True),
    "forward_to_number": text(64, nullable=True),
    "is_active": boolean(),
    "friendly_name": text(200, nullable=True),
}
UPSERT_BODY = {"twilio_sid": text(), "phone_number": text(64, nullable=True), **UPDATE_BODY}


def number_or_404(number_id):
    return row_or_404(PhoneAssignment, number_id, "phone assignment", joinedload(PhoneAssignment.client))


def one_number_json(number):
    return assignment_json(number, number_statuses([number])[number.id])


def _editable(data):
    # null clears an optional field; for the name that means no name rather than a refusal.
    if "friendly_name" in data and data["friendly_name"] is None:
        return {**data, "friendly_name": ""}
    return data


@bp.get("/phone-assignments")
def list_numbers():
    """Tracking numbers by phone number, each with its client and status; paginated."""
    args = QueryArgs(PAGE_ARGS + ("client_id", "is_active"))
    page, per_page = args.page()
    client_id = args.integer("client_id")
    is_active = args.boolean("is_active")
    args.done()
    statement = (sa.select(PhoneAssignment).options(joinedload(PhoneAssignment.client))
                 .order_by(PhoneAssignment.phone_number, PhoneAssignment.id))
    if client_id is not None:
        statement = statement.where(PhoneAssignment.client_id == client_id)
    if is_active is not None:
        statement = statement.where(PhoneAssignment.is_active.is_(is_active))
    rows, total = paginate(statement, page, per_page)
    return page_json(assignments_json([number for (number,) in rows]), page, per_page, total)


@bp.post("/phone-assignments")
def upsert_number():
    """Create or update the assignment of a Twilio number by its SID and point its webhooks here."""
    data = check_body(json_body(), UPSERT_BODY, required=("twilio_sid",))
    number, _created = upsert_assignment(_editable(data), actor=acting_user())
    # Always 200: the same body twice is the same state, so both answers are alike.
    return one_number_json(number)


@bp.get("/phone-assignments/<int:number_id>")
def get_number(number_id):
    """One tracking number with its client and status."""
    return one_number_json(number_or_404(number_id))


@bp.patch("/phone-assignments/<int:number_id>")
def update_number(number_id):
    """Change any of client_id, forward_to_number, is_active, friendly_name; null clears one."""
    number = number_or_404(number_id)
    data = check_body(json_body(), UPDATE_BODY)
    number = update_assignment(number, _editable(data), actor=acting_user())
    # Same as the card's form: a number that now forwards gets Twilio pointed here; a failure shows in its status.
    point_twilio_here(number, actor=acting_user())
    return one_number_json(number)


@bp.delete("/phone-assignments/<int:number_id>")
def release_number(number_id):
    """Unassign and deactivate the number (it stays in the account and keeps its call history)."""
    return one_number_json(release_assignment(number_or_404(number_id), actor=acting_user()))
