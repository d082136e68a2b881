"""The audit trail: every change staff or the system makes to routing, clients and accounts."""
import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from phoneapp.extensions import db
from phoneapp.models import AuditEvent, Client

TRAIL_LENGTH = 100

# How each action reads wherever it is shown: what happened, in sentence case. The trail is of one subject, so
# an action on it needs no noun ("Assigned"); one that names a part of it says which ("Forward target changed").
ACTION_LABELS = {
    "assign": "Assigned",
    "reassign": "Reassigned",
    "unassign": "Unassigned",
    "change_forward_target": "Forward target changed",
    "activate": "Activated",
    "deactivate": "Deactivated",
    "rename": "Renamed",
    "fix_webhook": "Webhooks set to phoneapp",
    "create_client": "Client created",
    "update_client": "Client updated",
    "delete_client": "Client deleted",
    "change_routing_rules": "Routing rules changed",
    "create_user": "User created",
    "change_role": "Role changed",
    "activate_user": "Activated",
    "deactivate_user": "Deactivated",
    "issue_token": "API token issued",
    "revoke_token": "API token revoked",
    "block": "Blocked",
    "unblock": "Unblocked",
    "change_timezone": "Time zone changed",
    "create_webhook_endpoint": "Webhook endpoint added",
    "update_webhook_endpoint": "Webhook endpoint changed",
    "delete_webhook_endpoint": "Webhook endpoint removed",
}


def action_label(action) -> str:
    """How `action` reads to staff; one without a label still reads in sentence case ("Some action")."""
    label = ACTION_LABELS.get(action)
    if label is None:
        words = str(action or "").replace("_", " ").strip()
        label = words[:1].upper() + words[1:]
    return label


def record_audit(action, subject, *, before=None, after=None, actor=None):
    """Add an AuditEvent for `subject` (a model row) to the session; `actor` None is the system. The caller commits."""
    event = AuditEvent(
        action=action,
        subject_type=type(subject).__name__,
        subject_id=subject.id,
        before=before,
        after=after,
        actor_id=actor.id if actor is not None else None,
        actor_label=actor.email if actor is not None else "system",
    )
    db.session.add(event)
    return event


def audit_trail(subject_type, subject_id, limit=TRAIL_LENGTH):
    """The latest changes to one row (a "PhoneAssignment", a "User"…), newest first, with who made them."""
    return db.session.scalars(
        sa.select(AuditEvent).options(joinedload(AuditEvent.actor))
        .where(AuditEvent.subject_type == subject_type, AuditEvent.subject_id == subject_id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit)
    ).all()


def client_names_in(events):
    """{client id: name} for the client ids an audit trail mentions, so it reads as names."""
    ids = set()
    for event in events:
        for side in (event.before or {}, event.after or {}):
            if isinstance(side.get("client_id"), int):
                ids.add(side["client_id"])
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(Client.id, Client.name).where(Client.id.in_(ids))).all())
