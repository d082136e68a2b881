"""Adding callers to the block list and taking them off, audited; each change rewrites the routing cache."""
import sqlalchemy as sa

from phoneapp.domain.block_list import parse_block_pattern
from phoneapp.extensions import db
from phoneapp.models import MAX_ID, BlockedNumber, Client
from phoneapp.services.audit import record_audit
from phoneapp.services.errors import NotFound, ValidationError
from phoneapp.services.routing_table import refresh_routing_cache

# The column's width; the page's input says the same.
MAX_REASON_LENGTH = 200


def blocked_number_fields(entry):
    return {"number": entry.number, "client_id": entry.client_id, "reason": entry.reason}


def _clean_client_id(client_id, errors):
    if client_id is None:
        return None
    if isinstance(client_id, bool) or not isinstance(client_id, int) or not 1 <= client_id <= MAX_ID:
        errors["client_id"] = "must be a client's id, or null for every client"
        return None
    if db.session.get(Client, client_id) is None:
        errors["client_id"] = f"no client with id {client_id}"
        return None
    return client_id


def _clean_reason(reason, errors):
    if reason is None:
        return ""
    if not isinstance(reason, str):
        errors["reason"] = "must be text"
        return ""
    if len(reason.strip()) > MAX_REASON_LENGTH:
        errors["reason"] = f"at most {MAX_REASON_LENGTH} characters"
    return reason.strip()


def _already_blocked(pattern, client_id):
    same_scope = (BlockedNumber.client_id.is_(None) if client_id is None
                  else BlockedNumber.client_id == client_id)
    return db.session.scalar(sa.select(sa.exists().where(BlockedNumber.number == pattern, same_scope)))


def add_blocked_number(number, client_id=None, reason="", actor=None, region="US"):
    """Block `number` (E.164, national format read in `region`, or a prefix ending in "*") for one client or all.

    Raises ValidationError naming each bad field: the number or prefix, an unknown client, a reason too long, or
    an entry that is already on the list for the same clients.
    """
    errors = {}
    pattern, why_not = parse_block_pattern(number, region)
    if why_not:
        errors["number"] = why_not
    client_id = _clean_client_id(client_id, errors)
    reason = _clean_reason(reason, errors)
    if pattern and "client_id" not in errors and _already_blocked(pattern, client_id):
        scope = "every client" if client_id is None else "this client"
        errors["number"] = f"{pattern} is already blocked for {scope}"
    if errors:
        raise ValidationError(errors)
    entry = BlockedNumber(number=pattern, client_id=client_id, reason=reason,
                          created_by_id=actor.id if actor is not None else None,
                          created_by_label=actor.email if actor is not None else "system")
    db.session.add(entry)
    db.session.flush()
    record_audit("block", entry, after=blocked_number_fields(entry), actor=actor)
    db.session.commit()
    refresh_routing_cache()
    return entry


def delete_blocked_number(entry_id, actor=None):
    """Take an entry off the block list: its callers get through again. NotFound when there is no such entry."""
    entry = db.session.get(BlockedNumber, entry_id) if 1 <= entry_id <= MAX_ID else None
    if entry is None:
        raise NotFound(f"no blocked number with id {entry_id}")
    record_audit("unblock", entry, before=blocked_number_fields(entry), actor=actor)
    db.session.delete(entry)
    db.session.commit()
    refresh_routing_cache()
