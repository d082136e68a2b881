"""Dialect-aware statements that keep webhooks idempotent under concurrent retries."""
from sqlalchemy.dialects import postgresql, sqlite

from phoneapp.extensions import db


def insert_for(model):
    """An INSERT that supports ON CONFLICT on the running database (SQLite or PostgreSQL)."""
    dialect = db.session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model)
