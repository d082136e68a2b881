"""Every number's route: held in each web process's memory, read from the database, kept on disk for an outage."""
from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from phoneapp.domain.block_list import BlockEntry
from phoneapp.domain.call_plan import RULE_FIELDS
from phoneapp.domain.phones import display_phone
from phoneapp.domain.routing import RouteEntry, plain_fields, route_call, unroutable_reason
from phoneapp.extensions import db
from phoneapp.models import Alert, Client, PhoneAssignment, utcnow
from phoneapp.services.block_list import block_entries
from phoneapp.services.routing_changes import announce_routing_change

log = logging.getLogger(__name__)


def load_route(phone_number):
    """The RouteEntry of a called number, None when it is unknown.

    One plain row, not ORM objects: every inbound call asks this, and it is most of what answering costs.
    """
    target = sa.func.coalesce(PhoneAssignment.forward_to_number, Client.phone)
    tracked = aliased(PhoneAssignment)
    row = db.session.execute(
        sa.select(PhoneAssignment.id, PhoneAssignment.client_id, PhoneAssignment.is_active, target,
                  sa.exists().where(tracked.phone_number == target), PhoneAssignment.friendly_name)
        .outerjoin(Client, Client.id == PhoneAssignment.client_id)
        .where(PhoneAssignment.phone_number == phone_number).limit(1)
    ).first()
    if row is None:
        return None
    assignment_id, client_id, is_active, target, target_is_tracking, friendly_name = row
    return RouteEntry(phone_number=phone_number, assignment_id=assignment_id, client_id=client_id,
                      is_active=is_active, target=target, target_is_tracking=bool(target_is_tracking),
                      friendly_name=friendly_name or None)


def is_tracking_number(e164):
    """True when `e164` is one of the account's tracking numbers: forwarding a call there would loop back in."""
    return bool(db.session.scalar(sa.select(sa.exists().where(PhoneAssignment.phone_number == e164))))


# Raised when a call is answered with a message or sent to the default number; keyed by the called number.
UNROUTED_ALERT = "unrouted_call"
# The ids an older per-client voice URL can name: a cuid or other old id, or a client id.
PATH_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
LOOP_REFUSAL = "would forward to a tracking number: the call would come back in, and Twilio bills every leg"


def load_client_route(to_number, path_client_id):
    """The route of an older per-client voice URL: the client in the path, for a number phoneapp does not track."""
    client = client_in_path(path_client_id)
    if client is None:
        return None
    return client_route_entry(to_number, client.id, client.phone, client.is_active, is_tracking_number(client.phone))


def client_route_entry(to_number, client_id, phone, is_active, phone_is_tracking):
    return RouteEntry(phone_number=to_number, assignment_id=None, client_id=client_id, is_active=is_active,
                      target=phone, target_is_tracking=phone_is_tracking)


def client_in_path(path_client_id):
    """The client an older voice URL names: by the previous front-end's id (`numbers import`), else by its own."""
    text = str(path_client_id)
    # Only what an id can be is looked up: a NUL would be refused by PostgreSQL as if the database were down.
    if not PATH_CLIENT_ID.fullmatch(text):
        return None
    client = db.session.scalars(sa.select(Client).where(Client.legacy_id == text)).first()
    # No client has an id beyond the database's integer range; asking for one would be refused as an error.
    if client is None and text.isdigit() and 0 < int(text) < 2**31:
        client = db.session.get(Client, int(text))
    return client


def routing_cache():
    return current_app.extensions["phoneapp.routing_cache"]


def routing_kept_in_memory() -> bool:
    """True when this process's routing cache keeper holds the table current: calls are then planned without the
    database (SPEC §11)."""
    app = current_app._get_current_object()
    if not app.config["KEEP_ROUTING_CACHE"]:
        return False
    # Kept per process: a keeper a server's parent started did not come along with the fork.
    keeper = app.extensions.get("phoneapp.routing_cache_keeper", {}).get(os.getpid())
    return keeper is not None and keeper.current


