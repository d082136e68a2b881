"""Word that routing data changed, from the process that changed it to every web process on every machine.

PostgreSQL NOTIFY (every web process LISTENs), Redis pub/sub when REDIS_URL is set, and on SQLite a marker file
beside the database that every process on the machine looks at, whatever its INSTANCE_PATH. A notice carries
nothing: whoever hears it reloads the routing table from the database.
"""
from __future__ import annotations

import abc
import logging
import os
import tempfile
import threading
from pathlib import Path

import psycopg
import redis
import sqlalchemy as sa
from flask import current_app
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from phoneapp.extensions import db

log = logging.getLogger(__name__)

CHANNEL = "phoneapp_routing_changed"
# A listener whose connection dropped tries again this often; the periodic full reload covers the gap meanwhile.
RECONNECT_PAUSE = 1.0
# How long a listener waits for a notice before it looks whether it was stopped.
LISTEN_TICK = 1.0
REDIS_TIMEOUT = 2.0


def change_marker_path(database_url):
    """The marker beside a SQLite database file, None for another database (or one in memory)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).with_name(Path(url.database).name + "-routing-changed")


def marker_identity(path):
    """What a bump changes (the marker is replaced, so its inode), None while there is no marker."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def announce_routing_change():
    """Tell every web process that routing data changed; called once the change is committed.

    Never raises: the change stands, and a process that missed the notice reloads within its periodic refresh.
    """
    config = current_app.config
    url = config["SQLALCHEMY_DATABASE_URI"]
    if make_url(url).get_backend_name() == "postgresql":
        try:
            db.session.execute(sa.select(sa.func.pg_notify(CHANNEL, "")))
            db.session.commit()
        except sa_exc.SQLAlchemyError:
            db.session.rollback()
            log.warning("could not notify the other web processes of a routing change", exc_info=True)
    marker = change_marker_path(url)
    if marker is not None:
        _bump(marker)
    if config.get("REDIS_URL"):
        _publish(config["REDIS_URL"])


def _bump(marker):
    try:
        handle, temp_name = tempfile.mkstemp(dir=marker.parent, prefix=".routing-changed-")
        os.close(handle)
        # A new file each time: a new inode even when two changes fall within one tick of the file system's clock.
        os.replace(temp_name, marker)
    except OSError:
        log.warning("could not mark a routing change beside the SQLite database %s", marker, exc_info=True)


def _publish(redis_url):
    try:
        with redis.Redis.from_url(redis_url, socket_connect_timeout=REDIS_TIMEOUT,
                                  socket_timeout=REDIS_TIMEOUT) as connection:
            connection.publish(CHANNEL, "")
    except (redis.RedisError, OSError) as error:
        log.warning("could not publish a routing change on Redis (%s)", type(error).__name__)


class ChangeListener(abc.ABC):
    """One connection held open for notices, in a thread of its own, reconnected whenever it drops.

    `on_notice()` is called for every notice, `on_connected()` each time the connection is (re)made: a change may
    have been missed while it was down.
    """

    name = "listener"

    def __init__(self, url, on_notice, on_connected, stopped: threading.Event):
        self.url = url
        self.on_notice, self.on_connected, self.stopped = on_notice, on_connected, stopped
        self.connected = False
        self.thread = threading.Thread(target=self._run, name=f"routing-{self.name}", daemon=True)

    def _run(self):
        failing = False
        while not self.stopped.is_set():
            try:
                self.listen()
            except Exception as error:
                if not failing:
                    log.warning("routing change %s lost its connection (%s); reconnecting", self.name,
                                type(error).__name__)
                failing = True
            else:
                failing = False
            finally:
                self.connected = False
            self.stopped.wait(RECONNECT_PAUSE)

    def connected_now(self):
        self.connected = True
        self.on_connected()

    @abc.abstractmethod
    def listen(self):
        """Connect, call connected_now(), then call on_notice() for each notice until stopped or disconnected."""


class PostgresListener(ChangeListener):
    """LISTEN on a connection of its own, outside the pool: it is held for as long as the process runs."""

    name = "postgresql-listener"

    def listen(self):
        conninfo = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        # Keepalives: a peer gone without a word (a machine or network down) is noticed in seconds, not hours.
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5, keepalives=1, keepalives_idle=5,
                             keepalives_interval=2, keepalives_count=3) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self.connected_now()
            while not self.stopped.is_set():
                for _ in connection.notifies(timeout=LISTEN_TICK, stop_after=1):
                    self.on_notice()


class RedisListener(ChangeListener):
    """SUBSCRIBE on Redis, when REDIS_URL is set."""

    name = "redis-listener"

    def listen(self):
        connection = redis.Redis.from_url(self.url, socket_connect_timeout=REDIS_TIMEOUT, socket_keepalive=True,
                                          health_check_interval=10)
        try:
            subscription = connection.pubsub(ignore_subscribe_messages=True)
            subscription.subscribe(CHANNEL)
            # The subscription is confirmed by the server's first answer.
            subscription.get_message(timeout=REDIS_TIMEOUT)
            self.connected_now()
            while not self.stopped.is_set():
                if subscription.get_message(timeout=LISTEN_TICK) is not None:
                    self.on_notice()
        finally:
            connection.close()


def listeners_for(config, on_notice, on_connected, stopped):
    """The listeners a web process holds with this configuration (none on SQLite: the marker is looked at)."""
    listeners = []
    if make_url(config["SQLALCHEMY_DATABASE_URI"]).get_backend_name() == "postgresql":
        listeners.append(PostgresListener(config["SQLALCHEMY_DATABASE_URI"], on_notice, on_connected, stopped))
    if config.get("REDIS_URL"):
        listeners.append(RedisListener(config["REDIS_URL"], on_notice, on_connected, stopped))
    return listeners
