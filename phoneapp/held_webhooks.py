"""Webhooks the database could not take, held on disk until it can (SPEC §8). No Flask, no database.

Each held webhook is one JSON file, written to a temporary name, fsynced and renamed, so a process killed at
any moment leaves either the whole event or nothing (and then Twilio, never answered, retries). Files are
named by arrival time, so replay keeps Twilio's order. One replayer at a time per directory (an flock), and
a file is deleted only after its write committed: a crash in between replays it once more, which the call
writers absorb because they are idempotent by CallSid.
"""
from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

# A temporary file this old was abandoned by a process killed mid-write; its webhook was never answered.
STALE_TEMP_SECONDS = 3600


@dataclass
class ReplayResult:
    written: int = 0
    remaining: int = 0
    quarantined: int = 0
    busy: bool = False


class HeldWebhooks:
    """A directory of webhook events waiting for the database, oldest first."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.failed_directory = self.directory / "failed"
        self._sequence = itertools.count()
        self._lock = threading.Lock()

    def hold(self, event: dict) -> str:
        """Keep `event` durably; returns its name. Raises OSError if the disk refuses it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            sequence = next(self._sequence)
        name = f"{time.time_ns():020d}-{os.getpid()}-{sequence:06d}.json"
        temp_path = self.directory / f".{name}.tmp"
        with open(temp_path, "w") as handle:
            json.dump({**event, "held_at": datetime.now(UTC).isoformat()}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_path, self.directory / name)
        self._sync_directory()
        return name

    def pending(self) -> list[Path]:
        try:
            return sorted(path for path in self.directory.glob("*.json"))
        except OSError:
            return []

    def count(self) -> int:
        return len(self.pending())

    def quarantined_count(self) -> int:
        try:
            return sum(1 for _ in self.failed_directory.glob("*.json"))
        except OSError:
            return 0

    def oldest_held_at(self) -> datetime | None:
        """When the oldest waiting webhook arrived, from its file name."""
        pending = self.pending()
        if not pending:
            return None
        return datetime.fromtimestamp(int(pending[0].name.split("-")[0]) / 1e9, UTC).replace(tzinfo=None)

    def replay(self, apply, *, retry_later=(), limit=None) -> ReplayResult:
        """Hand each held event to `apply`, oldest first, deleting it once `apply` returns.

        An exception in `retry_later` (the database is still down) stops the replay and keeps the rest. Any
        other exception means this event can never be written as it is: it moves to `failed/`, kept for a
        person to look at, and the replay goes on.
        """
        result = ReplayResult()
        if not self.directory.exists():
            return result
        lock_path = self.directory / ".replay.lock"
        with open(lock_path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                result.busy = True
                return result
            try:
                self._remove_stale_temp_files()
                pending = self.pending()
                for index, path in enumerate(pending):
                    if limit is not None and result.written >= limit:
                        result.remaining = len(pending) - index
                        break
                    try:
                        event = json.loads(path.read_text())
                    except FileNotFoundError:
                        continue
                    except (OSError, ValueError):
                        log.exception("held webhook %s is unreadable; kept in %s", path.name, self.failed_directory)
                        self._quarantine(path)
                        result.quarantined += 1
                        continue
                    try:
                        apply(event)
                    except retry_later:
                        result.remaining = len(pending) - index
                        break
                    except Exception:
                        log.exception("held webhook %s could not be written; kept in %s", path.name,
                                      self.failed_directory)
                        self._quarantine(path)
                        result.quarantined += 1
                        continue
                    path.unlink(missing_ok=True)
                    result.written += 1
                if result.written:
                    self._sync_directory()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return result

    def _quarantine(self, path):
        self.failed_directory.mkdir(parents=True, exist_ok=True)
        os.replace(path, self.failed_directory / path.name)

    def _remove_stale_temp_files(self):
        cutoff = time.time() - STALE_TEMP_SECONDS
        for temp in self.directory.glob(".*.tmp"):
            try:
                if temp.stat().st_mtime < cutoff:
                    temp.unlink()
            except OSError:
                pass

    def _sync_directory(self):
        # The rename (or unlink) itself must reach the disk, not only the file's contents.
        descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class DatabaseOutage:
    """Per process: after the database failed, webhooks skip it for `pause` seconds instead of waiting on it.

    The first request after the pause tries again; every caller meanwhile is answered from the routing cache
    at once and its webhook held, so a dead database costs one failed attempt per pause, not one per call.
    """

    def __init__(self, pause=2.0):
        self.pause = pause
        self._skip_until = 0.0

    def database_skipped(self) -> bool:
        return time.monotonic() < self._skip_until

    def note_failure(self):
        self._skip_until = time.monotonic() + self.pause

    def note_success(self):
        self._skip_until = 0.0
