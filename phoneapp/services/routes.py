"""Routing entries read from the database, and the on-disk cache of them."""
import logging

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from phoneapp.extensions import db
from phoneapp.models import Client, PhoneAssignment
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
    """The RouteEntry of a called number, None when it is unknown.

    One plain row, not ORM objects: every inbound call asks this, and it is most of what answering costs.
    """
    row = db.session.execute(
        sa.select(PhoneAssignment.id, PhoneAssignment.client_id, PhoneAssignment.is_active,
                  sa.func.coalesce(PhoneAssignment.forward_to_number, Client.phone))
        .outerjoin(Client, Client.id == PhoneAssignment.client_id)
        .where(PhoneAssignment.phone_number == phone_number).limit(1)
    ).first()
    if row is None:
        return None
    assignment_id, client_id, is_active, target = row
    return RouteEntry(phone_number=phone_number, assignment_id=assignment_id, client_id=client_id,
                      is_active=is_active, target=target)


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
