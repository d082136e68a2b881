"""Stored times are naive UTC; people read them in the agency's time zone (APP_TIMEZONE)."""
from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo


def local_time(value, zone_name):
    """A stored naive-UTC time as an aware time in `zone_name`; None stays None."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC).astimezone(ZoneInfo(zone_name))


def format_local(value, zone_name, fmt="%Y-%m-%d %H:%M"):
    """A stored time as text in `zone_name`; "" for None."""
    local = local_time(value, zone_name)
    return local.strftime(fmt) if local else ""
