"""The status dot of many numbers at once (SPEC §4): the one place cards, pages and the API get it from."""
import sqlalchemy as sa
from flask import current_app

from phoneapp.domain.number_status import number_status
from phoneapp.extensions import db
from phoneapp.models import Alert, PhoneAssignment, utcnow
from phoneapp.services.call_tests import running_test_ids


def open_errors_by_number(ids):
    """{number id: message of its newest open error alert}, one query."""
    if not ids:
        return {}
    alerts = db.session.scalars(
        sa.select(Alert)
        .where(Alert.phone_assignment_id.in_(ids), Alert.resolved_at.is_(None), Alert.severity == "error")
        .order_by(Alert.last_seen_at.desc())
    ).all()
    errors = {}
    for alert in alerts:
        errors.setdefault(alert.phone_assignment_id, alert.message)
    return errors


def looping_targets(targets):
    """The forward targets among `targets` that are tracking numbers themselves, one query."""
    targets = {target for target in targets if target}
    if not targets:
        return set()
    return set(db.session.scalars(sa.select(PhoneAssignment.phone_number)
                                  .where(PhoneAssignment.phone_number.in_(targets))))


def number_statuses(numbers):
    """{number id: NumberStatus} in a fixed number of queries, whatever the count."""
    config = current_app.config
    ids = [number.id for number in numbers]
    errors = open_errors_by_number(ids)
    testing = running_test_ids(ids) if ids else set()
    looping = looping_targets(number.target_number for number in numbers)
    now = utcnow()
    return {
        number.id: number_status(number, now=now, verify_max_age=config["VERIFY_MAX_AGE"],
                                 open_error=errors.get(number.id), recent_failed_streak=number.failed_forward_streak,
                                 region=config["PHONE_REGION"], testing=number.id in testing,
                                 target_is_tracking=number.target_number in looping)
        for number in numbers
    }
