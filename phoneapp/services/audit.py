"""The audit trail: every change staff or the system makes to routing."""
from flask_login import current_user

from phoneapp.extensions import db
from phoneapp.models import AuditEvent


def actor_of(user=None):
    """The user to blame: the one given, else the logged-in one, else the system."""
    if user is not None:
        return user
    try:
        if current_user and current_user.is_authenticated:
            return current_user._get_current_object()
    except RuntimeError:  # outside a request: CLI, worker
        pass
    return None


def record_audit(action, subject, *, before=None, after=None, actor=None):
    """Add an AuditEvent for `subject` (a model row) to the session; the caller commits."""
    who = actor_of(actor)
    event = AuditEvent(
        action=action,
        subject_type=type(subject).__name__,
        subject_id=subject.id,
        before=before,
        after=after,
        actor_id=who.id if who is not None else None,
        actor_label=who.email if who is not None else "system",
    )
    db.session.add(event)
    return event
