"""The block list as routing reads it (SPEC §3a.1): every blocked caller, account-wide or for one client.

Changes live in block_list_changes: they rewrite the routing cache, which is built from what this module reads,
so keeping the two apart lets the routing table import this one without an import cycle.
"""
import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from phoneapp.domain.block_list import BlockEntry
from phoneapp.extensions import db
from phoneapp.models import BlockedNumber


def block_entries():
    """Every entry as a plain value, in one query, oldest first: what a call's plan is decided against."""
    rows = db.session.execute(sa.select(BlockedNumber.number, BlockedNumber.client_id).order_by(BlockedNumber.id))
    return [BlockEntry(number=number, client_id=client_id) for number, client_id in rows]


def block_entries_for(caller, client_id):
    """The entries that can turn `caller` away from `client_id`'s numbers: the caller's own number and the
    prefixes, for every client or this one. A call reads these, not the whole list."""
    if not caller:
        return []
    rows = db.session.execute(
        sa.select(BlockedNumber.number, BlockedNumber.client_id)
        .where(sa.or_(BlockedNumber.number == caller, BlockedNumber.number.like("%*")),
               sa.or_(BlockedNumber.client_id.is_(None), BlockedNumber.client_id == client_id))
        .order_by(BlockedNumber.id))
    return [BlockEntry(number=number, client_id=owner) for number, owner in rows]


def blocked_numbers_select(client_id=None, newest_first=False):
    """The entries with their client loaded, by id; only one client's own entries when `client_id` is given."""
    statement = (sa.select(BlockedNumber).options(joinedload(BlockedNumber.client))
                 .order_by(BlockedNumber.id.desc() if newest_first else BlockedNumber.id))
    if client_id is not None:
        statement = statement.where(BlockedNumber.client_id == client_id)
    return statement