def write_routing_cache():
    """Write every number's route, as the database holds it now, to the routing cache; returns the routes.

    Leaves alerts alone and commits nothing, so start-up and the routing cache keeper can call it at any time;
    a change calls refresh_routing_cache, which also ends the alerts it settles. The file is rewritten only when
    the routes differ from what it holds.
    """
    # Plain rows, not ORM objects: every web process reloads the whole table on every change, and objects for
    # tens of thousands of numbers cost it most of a second.
    numbers = db.session.execute(
        sa.select(PhoneAssignment.id, PhoneAssignment.phone_number, PhoneAssignment.client_id,
                  PhoneAssignment.is_active, PhoneAssignment.forward_to_number, PhoneAssignment.friendly_name,
                  Client.phone)
        .outerjoin(Client, Client.id == PhoneAssignment.client_id)).all()
    tracking_numbers = {number.phone_number for number in numbers}
    entries = []
    for assignment_id, phone_number, client_id, is_active, forward_to_number, friendly_name, client_phone in numbers:
        # As PhoneAssignment.target_number: the override, else the client's phone.
        target = forward_to_number or client_phone
        entries.append(RouteEntry(phone_number=phone_number, assignment_id=assignment_id, client_id=client_id,
                                  is_active=is_active, target=target, target_is_tracking=target in tracking_numbers,
                                  friendly_name=friendly_name or None))
    # Every client's rules and the block list too: a call answered from the cache follows them like any other.
    every_client = db.session.execute(
        sa.select(Client.id, Client.legacy_id, Client.phone, Client.is_active,
                  *(getattr(Client, field) for field in RULE_FIELDS)).order_by(Client.id)).all()
    rules = {row[0]: dict(zip(RULE_FIELDS, row[4:], strict=True)) for row in every_client}
    # Older per-client voice URLs name a client: its phone answers them during an outage too.
    clients = [list(row[:4]) for row in every_client]
    try:
        routing_cache().write(entries, rules=rules, blocked=block_entries(), clients=clients)
    except OSError:
        # The database stays the truth; a stale cache only matters during an outage.
        log.exception("could not write the routing cache")
    return entries


def refresh_routing_cache():
    """Rewrite the cache from the database, end the alerts of numbers that route again, and tell every other web
    process to reload its routing table (SPEC §11).

    Called after every change that affects routing (once it is committed), so a number that was assigned,
    switched on or given a target stops saying that its calls reach nobody the moment it can take them (SPEC §4).
    """
    entries = write_routing_cache()
    tracking_numbers = {entry.phone_number for entry in entries}
    resolve_unrouted_alerts(entry.phone_number for entry in entries if unroutable_reason(entry) is None)
    restate_unrouted_alerts([entry for entry in entries if unroutable_reason(entry) is not None], tracking_numbers)
    db.session.commit()
    announce_routing_change()


def unrouted_alert_text(to_number, decision):
    """(message, severity) of the alert for calls to `to_number` that `decision` cannot give to its client."""
    shown = display_phone(to_number, current_app.config["PHONE_REGION"])
    if decision.forwards:
        return f"Calls to {shown} go to the default number: {decision.reason}", "warning"
    return f"Calls to {shown} reach nobody, the caller hears a message: {decision.reason}", "error"


def restate_unrouted_alerts(entries, tracking_numbers):
    """Reword the open alerts of numbers still unroutable whose reason changed: a reason names a fact true now."""
    open_alerts = {alert.subject: alert for alert in db.session.scalars(sa.select(Alert).where(
        Alert.kind == UNROUTED_ALERT, Alert.resolved_at.is_(None),
        Alert.subject.in_([entry.phone_number for entry in entries])))} if entries else {}
    default = current_app.config["DEFAULT_FORWARD_NUMBER"]
    for entry in entries:
        alert = open_alerts.get(entry.phone_number)
        if alert is None:
            continue
        decision = route_call(entry, default, default_is_tracking=default in tracking_numbers)
        message, severity = unrouted_alert_text(entry.phone_number, decision)
        if (alert.message, alert.severity) != (message, severity):
            alert.message, alert.severity = message, severity


def resolve_unrouted_alerts(phone_numbers):
    """Close the "calls reach nobody / go to the default number" alerts of numbers that route to their client."""
    phone_numbers = list(phone_numbers)
    if phone_numbers:
        db.session.execute(
            sa.update(Alert)
            .where(Alert.kind == UNROUTED_ALERT, Alert.subject.in_(phone_numbers), Alert.resolved_at.is_(None))
            .values(resolved_at=utcnow()))


