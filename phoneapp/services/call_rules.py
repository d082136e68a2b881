"""What the plan of a call needs beyond the number's route and the block list: its client's rules, as the
database keeps them."""
from __future__ import annotations

import sqlalchemy as sa

from phoneapp.domain.call_plan import RULE_FIELDS
from phoneapp.extensions import db
from phoneapp.models import Client, PhoneAssignment


def rule_fields(client):
    """The rule fields of a Client row, as the plan and the routing cache read them."""
    return {field: getattr(client, field) for field in RULE_FIELDS}


def load_rule_fields(client_id):
    """The client's rule fields, None when there is no such client."""
    if client_id is None:
        return None
    row = db.session.execute(sa.select(*(getattr(Client, field) for field in RULE_FIELDS))
                             .where(Client.id == client_id)).first()
    return dict(zip(RULE_FIELDS, row, strict=True)) if row is not None else None


def tracking_numbers_among(numbers):
    """Which of `numbers` are the account's tracking numbers: a call sent there would loop back in."""
    wanted = [number for number in numbers if number]
    if not wanted:
        return frozenset()
    return frozenset(db.session.scalars(
        sa.select(PhoneAssignment.phone_number).where(PhoneAssignment.phone_number.in_(wanted))))
