"""What every model shares: times in naive UTC, ids within PostgreSQL's INTEGER."""
from __future__ import annotations

from datetime import UTC, datetime

# Ids are 32-bit INTEGER columns on PostgreSQL; a larger value would be a database error, not a miss.
MAX_ID = 2**31 - 1


def utcnow():
    """Naive UTC: SQLite keeps no zone, so every stored time is UTC by convention."""
    return datetime.now(UTC).replace(tzinfo=None)
