"""A database that cannot be reached: noticed once per outage, skipped for a moment, and answered around.

While it is down, calls are answered from the routing cache and webhooks wait in the webhook log.
"""
from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import exc as sa_exc

from phoneapp.extensions import db

log = logging.getLogger("phoneapp.services.webhook_events")

# The database is unreachable or went away mid-transaction: try again later, keep the events.
DATABASE_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
                        sa_exc.TimeoutError)


def database_outage():
    return current_app.extensions["phoneapp.database_outage"]


def database_unreachable(error) -> bool:
    return isinstance(error, DATABASE_UNAVAILABLE)


def rollback_quietly():
    try:
        db.session.rollback()
    except sa_exc.SQLAlchemyError:
        # The connection is already gone; the session is reset either way.
        db.session.close()


def note_database_failure(error, doing):
    """Skip the database for a moment if it is unreachable; say so once per outage, not once per call."""
    outage = database_outage()
    if database_unreachable(error):
        if not outage.database_skipped():
            log.error("database unreachable while %s (%s); answering from the routing cache, webhooks wait in "
                      "the webhook log", doing, type(error).__name__)
        outage.note_failure()
    else:
        log.error("database refused a write while %s", doing, exc_info=error)
