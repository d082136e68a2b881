"""Rows that workers take turns on (notices to send): each is taken by one worker at a time, and by another once
the first one's claim has run out (its worker died in the middle)."""
from __future__ import annotations

import sqlalchemy as sa

from phoneapp.extensions import db


def claimable(claimed_at, now, timeout):
    """Not claimed, or claimed by a worker longer ago than `timeout`."""
    return sa.or_(claimed_at.is_(None), claimed_at < now - timeout)


def claim_each(model, claimed_at, due, *, now, timeout, limit):
    """Yield the ids of up to `limit` rows of `model` that are `due`, each once this worker has claimed it.

    Each claim is committed before its id is yielded, so the claim is visible before anything is sent; a row
    another worker claimed first is skipped.
    """
    ids = db.session.scalars(
        sa.select(model.id).where(due, claimable(claimed_at, now, timeout)).order_by(model.id).limit(limit)).all()
    db.session.commit()
    for row_id in ids:
        claimed = db.session.execute(
            sa.update(model).where(model.id == row_id, due, claimable(claimed_at, now, timeout))
            .values({claimed_at: now}).execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        if claimed == 1:
            yield row_id
