"""Clients: the agency's customers whose phones receive forwarded calls."""
import sqlalchemy as sa

from phoneapp.domain.phones import InvalidPhoneNumber, parse_phone
from phoneapp.extensions import db
from phoneapp.models import Client, PhoneAssignment
from phoneapp.services.audit import record_audit
from phoneapp.services.client_rules import (
    NOTICE_FIELDS,
    RULE_FIELDS,
    audited_rules,
    clean_rule_fields,
    notice_fields,
    record_rule_change,
)
from phoneapp.services.errors import ValidationError
from phoneapp.services.routing_table import LOOP_REFUSAL, is_tracking_number, refresh_routing_cache

CLIENT_FIELDS = ("name", "phone", "email", "notes", "is_active")
# Notes are a few paragraphs staff keep about a client; the client textarea's maxlength says the same.
MAX_NOTES_LENGTH = 5000


def client_fields(client):
    return {field: getattr(client, field) for field in CLIENT_FIELDS}


def clean_client_fields(data, region, *, partial, current=None):
    """Validated client fields and routing rules from `data`; raises ValidationError naming every bad field.

    `current`: the client being changed, whose rules stand for those `data` leaves out.
    """
    clean, errors = clean_rule_fields(data, region, current)
    unknown = set(data) - set(CLIENT_FIELDS) - set(RULE_FIELDS) - set(NOTICE_FIELDS)
    for field in sorted(unknown):
        errors[field] = "unknown field"
    if "name" in data or not partial:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            errors["name"] = "a name is required"
        elif len(name.strip()) > 200:
            errors["name"] = "at most 200 characters"
        else:
            clean["name"] = name.strip()
    if "phone" in data or not partial:
        try:
            clean["phone"] = parse_phone(data.get("phone"), region)
        except InvalidPhoneNumber as exc:
            errors["phone"] = exc.reason
        else:
            if is_tracking_number(clean["phone"]):
                errors["phone"] = LOOP_REFUSAL
    if "email" in data:
        email = data.get("email")
        if email in (None, ""):
            clean["email"] = None
        elif not isinstance(email, str) or "@" not in email or len(email) > 254 or " " in email.strip():
            errors["email"] = "not an e-mail address"
        else:
            clean["email"] = email.strip()
    if "notes" in data:
        notes = data.get("notes")
        if notes is not None and not isinstance(notes, str):
            errors["notes"] = "must be text"
        elif len((notes or "").strip()) > MAX_NOTES_LENGTH:
            errors["notes"] = f"at most {MAX_NOTES_LENGTH} characters"
        else:
            clean["notes"] = (notes or "").strip()
    if "is_active" in data:
        if not isinstance(data["is_active"], bool):
            errors["is_active"] = "must be true or false"
        else:
            clean["is_active"] = data["is_active"]
    if errors:
        raise ValidationError(errors)
    return clean


def create_client(data, region, actor=None):
    """Create a client from raw input."""
    fields = clean_client_fields(data, region, partial=False)
    client = Client(**fields)
    db.session.add(client)
    db.session.flush()
    settings = {**audited_rules(client), **notice_fields(client)}
    rules = {key: value for key, value in settings.items() if key in fields}
    record_audit("create_client", client, after={**client_fields(client), **rules}, actor=actor)
    db.session.commit()
    # An older per-client voice URL may name it from now on.
    refresh_routing_cache()
    return client


def update_client(client, data, region, actor=None):
    """Change some of a client's fields and rules; its numbers follow a new phone or rule at once.

    The rules are audited apart from the other fields, so the trail says "Routing rules changed" with only them;
    who hears of the client's calls is part of the client's own fields.
    """
    fields = clean_client_fields(data, region, partial=True, current=client)
    before, rules_before = audited_client(client), audited_rules(client)
    for name, value in fields.items():
        setattr(client, name, value)
    after = audited_client(client)
    if after != before:
        record_audit("update_client", client, before=before, after=after, actor=actor)
    rules_changed = record_rule_change(client, rules_before, actor)
    db.session.commit()
    if before["phone"] != after["phone"] or before["is_active"] != after["is_active"] or rules_changed:
        refresh_routing_cache()
    return client


def audited_client(client):
    return {**client_fields(client), **notice_fields(client)}


def update_client_notices(client, data, region, actor=None):
    """Change only who hears of the client's calls (the notices form): any other field in `data` is refused."""
    unknown = {field: "unknown field" for field in data if field not in NOTICE_FIELDS}
    if unknown:
        raise ValidationError(unknown)
    return update_client(client, data, region, actor=actor)


def update_client_rules(client, data, region, actor=None):
    """Change only a client's routing rules (the rules form): any other field in `data` is refused."""
    unknown = {field: "unknown field" for field in data if field not in RULE_FIELDS}
    if unknown:
        raise ValidationError(unknown)
    return update_client(client, data, region, actor=actor)


def delete_client(client, actor=None):
    """Remove a client; its numbers become unassigned (Pending) and their call history stays."""
    numbers = db.session.scalars(sa.select(PhoneAssignment).where(PhoneAssignment.client_id == client.id)).all()
    for number in numbers:
        record_audit("unassign", number, before={"client_id": client.id}, after={"client_id": None}, actor=actor)
        number.client_id = None
    record_audit("delete_client", client, before=client_fields(client), actor=actor)
    db.session.delete(client)
    db.session.commit()
    refresh_routing_cache()


def namesakes(client):
    """How many other clients have this client's name (case and spacing aside): likely the same client twice."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(Client).where(
        sa.func.lower(Client.name) == client.name.strip().lower(), Client.id != client.id))


def clients_with_counts():
    """(client, how many tracking numbers it has) for every client by name, in one grouped query."""
    counts = (sa.select(PhoneAssignment.client_id, sa.func.count().label("numbers"))
              .group_by(PhoneAssignment.client_id).subquery())
    return db.session.execute(
        sa.select(Client, sa.func.coalesce(counts.c.numbers, 0))
        .outerjoin(counts, counts.c.client_id == Client.id)
        .order_by(Client.name)
    ).all()
