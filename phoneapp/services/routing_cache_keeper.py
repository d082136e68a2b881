"""The routing cache of every web process kept current: written as the app starts, then rewritten every few seconds.

A change writes the cache only in the instance folder of the process that made it, and /twilio/fallback answers
from the cache alone: a machine started after the last change, or with its own instance folder, would otherwise
send the calls of assigned numbers to nobody.
"""
from __future__ import annotations

import logging
import threading

from flask import current_app
from sqlalchemy import exc as sa_exc

from phoneapp.extensions import db
from phoneapp.services.database_outages import database_unreachable, rollback_quietly
from phoneapp.services.process_threads import started_for_this_process
from phoneapp.services.routing_table import write_routing_cache
from phoneapp.services.webhook_events import schema_is_current

log = logging.getLogger(__name__)



def write_routing_cache_at_start_up(app) -> bool:
    """Write the routing cache as the app starts; False when it was left for the keeper's next refresh.

    It is left when the database cannot be reached (the app starts all the same, and the cache it has, however
    old, is better than none during that outage) and when the database is not at the latest migration:
    `flask db upgrade` builds the app before the tables it would read exist.
    """
    with app.app_context():
        try:
            if not schema_is_current(app):
                log.info("routing cache not written at start-up: the database is not at the latest migration")
                return False
            write_routing_cache()
        except sa_exc.SQLAlchemyError as error:
            rollback_quietly()
            log.warning("routing cache not written at start-up, the database cannot be read (%s); it is written "
                        "once the database answers", type(error).__name__)
            return False
        finally:
            db.session.remove()
    return True


class RoutingCacheKeeper:
    """This process's keeper: rewrites the routing cache from the database every ROUTING_CACHE_REFRESH_SECONDS.

    A change made by another machine reaches this one's cache within that time. While the database is down the
    cache is left as it is, which is what the webhooks answer from meanwhile.
    """

    def __init__(self, app):
        self.app = app
        self.interval = app.config["ROUTING_CACHE_REFRESH_SECONDS"]
        self._stopped = threading.Event()
        self._failing = False
        self.thread = threading.Thread(target=self._run, name="routing-cache-keeper", daemon=True)

    def refresh(self) -> bool:
        """Rewrite the cache from the database once; False when the database could not be read."""
        with self.app.app_context():
            try:
                write_routing_cache()
            except sa_exc.SQLAlchemyError as error:
                rollback_quietly()
                # Said once per outage: the keeper asks again every few seconds until the database answers.
                if not self._failing:
                    log.warning("routing cache not refreshed, the database cannot be read (%s); the cache is "
                                "kept as it is until it can", type(error).__name__,
                                exc_info=not database_unreachable(error))
                self._failing = True
                return False
            finally:
                db.session.remove()
        if self._failing:
            log.info("routing cache refreshed from the database again")
            self._failing = False
        return True

    def stop(self):
        self._stopped.set()
        if self.thread.is_alive():
            self.thread.join()

    def _run(self):
        while not self._stopped.wait(self.interval):
            try:
                self.refresh()
            except Exception:
                log.exception("refreshing the routing cache failed; trying again")


def start_routing_cache_keeper(app) -> RoutingCacheKeeper:
    """This process's keeper, started on first use (threads do not survive a fork)."""
    return started_for_this_process(app, "phoneapp.routing_cache_keeper", RoutingCacheKeeper)


def keep_routing_cache():
    """Before each request of a server: a process forked after the app was built starts its own keeper."""
    start_routing_cache_keeper(current_app._get_current_object())
