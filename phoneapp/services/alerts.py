"""Alerts: one open row per cause, repeats counted rather than duplicated."""
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import Alert, utcnow
from phoneapp.services.db_utils import insert_for


def raise_alert(kind, subject, message, *, severity="warning", phone_assignment_id=None):
    """Open an alert for (kind, subject), or count one more occurrence of the open one."""
    now = utcnow()
    statement = insert_for(Alert).values(
        kind=kind, subject=subject, message=message, severity=severity,
        phone_assignment_id=phone_assignment_id, occurrences=1, created_at=now, last_seen_at=now,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["kind", "subject"],
        index_where=sa.text("resolved_at IS NULL"),
        set_={"occurrences": Alert.occurrences + 1, "last_seen_at": now, "message": message},
    )
    db.session.execute(statement)


def resolve_alerts(kind, subject):
    """Close the open alert for (kind, subject), if there is one."""
    db.session.execute(
        sa.update(Alert)
        .where(Alert.kind == kind, Alert.subject == subject, Alert.resolved_at.is_(None))
        .values(resolved_at=utcnow())
    )


def resolve_alerts_of(kind, subjects):
    """Close the open alerts of `kind` for each of `subjects`, in one statement."""
    if subjects:
        db.session.execute(
            sa.update(Alert)
            .where(Alert.kind == kind, Alert.subject.in_(subjects), Alert.resolved_at.is_(None))
            .values(resolved_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def open_alerts():
    """Open alerts, newest activity first."""
    return db.session.scalars(
        sa.select(Alert).where(Alert.resolved_at.is_(None)).order_by(Alert.last_seen_at.desc())
    ).all()


def open_alert_count():
    return db.session.scalar(sa.select(sa.func.count()).select_from(Alert).where(Alert.resolved_at.is_(None)))


def acknowledge_alert(alert, user):
    """Note that `user` has seen the alert; the first acknowledgement stands, a second click changes nothing."""
    db.session.execute(
        sa.update(Alert).where(Alert.id == alert.id, Alert.acknowledged_at.is_(None))
        .values(acknowledged_at=utcnow(), acknowledged_by_id=user.id)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    db.session.refresh(alert)
    return alert
