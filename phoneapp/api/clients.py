"""/api/clients: the agency's customers whose phones receive the forwarded calls."""
import sqlalchemy as sa
from flask import current_app, url_for

from phoneapp.api.blueprint import acting_user, bp
from phoneapp.api.inputs import PAGE_ARGS, QueryArgs, boolean, check_body, json_body, text
from phoneapp.api.queries import paginate, row_or_404
from phoneapp.models import Client
from phoneapp.services.client_rules import MAX_GREETING_LENGTH
from phoneapp.services.clients import MAX_NOTES_LENGTH, create_client, delete_client, update_client
from phoneapp.services.serializers import client_json, page_json


def any_json():
    """The routing rules' shapes (schedules, lists of numbers) are checked by the services, which name the item."""
    return lambda value: None


CLIENT_BODY = {
    "name": text(200),
    "phone": text(64),
    "email": text(254, nullable=True),
    "notes": text(MAX_NOTES_LENGTH, nullable=True),
    "is_active": boolean(),
    "timezone": text(64, nullable=True),
    "business_hours": any_json(),
    "closed_dates": any_json(),
    "after_hours": text(20),
    "after_hours_number": text(64, nullable=True),
    "failover_numbers": any_json(),
    "ring_mode": text(20),
    "ring_seconds": any_json(),
    "whisper": boolean(),
    "require_accept": boolean(),
    "greeting": text(MAX_GREETING_LENGTH, nullable=True),
    "notify_emails": any_json(),
    "notify_sms": any_json(),
    "notify_on": any_json(),
}


def client_or_404(client_id):
    return row_or_404(Client, client_id, "client")


@bp.get("/clients")
def list_clients():
    """Clients by name, paginated; optionally only active or inactive ones."""
    args = QueryArgs(PAGE_ARGS + ("is_active",))
    page, per_page = args.page()
    is_active = args.boolean("is_active")
    args.done()
    statement = sa.select(Client).order_by(Client.name, Client.id)
    if is_active is not None:
        statement = statement.where(Client.is_active.is_(is_active))
    rows, total = paginate(statement, page, per_page)
    return page_json([client_json(client) for (client,) in rows], page, per_page, total)


@bp.post("/clients")
def create_client_view():
    """Create a client."""
    data = check_body(json_body(), CLIENT_BODY, required=("name", "phone"))
    client = create_client(data, current_app.config["PHONE_REGION"], actor=acting_user())
    return client_json(client), 201, {"Location": url_for("api.get_client", client_id=client.id)}


@bp.get("/clients/<int:client_id>")
def get_client(client_id):
    """One client."""
    return client_json(client_or_404(client_id))


@bp.patch("/clients/<int:client_id>")
def update_client_view(client_id):
    """Change any of a client's fields; its numbers follow a new phone at once."""
    client = client_or_404(client_id)
    data = check_body(json_body(), CLIENT_BODY)
    return client_json(update_client(client, data, current_app.config["PHONE_REGION"], actor=acting_user()))


@bp.delete("/clients/<int:client_id>")
def delete_client_view(client_id):
    """Delete a client; its numbers become unassigned and their call history stays."""
    delete_client(client_or_404(client_id), actor=acting_user())
    return "", 204
