"""`numbers import`: the previous front-end's clients and numbers (its localStorage, exported as JSON), planned
row by row, then applied in one transaction. Running it again changes nothing."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from phoneapp.domain.phones import InvalidPhoneNumber, parse_phone
from phoneapp.extensions import db
from phoneapp.models import Client, PhoneAssignment
from phoneapp.services.assignments import TWILIO_NUMBER_SID, _audit_routing_change, routing_fields
from phoneapp.services.audit import record_audit
from phoneapp.services.clients import clean_client_fields, client_fields
from phoneapp.services.errors import ValidationError
from phoneapp.services.routing_table import LOOP_REFUSAL, refresh_routing_cache

ACTIONS = ("create", "change", "unchanged", "refuse")
KINDS = ("client", "number")
# Client.legacy_id's column width; an id longer than that cannot have been a cuid.
MAX_OLD_ID = 64


class ImportFileError(ValueError):
    """The file as a whole cannot be read as an export: nothing in it is planned."""


class ImportConflict(RuntimeError):
    """Someone else changed the same clients or numbers while the import was applied; nothing was saved."""


@dataclass
class PlannedRow:
    """What the import does with one row of the file, and why."""

    kind: str
    row: int
    key: str
    action: str
    reason: str
    # The values to write, and the row they go into (None: a new one). Not part of what is shown or kept.
    values: dict = field(default_factory=dict, repr=False)
    existing: object = field(default=None, repr=False)
    client_key: str | None = field(default=None, repr=False)

    def shown(self):
        return {name: value for name, value in asdict(self).items()
                if name in ("kind", "row", "key", "action", "reason")}


@dataclass
class ImportPlan:
    rows: list = field(default_factory=list)
    applied: bool = False

    def counts(self):
        """{kind: {action: how many}}, every kind and action present."""
        counts = {kind: dict.fromkeys(ACTIONS, 0) for kind in KINDS}
        for row in self.rows:
            counts[row.kind][row.action] += 1
        return counts

    def changes_anything(self):
        return any(row.action in ("create", "change") for row in self.rows)

    def shown(self):
        return {"applied": self.applied, "counts": self.counts(), "rows": [row.shown() for row in self.rows]}


def read_import_file(content) -> tuple[list, list]:
    """(clients, assignments) from the export's text or bytes; ImportFileError says why it is not one."""
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImportFileError("the file is not UTF-8 text") from None
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise ImportFileError(f"the file is not valid JSON: {exc}") from None
    if isinstance(data, list):
        return [], data
    if not isinstance(data, dict) or not {"clients", "phoneAssignments"} & set(data):
        raise ImportFileError('expected an object with "clients" and "phoneAssignments", '
                              "or an array of phone assignments")
    lists = []
    for name in ("clients", "phoneAssignments"):
        value = data.get(name)
        if value is not None and not isinstance(value, list):
            raise ImportFileError(f'"{name}" must be an array')
        lists.append(value or [])
    return lists[0], lists[1]


