"""Database reads shared by the API views: one row by id, one page of many."""
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import MAX_ID
from phoneapp.services.errors import NotFound


def row_or_404(model, row_id, what, *options):
    """The row, or NotFound; ids beyond the column's range are a miss, not a database error."""
    row = None
    if 1 <= row_id <= MAX_ID:
        row = db.session.get(model, row_id, options=options or None)
    if row is None:
        raise NotFound(f"no {what} with id {row_id}")
    return row


def paginate(statement, page, per_page):
    """(rows of `statement` on `page`, total rows); the statement must already be ordered."""
    total = db.session.scalar(sa.select(sa.func.count()).select_from(statement.order_by(None).subquery()))
    rows = db.session.execute(statement.limit(per_page).offset((page - 1) * per_page)).unique().all()
    return rows, total
