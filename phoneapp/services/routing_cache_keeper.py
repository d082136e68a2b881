"""The routing table of every web process, held in memory and kept current: loaded as the app starts, reloaded
within a second of a change made by any process on any machine, and every few seconds whatever was heard.

Each reload also rewrites the routing cache in this machine's instance folder, which /twilio/fallback and a
database outage answer from: a machine started after the last change, or with its own instance folder, would
otherwise send the calls of assigned numbers to nobody.
"""
from __future__ import annotations

import logging
import threading
import time

from flask import current_app
from sqlalchemy import exc as sa_exc

from phoneapp.extensions import db
from phoneapp.services.database_outages import database_unreachable, rollback_quietly
from phoneapp.services.process_threads import started_for_this_process
from phoneapp.services.routing_changes import change_marker_path, listeners_for, marker_identity
from phoneapp.services.routing_table import write_routing_cache
from phoneapp.services.webhook_events import schema_is_current

log = logging.getLogger(__name__)

# How often the SQLite change marker is looked at, and how long a reload waits for the rest of a burst of changes.
MARKER_CHECK_SECONDS = 0.2
DEBOUNCE_SECONDS = 0.05


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
    """This process's keeper: holds the routing table in memory, current within a second of a change.

    It reloads the table from the database (and rewrites the routing cache) when a change is announced: a notice
    from PostgreSQL or Redis, or the SQLite marker moved. It also reloads every ROUTING_CACHE_REFRESH_SECONDS
    whatever it heard. While the database is down the cache is left as it is, which is what the webhooks answer
    from meanwhile.
    """

    def __init__(self, app):
        self.app = app
        self.interval = app.config["ROUTING_CACHE_REFRESH_SECONDS"]
        self._stopped = threading.Event()
        self._changed = threading.Event()
        self._failing = False
        self._marker = change_marker_path(app.config["SQLALCHEMY_DATABASE_URI"])
        self._marker_seen = None
        # Every (re)connection of a listener counts: a load read before it may have missed a change.
        self._connections = 0
        self._loaded_for = -1
        self.listeners = listeners_for(app.config, self._changed.set, self._listener_connected, self._stopped)
        self.thread = threading.Thread(target=self._run, name="routing-cache-keeper", daemon=True)

    @property
    def current(self) -> bool:
        """True when the table in memory follows every change: loaded since the last (re)connection of a
        listener, and something to hear changes by."""
        if self._stopped.is_set() or self._loaded_for != self._connections:
            return False
        return self._marker is not None or any(listener.connected for listener in self.listeners)

    def refresh(self) -> bool:
        """Rewrite the cache from the database once; False when the database could not be read."""
        connections = self._connections
        with self.app.app_context():
            try:
                write_routing_cache()
            except sa_exc.SQLAlchemyError as error:
                rollback_quietly()
                self._loaded_for = -1
                # Said once per outage: the keeper asks again every few seconds until the database answers.
                if not self._failing:
                    log.warning("routing cache not refreshed, the database cannot be read (%s); the cache is "
                                "kept as it is until it can", type(error).__name__,
                                exc_info=not database_unreachable(error))
                self._failing = True
                return False
            finally:
                db.session.remove()
        self._loaded_for = connections
        if self._failing:
            log.info("routing cache refreshed from the database again")
            self._failing = False
        return True

    def stop(self):
        self._stopped.set()
        self._changed.set()
        for thread in [self.thread, *(listener.thread for listener in self.listeners)]:
            if thread.is_alive():
                thread.join()

    def _listener_connected(self):
        self._connections += 1
        self._changed.set()

    def _run(self):
        self._marker_seen = marker_identity(self._marker) if self._marker is not None else None
        for listener in self.listeners:
            listener.thread.start()
        # Loaded once now: a change may have come between start-up and the first notice heard.
        self._changed.set()
        due = time.monotonic() + self.interval
        while not self._stopped.is_set():
            wait = max(0.0, due - time.monotonic())
            if self._marker is not None:
                wait = min(wait, MARKER_CHECK_SECONDS)
            self._changed.wait(wait)
            if self._stopped.is_set():
                return
            if self._marker is not None:
                seen = marker_identity(self._marker)
                if seen != self._marker_seen:
                    self._marker_seen = seen
                    self._changed.set()
            if not self._changed.is_set() and time.monotonic() < due:
                continue
            if self._changed.is_set():
                # A change seldom comes alone (an import, a form saving several rows): one reload for the burst.
                self._stopped.wait(DEBOUNCE_SECONDS)
            self._changed.clear()
            try:
                self.refresh()
            except Exception:
                log.exception("refreshing the routing cache failed; trying again")
            due = time.monotonic() + self.interval


def start_routing_cache_keeper(app) -> RoutingCacheKeeper:
    """This process's keeper, started on first use (threads do not survive a fork)."""
    return started_for_this_process(app, "phoneapp.routing_cache_keeper", RoutingCacheKeeper)


def keep_routing_cache():
    """Before each request of a server: a process forked after the app was built starts its own keeper."""
    start_routing_cache_keeper(current_app._get_current_object())

