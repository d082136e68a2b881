"""Everything the plan of one inbound call is made from: the number's route, its client's rules, the block list.

From the routing table in memory when this process keeps it current (SPEC §11): no database round trip. Else
from the database, and from the routing cache while the database is down; always from the cache for the fallback URL.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from phoneapp.domain.call_plan import CallPlan, client_rules, plan_call
from phoneapp.domain.routing import RouteEntry, unroutable_reason
from phoneapp.services.block_list import block_entries_for
from phoneapp.services.call_rules import load_rule_fields, tracking_numbers_among
from phoneapp.services.database_outages import database_outage, note_database_failure, rollback_quietly
from phoneapp.services.routing_table import (
    client_route_entry,
    load_client_route,
    load_route,
    routing_cache,
    routing_kept_in_memory,
)


@dataclass(frozen=True)
class CallContext:
    """What the plan of one call is made from, and whether it came from the routing cache."""

    entry: RouteEntry | None
    rule_fields: dict | None
    blocked: list
    tracking_targets: frozenset
    default_loops: bool
    from_cache: bool


def call_context(to_number, caller, path_client_id=None, *, from_cache_only=False):
    """From memory when it is kept current, else from the database, or from the routing cache while it is down (and
    always for the fallback URL)."""
    if not from_cache_only and not routing_kept_in_memory() and not database_outage().database_skipped():
        try:
            return _database_context(to_number, caller, path_client_id)
        except SQLAlchemyError as error:
            rollback_quietly()
            note_database_failure(error, f"routing a call to {to_number}")
    # One look at the file per call: another process of this machine that reloaded first has rewritten it, and its
    # table is taken from there at once, before this process's own reload ends.
    cache = routing_cache().held()
    entry = cache.lookup(to_number)
    if entry is None and path_client_id is not None:
        entry = _cached_client_route(cache, to_number, path_client_id)
    fields = cache.rules_for(entry.client_id) if entry is not None else None
    default = current_app.config["DEFAULT_FORWARD_NUMBER"]
    default_loops = bool(default) and cache.lookup(default) is not None
    # Marked as from the cache: a number or client deleted since it was loaded is left off the call's record.
    return CallContext(entry, fields, cache.blocked(), _cached_tracking(cache, fields), default_loops, True)


def _database_context(to_number, caller, path_client_id):
    entry = load_route(to_number)
    if entry is None and path_client_id is not None:
        entry = load_client_route(to_number, path_client_id)
    fields = load_rule_fields(entry.client_id) if entry is not None else None
    default = current_app.config["DEFAULT_FORWARD_NUMBER"]
    # Only a number a call may be sent to is asked about: the rules' targets, the default when it is needed.
    asked = [fields.get("after_hours_number") if fields else None, *(fields.get("failover_numbers") or ()
                                                                     if fields else ()),
             default if default and unroutable_reason(entry) is not None else None]
    tracking = tracking_numbers_among(asked)
    blocked = block_entries_for(caller, entry.client_id if entry is not None else None)
    return CallContext(entry, fields, blocked, tracking, default in tracking, False)


def _cached_client_route(cache, to_number, path_client_id):
    client = cache.client_in_path(path_client_id)
    if client is None:
        return None
    client_id, phone, is_active = client
    return client_route_entry(to_number, client_id, phone, is_active, cache.lookup(phone) is not None)


def _cached_tracking(cache, fields):
    targets = [fields.get("after_hours_number"), *(fields.get("failover_numbers") or ())] if fields else []
    return frozenset(number for number in targets if number and cache.lookup(number) is not None)


def plan_for(to_number, caller, path_client_id=None, *, from_cache_only=False) -> tuple[CallPlan, CallContext]:
    """The plan for a call from `caller` to `to_number` now, and what it was made from."""
    context = call_context(to_number, caller, path_client_id, from_cache_only=from_cache_only)
    config = current_app.config
    rules = client_rules(context.rule_fields, config["APP_TIMEZONE"]) if context.rule_fields else None
    plan = plan_call(context.entry, rules, context.blocked, caller, datetime.now(UTC),
                     default_number=config["DEFAULT_FORWARD_NUMBER"], default_is_tracking=context.default_loops,
                     dial_timeout=config["DIAL_TIMEOUT"], tracking_numbers=context.tracking_targets)
    return plan, context
