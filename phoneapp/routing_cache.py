"""Last known routing, kept on disk so calls can be answered while the database is down."""
from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from phoneapp.routing import RouteEntry


class RoutingCache:
    """A JSON snapshot of every number's route, replaced atomically, read without the database."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._loaded_mtime = None
        self._entries = {}

    def write(self, entries):
        """Replace the snapshot with `entries` (RouteEntry objects)."""
        payload = {
            "written_at": datetime.now(UTC).isoformat(),
            "numbers": {entry.phone_number: asdict(entry) for entry in entries},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=self.path.parent, prefix=".routing-", suffix=".json")
        with os.fdopen(handle, "w") as temp:
            json.dump(payload, temp)
            temp.flush()
            os.fsync(temp.fileno())
        # Readers in other processes see the old file or the new one, never half of one.
        os.replace(temp_name, self.path)

    def lookup(self, phone_number):
        """The cached route for `phone_number`, or None if the number is not in the snapshot."""
        self._reload_if_changed()
        return self._entries.get(phone_number)

    def __len__(self):
        self._reload_if_changed()
        return len(self._entries)

    def _reload_if_changed(self):
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._entries, self._loaded_mtime = {}, None
            return
        with self._lock:
            if mtime == self._loaded_mtime:
                return
            with open(self.path) as handle:
                numbers = json.load(handle)["numbers"]
            self._entries = {phone: RouteEntry(**fields) for phone, fields in numbers.items()}
            self._loaded_mtime = mtime
