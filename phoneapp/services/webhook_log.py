"""The webhook log: every Twilio webhook is on disk before Twilio gets its answer (SPEC §8). No Flask, no database.

Each web process appends its webhooks, one JSON line each, to a segment file of its own and fdatasyncs it
before answering; a writer then copies them into the database in batches. While the database is down the
segment simply grows, and when the process dies its segment stays behind for another process (or its own
restart, or a worker) to write. So the database is written once per batch instead of once per request, an
outage needs no other path, and a killed process loses nothing it answered.

A segment is locked (flock) by the process appending to it; a segment nobody holds is an orphan and may be
claimed. Next to each segment, `<segment>.offset` says how far it has been written; it is advanced only after
the database committed, so a crash in between writes a batch twice, which the call writers absorb because they
are idempotent by CallSid.
"""
from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)

# A segment fully written is replaced by a fresh one once it is this big, so an orphan stays short to replay.
ROTATE_BYTES = 256 * 1024
READ_CHUNK = 1024 * 1024
_instances = itertools.count()


@dataclass
class WriteResult:
    written: int = 0
    remaining: int = 0
    quarantined: int = 0


class _Segment:
    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.syncing = 0
        self.retired = False


def _offset_path(segment: Path) -> Path:
    return segment.with_name(segment.name + ".offset")


def _read_offset(segment: Path) -> int:
    try:
        return int(_offset_path(segment).read_text() or 0)
    except (OSError, ValueError):
        return 0