def old_id(value):
    """An id of the previous front-end as text (a cuid, or a number), None when there is none."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    return text if 0 < len(text) <= MAX_OLD_ID else None


def plan_import(clients, numbers, region) -> ImportPlan:
    """What applying the file would create, change and refuse, and why. Writes nothing."""
    plan = ImportPlan()
    tracked = db.session.scalars(sa.select(PhoneAssignment)).all()
    known_clients = db.session.scalars(sa.select(Client)).all()
    file_phones = {_phone_or_none(raw.get("phoneNumber"), region) for raw in numbers if isinstance(raw, dict)}
    tracking = {number.phone_number for number in tracked} | (file_phones - {None})
    client_rows = _plan_clients(plan, clients, known_clients, tracking, region)
    _plan_numbers(plan, numbers, tracked, known_clients, client_rows, tracking, region)
    return plan


def _phone_or_none(value, region):
    try:
        return parse_phone(value, region)
    except InvalidPhoneNumber:
        return None


def _plan_clients(plan, clients, known_clients, tracking, region):
    """Plan each client row; returns {old id: its PlannedRow}."""
    by_legacy = {client.legacy_id: client for client in known_clients if client.legacy_id}
    unlinked = {(client.phone, client.name.strip().casefold()): client
                for client in known_clients if not client.legacy_id}
    rows = {}
    for index, raw in enumerate(clients, 1):
        key = old_id(raw.get("id")) if isinstance(raw, dict) else None
        row = PlannedRow("client", index, key or "", "refuse", "")
        plan.rows.append(row)
        if not isinstance(raw, dict):
            row.reason = "not an object"
            continue
        if key is None:
            row.reason = f"id: missing, or not text of at most {MAX_OLD_ID} characters"
            continue
        if key in rows:
            row.reason = f"id: {key} is also client row {rows[key].row}, which stands"
            continue
        rows[key] = row
        try:
            values = clean_client_fields({"name": raw.get("name"), "phone": raw.get("phone"),
                                          "email": raw.get("email")}, region, partial=False)
        except ValidationError as exc:
            row.reason = _reasons(exc.details)
            continue
        if values["phone"] in tracking:
            row.reason = f"phone: {LOOP_REFUSAL}"
            continue
        # A client staff entered by hand before the import is the same client when name and phone agree.
        existing = by_legacy.get(key) or unlinked.pop((values["phone"], values["name"].casefold()), None)
        row.values, row.existing = values, existing
        if existing is None:
            row.action, row.reason = "create", f"new client {values['name']}, {values['phone']}"
            continue
        changes = _client_changes(existing, values, key)
        row.action = "change" if changes else "unchanged"
        row.reason = "; ".join(changes) if changes else f"already imported as client {existing.id}"
    return rows


def _client_changes(client, values, key):
    changes = [f"{name}: {getattr(client, name) or 'none'} → {value}" for name, value in values.items()
               # An e-mail the file lacks is not a reason to drop the one staff keep.
               if value is not None and getattr(client, name) != value]
    if client.legacy_id != key:
        changes.insert(0, f"client {client.id} ({client.name}, same phone) takes old id {key}")
    return changes


def _plan_numbers(plan, numbers, tracked, known_clients, client_rows, tracking, region):
    by_sid = {number.twilio_sid: number for number in tracked}
    by_phone = {number.phone_number: number for number in tracked}
    by_legacy = {client.legacy_id: client for client in known_clients if client.legacy_id}
    seen_sids, seen_phones = {}, {}
    for index, raw in enumerate(numbers, 1):
        sid = raw.get("twilioSid") if isinstance(raw, dict) else None
        row = PlannedRow("number", index, sid if isinstance(sid, str) else "", "refuse", "")
        plan.rows.append(row)
        if not isinstance(raw, dict):
            row.reason = "not an object"
            continue
        errors, values = {}, {}
        if not isinstance(sid, str) or not TWILIO_NUMBER_SID.match(sid):
            errors["twilioSid"] = "missing, or not PN followed by 32 hex digits"
        elif sid in seen_sids:
            errors["twilioSid"] = f"also number row {seen_sids[sid]}, which stands"
        try:
            phone = parse_phone(raw.get("phoneNumber"), region)
        except InvalidPhoneNumber as exc:
            errors["phoneNumber"], phone = exc.reason, None
        else:
            if phone in seen_phones:
                errors["phoneNumber"] = f"also number row {seen_phones[phone]}, which stands"
        client, client_error = _client_named(raw.get("clientId"), client_rows, by_legacy)
        if client_error:
            errors["clientId"] = client_error
        values["forward_to_number"] = _forward_to(raw.get("forwardToNumber"), tracking, region, errors)
        values["is_active"] = raw.get("isActive", True)
        if not isinstance(values["is_active"], bool):
            errors["isActive"] = "must be true or false"
        existing = by_sid.get(sid) if isinstance(sid, str) else None
        if phone and "twilioSid" not in errors and "phoneNumber" not in errors:
            if existing is not None and existing.phone_number != phone:
                errors["phoneNumber"] = f"phoneapp has {existing.phone_number} under {sid}"
            elif existing is None and phone in by_phone:
                errors["phoneNumber"] = f"already tracked under {by_phone[phone].twilio_sid}"
        if "twilioSid" not in errors:
            seen_sids[sid] = index
        if phone and "phoneNumber" not in errors:
            seen_phones[phone] = index
        if errors:
            row.reason = _reasons(errors)
            continue
        row.values, row.existing, row.client_key = {"phone_number": phone, **values}, existing, old_id(
            raw.get("clientId"))
        _describe_number(row, client)


def _client_named(value, client_rows, by_legacy):
    """(the client an assignment names: a PlannedRow of the file or a Client imported before, why it names none)."""
    key = old_id(value)
    if key is None:
        return None, "missing: every assignment names its client's old id"
    planned = client_rows.get(key)
    if planned is not None:
        if planned.action == "refuse":
            return None, f"client {key} (client row {planned.row}) is refused"
        return planned, None
    if key in by_legacy:
        return by_legacy[key], None
    return None, f"no client {key} in the file or imported before"


def _forward_to(value, tracking, region, errors):
    if value in (None, ""):
        return None
    try:
        number = parse_phone(value, region)
    except InvalidPhoneNumber as exc:
        errors["forwardToNumber"] = exc.reason
        return None
    if number in tracking:
        errors["forwardToNumber"] = LOOP_REFUSAL
    return number


def _describe_number(row, client):
    """Set the row's action and reason: a new number, or how a tracked one changes."""
    planned_client = client if isinstance(client, PlannedRow) else None
    client_row = planned_client.existing if planned_client is not None else client
    name = client_row.name if client_row is not None else planned_client.values["name"]
    forward = row.values["forward_to_number"] or "the client's phone"
    number = row.existing
    if number is None:
        row.action = "create"
        row.reason = (f"new number {row.values['phone_number']} for {name}, forwarding to {forward}"
                      f"{'' if row.values['is_active'] else ', inactive'}; Twilio is checked by the next verify")
        return
    changes = []
    if client_row is None or number.client_id != client_row.id:
        changes.append(f"assigned to {name}")
    if number.forward_to_number != row.values["forward_to_number"]:
        changes.append(f"forwards to {forward}")
    if number.is_active != row.values["is_active"]:
        changes.append("switched on" if row.values["is_active"] else "switched off")
    row.action = "change" if changes else "unchanged"
    row.reason = "; ".join(changes) if changes else f"already {name}'s number"


