"""Routing entries read from the database, and the on-disk cache of them."""
import logging

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment
from phoneapp.routing import RouteEntry

log = logging.getLogger(__name__)


def route_entry(number):
    """The routing view of one PhoneAssignment."""
    return RouteEntry(
        phone_number=number.phone_number,
        assignment_id=number.id,
        client_id=number.client_id,
        is_active=number.is_active,
        target=number.target_number,
    )


def load_route(phone_number):
    """(RouteEntry, PhoneAssignment) for a called number, both None when it is unknown."""
    number = db.session.scalars(
        sa.select(PhoneAssignment).options(joinedload(PhoneAssignment.client))
        .where(PhoneAssignment.phone_number == phone_number)
    ).first()
    if number is None:
        return None, None
    return route_entry(number), number


def routing_cache():
    return current_app.extensions["phoneapp.routing_cache"]


def refresh_routing_cache():
    """Rewrite the cache from the database; called after every change that affects routing."""
    numbers = db.session.scalars(sa.select(PhoneAssignment).options(joinedload(PhoneAssignment.client))).all()
    try:
        routing_cache().write(route_entry(number) for number in numbers)
    except OSError:
        # The database already holds the change; a stale cache only matters during an outage.
        log.exception("could not write the routing cache")