def _complete_lines(path: Path, offset: int, limit: int | None = None):
    """[(end offset, raw line)] of the whole lines after `offset`; a line still being written is left out.

    With a `limit`, only about as much of the file is read as that many lines need: after a long outage a
    segment holds hours of webhooks, and each batch must not read all of what is left.
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            if limit is None:
                data = handle.read()
            else:
                data = handle.read(READ_CHUNK)
                while data.count(b"\n") < limit:
                    more = handle.read(READ_CHUNK)
                    if not more:
                        break
                    data += more
    except FileNotFoundError:
        return []
    lines, position = [], offset
    for raw in data.split(b"\n")[:-1]:
        position += len(raw) + 1
        lines.append((position, raw))
        if limit is not None and len(lines) >= limit:
            break
    return lines


class WebhookLog:
    """This process's segment, and the orphaned ones of processes that stopped, in one directory."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.failed_path = self.directory / "failed" / "webhooks.log"
        self._name = f"{socket.gethostname()}-{os.getpid()}-{next(_instances)}"
        self._lock = threading.Lock()
        self._segment: _Segment | None = None
        self._offset = 0
        self._pid = os.getpid()
        self._rotations = itertools.count()

    # -- appending (request threads) ----------------------------------------------------------------

    def append(self, event: dict) -> None:
        """Keep `event` durably: on return it survives a crash of this process or the machine."""
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        with self._lock:
            segment = self._current_segment()
            os.write(segment.fd, line)
            segment.syncing += 1
        try:
            # One fdatasync per webhook, outside the lock: the file system already commits concurrent ones together,
            # and doing it again in Python (threads waiting on each other's sync) cost more CPU than the syncs.
            os.fdatasync(segment.fd)
        finally:
            with self._lock:
                segment.syncing -= 1
                if segment.retired and not segment.syncing:
                    os.close(segment.fd)

    def _current_segment(self) -> _Segment:
        if self._pid != os.getpid():
            # A forked child must not append to (or unlock) its parent's segment.
            self._pid, self._segment, self._offset = os.getpid(), None, 0
            self._name = f"{socket.gethostname()}-{os.getpid()}-{next(_instances)}"
        if self._segment is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{self._name}-{time.time_ns():020d}-{next(self._rotations)}.log"
            self._segment = _Segment(path)
            self._offset = 0
            self._sync_directory()
        return self._segment

    # -- writing this process's own segment (its writer) --------------------------------------------

    def write_own(self, write_batch: Callable, *, retry_later=(), batch_size=500) -> WriteResult:
        """Hand the unwritten events of this process's segment to `write_batch`, oldest first."""
        result = WriteResult()
        while True:
            with self._lock:
                segment = self._segment
                if segment is None or self._pid != os.getpid():
                    return result
                path, offset = segment.path, self._offset
            lines = _complete_lines(path, offset, batch_size)
            if not lines:
                self._maybe_rotate(segment)
                return result
            outcome = self._write_lines(lines, write_batch, retry_later)
            if outcome is None:
                result.remaining = len(_complete_lines(path, offset))
                return result
            written, quarantined = outcome
            result.written += written
            result.quarantined += quarantined
            with self._lock:
                if self._segment is segment:
                    self._offset = lines[-1][0]
            _offset_path(path).write_text(str(lines[-1][0]))

    def _maybe_rotate(self, segment):
        with self._lock:
            if self._segment is not segment or self._offset < ROTATE_BYTES:
                return
            if os.fstat(segment.fd).st_size != self._offset:
                return
            self._segment, self._offset = None, 0
            segment.retired = True
            os.unlink(segment.path)
            _offset_path(segment.path).unlink(missing_ok=True)
            if not segment.syncing:
                os.close(segment.fd)

    def close(self):
        """Stop appending: what is not yet written stays on disk for whoever writes orphans."""
        with self._lock:
            segment, self._segment = self._segment, None
            if segment is not None and self._pid == os.getpid():
                segment.retired = True
                if not segment.syncing:
                    os.close(segment.fd)

    # -- orphans: segments of processes that stopped -----------------------------------------------

    def write_orphans(self, write_batch: Callable, *, retry_later=(), batch_size=500) -> WriteResult:
        """Write the segments no running process holds, oldest first, and delete each once written."""
        result = WriteResult()
        own = self._segment.path if self._segment is not None else None
        for path in self.segments():
            if path == own:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process is alive and writes it itself, or another writer has it
                if not path.exists():
                    continue  # written and deleted by whoever held it just before us
                offset = _read_offset(path)
                while True:
                    lines = _complete_lines(path, offset, batch_size)
                    if not lines:
                        break
                    outcome = self._write_lines(lines, write_batch, retry_later)
                    if outcome is None:
                        result.remaining += len(_complete_lines(path, offset))
                        return result
                    result.written += outcome[0]
                    result.quarantined += outcome[1]
                    offset = lines[-1][0]
                    _offset_path(path).write_text(str(offset))
                # A last line cut short by a crash was never answered, so Twilio retried it elsewhere.
                path.unlink(missing_ok=True)
                _offset_path(path).unlink(missing_ok=True)
                self._sync_directory()
            finally:
                os.close(fd)
        return result

    # -- shared ---------------------------------------------------------------------------------------

    def _write_lines(self, lines, write_batch, retry_later):
        """(written, quarantined), or None when the database is unavailable and nothing was written."""
        events, broken = [], 0
        for _, raw in lines:
            try:
                events.append(json.loads(raw))
            except ValueError:
                self._quarantine_raw(raw)
                broken += 1
        if not events:
            return 0, broken
        try:
            write_batch(events)
            return len(events), broken
        except retry_later:
            return None
        except Exception:
            log.warning("a batch of %d webhooks failed; writing them one by one to set aside the bad one",
                        len(events), exc_info=True)
        written = 0
        for event in events:
            try:
                write_batch([event])
                written += 1
            except retry_later:
                return None
            except Exception:
                log.exception("a %s webhook (CallSid %s) cannot be written; set aside in %s", event.get("kind"),
                              event.get("params", {}).get("CallSid"), self.failed_path)
                self._quarantine_raw(json.dumps(event).encode())
                broken += 1
        return written, broken

    def _quarantine_raw(self, raw: bytes):
        self.failed_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Callers' numbers and Twilio's parameters: readable by phoneapp's own user alone, like the segments.
        descriptor = os.open(self.failed_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "ab") as handle:
            handle.write(raw.rstrip(b"\n") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())

    def segments(self) -> list[Path]:
        try:
            # Oldest first: the name carries the time the segment was opened.
            return sorted(self.directory.glob("*.log"), key=lambda path: path.name.rsplit("-", 2)[-2])
        except OSError:
            return []

    def waiting(self) -> tuple[int, datetime | None]:
        """(how many webhooks on this server wait for the database, when the oldest of them arrived)."""
        count, oldest = 0, None
        own = self._segment.path if self._segment is not None else None
        for path in self.segments():
            offset = self._offset if path == own else _read_offset(path)
            lines = _complete_lines(path, offset)
            if lines and oldest is None:
                try:
                    oldest = datetime.fromisoformat(json.loads(lines[0][1])["received_at"])
                except (ValueError, KeyError):
                    oldest = None
            count += len(lines)
        return count, oldest

    def quarantined_count(self) -> int:
        try:
            with open(self.failed_path, "rb") as handle:
                return sum(1 for _ in handle)
        except OSError:
            return 0

    def _sync_directory(self):
        # A new or deleted segment's name must itself reach the disk, not only its contents.
        descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class DatabaseOutage:
    """Per process: after the database failed, calls are routed from the cache for `pause` seconds.

    The first call after the pause tries the database again; every caller meanwhile is answered from the
    routing cache at once, so a dead database costs one failed attempt per pause, not one per call.
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
