"""The instance folder's disk: whether phoneapp can still write there, and has room. No Flask, no database.

The web processes log every webhook there before answering it and keep the routing cache there (SPEC §8): a
folder that refuses files, or a full disk, loses what the database outage plan counts on.
"""
from __future__ import annotations

import os
import tempfile

# Below this much free space (DISK_MIN_FREE_MB overrides it) the webhook log and the routing cache are about to
# fail to be written.
MIN_FREE_MB = 100


def shown_size(size) -> str:
    """Bytes as a person reads them: '812 MB', '41.3 GB'."""
    for unit, scale in (("TB", 1024**4), ("GB", 1024**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size // 1024**2} MB"


def unwritable(folder) -> str | None:
    """Why no file can be made in `folder`, None when one can.

    A probe file is written and removed, as at start-up: a read-only mount refuses it whatever the permission
    bits (or os.access, for root) say.
    """
    try:
        os.makedirs(folder, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".health-check-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def disk_state(folder, webhook_log, min_free_mb=MIN_FREE_MB) -> tuple[bool, str]:
    """(ok, why) for the instance `folder`: a file can be made in it and in its `webhook_log` folder, and it has
    `min_free_mb` free."""
    where, reason = folder, unwritable(folder)
    if reason is None:
        where, reason = webhook_log, unwritable(webhook_log)
    try:
        stats = os.statvfs(folder)
        free = stats.f_bavail * stats.f_frsize
    except OSError:
        free = None
    free_text = f"{shown_size(free)} free" if free is not None else "free space unknown"
    if reason is not None:
        what = "the instance folder" if where == folder else "the webhook log"
        return False, (f"{what} {where} cannot be written ({reason}): webhooks cannot be logged before they are "
                       f"answered, nor the routing cache kept; {free_text}")
    if free is not None and free < min_free_mb * 1024**2:
        return False, (f"only {free_text} in the instance folder {folder}, below the {min_free_mb} MB phoneapp "
                       "needs: the webhook log and the routing cache will soon fail to be written")
    return True, f"the instance folder {folder} can be written; {free_text}"
