"""/api/blocked-numbers: callers turned away, for every client or for one (SPEC §3a.1)."""
from flask import current_app

from phoneapp.api.blueprint import acting_user, bp
from phoneapp.api.inputs import PAGE_ARGS, QueryArgs, check_body, json_body, record_id, text
from phoneapp.api.queries import paginate
from phoneapp.services.block_list import blocked_numbers_select
from phoneapp.services.block_list_changes import MAX_REASON_LENGTH, add_blocked_number, delete_blocked_number
from phoneapp.services.serializers import iso, page_json

BLOCKED_NUMBER_BODY = {
    "number": text(64),
    "client_id": record_id(nullable=True),
    "reason": text(MAX_REASON_LENGTH, nullable=True),
}


def blocked_number_json(entry):
    return {
        "id": entry.id,
        "number": entry.number,
        "is_prefix": entry.number.endswith("*"),
        "client_id": entry.client_id,
        "client_name": entry.client.name if entry.client is not None else None,
        "reason": entry.reason or "",
        "created_by": entry.created_by_label,
        "created_at": iso(entry.created_at),
    }


@bp.get("/blocked-numbers")
def list_blocked_numbers():
    """The block list, oldest first, paginated; optionally only one client's own entries."""
    args = QueryArgs(PAGE_ARGS + ("client_id",))
    page, per_page = args.page()
    client_id = args.integer("client_id")
    args.done()
    rows, total = paginate(blocked_numbers_select(client_id), page, per_page)
    return page_json([blocked_number_json(entry) for (entry,) in rows], page, per_page, total)


@bp.post("/blocked-numbers")
def create_blocked_number():
    """Block a number or a prefix, for every client (client_id absent or null) or for one."""
    data = check_body(json_body(), BLOCKED_NUMBER_BODY, required=("number",))
    entry = add_blocked_number(data["number"], data.get("client_id"), data.get("reason"), actor=acting_user(),
                               region=current_app.config["PHONE_REGION"])
    return blocked_number_json(entry), 201


@bp.delete("/blocked-numbers/<int:blocked_number_id>")
def delete_blocked_number_view(blocked_number_id):
    """Take an entry off the block list."""
    delete_blocked_number(blocked_number_id, actor=acting_user())
    return "", 204