class RoutingCache:
    """A JSON snapshot of every number's route, every client's rules and the block list, replaced atomically,
    read without the database."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._loaded_mtime = None
        self._entries, self._rules, self._blocked, self._clients = {}, {}, [], {}

    def write(self, entries, rules=None, blocked=(), clients=()):
        """Replace the snapshot with `entries` (RouteEntry objects), `rules` ({client id: rule fields}),
        `blocked` (BlockEntry objects) and `clients` ([id, legacy id, phone, is_active] each); False, the file
        untouched, if it holds them already.

        Every web process rewrites it every ROUTING_CACHE_REFRESH_SECONDS: an unchanged file is not worth a
        disk write and an fsync each time.
        """
        snapshot = {"numbers": {entry.phone_number: plain_fields(entry) for entry in entries},
                    # JSON keys are text; kept so, the comparison with the file's holds.
                    "rules": {str(client_id): fields for client_id, fields in (rules or {}).items()},
                    "blocked": [[entry.number, entry.client_id] for entry in blocked],
                    "clients": [list(client) for client in clients]}
        with self._lock:
            held = self._read()
            if held is not None and held[1] == snapshot:
                self._remember(*held)
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp_name = tempfile.mkstemp(dir=self.path.parent, prefix=".routing-", suffix=".json")
            with os.fdopen(handle, "w") as temp:
                json.dump({"written_at": datetime.now(UTC).isoformat(), **snapshot}, temp)
                temp.flush()
                os.fsync(temp.fileno())
            # Readers in other processes see the old file or the new one, never half of one.
            os.replace(temp_name, self.path)
            # Two writes within one tick of the file system's clock leave the same mtime: this process's
            # lookups must not keep the first.
            self._remember(self.path.stat().st_mtime_ns, snapshot)
            return True

    def held(self) -> RoutingSnapshot:
        """The snapshot this process holds, read again first if another process replaced the file."""
        self._reload_if_changed()
        return RoutingSnapshot(self._entries, self._rules, self._blocked, self._clients)

    def lookup(self, phone_number):
        """The cached route for `phone_number`, or None if the number is not in the snapshot."""
        return self.held().lookup(phone_number)

    def rules_for(self, client_id):
        """The cached rule fields of a client, None when the snapshot has none."""
        return self.held().rules_for(client_id)

    def client_in_path(self, path_client_id):
        """(client id, phone, is_active) of the client an older voice URL names, as client_in_path finds it."""
        return self.held().client_in_path(path_client_id)

    def blocked(self):
        """The cached block list."""
        return self.held().blocked()

    def __len__(self):
        return len(self.held().entries)

    def _reload_if_changed(self):
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._entries, self._rules, self._blocked, self._clients, self._loaded_mtime = {}, {}, [], {}, None
            return
        with self._lock:
            if mtime == self._loaded_mtime:
                return
            held = self._read()
            if held is not None:
                self._remember(*held)

    def _read(self):
        """(mtime, snapshot) of the file as it is on disk now; None when there is none or it cannot be read."""
        try:
            # The mtime before the content: a file replaced in between is read again by the next lookup.
            mtime = self.path.stat().st_mtime_ns
            with open(self.path) as handle:
                held = json.load(handle)
            # A file written before rules, the block list and clients were cached holds numbers alone.
            return mtime, {"numbers": held["numbers"], "rules": held.get("rules", {}),
                           "blocked": held.get("blocked", []), "clients": held.get("clients", [])}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def _remember(self, mtime, snapshot):
        self._entries = {phone: RouteEntry(**fields) for phone, fields in snapshot["numbers"].items()}
        self._rules = snapshot["rules"]
        self._blocked = [BlockEntry(number, client_id) for number, client_id in snapshot["blocked"]]
        self._clients = {}
        for client_id, legacy_id, phone, is_active in snapshot["clients"]:
            self._clients[("id", str(client_id))] = (client_id, phone, is_active)
            if legacy_id:
                self._clients[("legacy", legacy_id)] = (client_id, phone, is_active)
        self._loaded_mtime = mtime


@dataclass(frozen=True)
class RoutingSnapshot:
    """One consistent view of the routing cache: a reload replaces its parts, it never changes them."""

    entries: dict
    rules: dict
    blocked_entries: list
    clients: dict

    def lookup(self, phone_number):
        return self.entries.get(phone_number)

    def rules_for(self, client_id):
        return self.rules.get(str(client_id)) if client_id is not None else None

    def client_in_path(self, path_client_id):
        text = str(path_client_id)
        return self.clients.get(("legacy", text)) or self.clients.get(("id", text))

    def blocked(self):
        return self.blocked_entries