def _reasons(errors):
    return "; ".join(f"{name}: {reason}" for name, reason in errors.items())


def apply_import(clients, numbers, region, actor=None) -> ImportPlan:
    """Plan the file afresh and write what it creates and changes in one transaction, audited."""
    plan = plan_import(clients, numbers, region)
    if not plan.changes_anything():
        db.session.rollback()
        plan.applied = True
        return plan
    try:
        saved = {row.key: _save_client(row, actor) for row in plan.rows
                 if row.kind == "client" and row.action != "refuse"}
        for row in plan.rows:
            if row.kind == "number" and row.action in ("create", "change"):
                _save_number(row, saved.get(row.client_key) or _imported_client(row.client_key), actor)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ImportConflict("some of these clients or numbers were changed while the import ran; "
                             "nothing was saved, so it can simply be run again") from None
    refresh_routing_cache()
    plan.applied = True
    return plan


def _imported_client(key):
    return db.session.scalars(sa.select(Client).where(Client.legacy_id == key)).one()


def _save_client(row, actor):
    client = row.existing
    if row.action == "unchanged":
        return client
    if client is None:
        client = Client(**row.values, legacy_id=row.key)
        db.session.add(client)
        db.session.flush()
        record_audit("create_client", client, after={**client_fields(client), "legacy_id": row.key}, actor=actor)
        return client
    before = {**client_fields(client), "legacy_id": client.legacy_id}
    for name, value in row.values.items():
        if value is not None and getattr(client, name) != value:
            setattr(client, name, value)
    client.legacy_id = row.key
    db.session.flush()
    record_audit("update_client", client, before=before, after={**client_fields(client), "legacy_id": row.key},
                 actor=actor)
    return client


def _save_number(row, client, actor):
    number = row.existing
    if number is None:
        number = PhoneAssignment(twilio_sid=row.key, phone_number=row.values["phone_number"], friendly_name="",
                                 config_state="unverified", is_active=True)
        db.session.add(number)
        db.session.flush()
    before = routing_fields(number)
    wanted = {"client_id": client.id, "forward_to_number": row.values["forward_to_number"],
              "is_active": row.values["is_active"]}
    for name, value in wanted.items():
        if getattr(number, name) != value:
            setattr(number, name, value)
    db.session.flush()
    _audit_routing_change(number, before, actor)
