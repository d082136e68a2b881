"""Import files uploaded on the Import page, kept in the instance folder between the dry run and Apply.

A file is named by a random token, so the page's URLs name it without carrying it; a day later it is gone.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path

from flask import current_app

TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
KEEP_SECONDS = 24 * 3600


def _folder() -> Path:
    return Path(current_app.instance_path) / "imports"


def _path(token, suffix) -> Path | None:
    return _folder() / f"{token}{suffix}" if TOKEN.fullmatch(token or "") else None


def keep_upload(content: bytes) -> str:
    """Keep an uploaded file; returns the token that names it."""
    folder = _folder()
    folder.mkdir(parents=True, exist_ok=True)
    _forget_old(folder)
    token = secrets.token_urlsafe(24)
    _path(token, ".json").write_bytes(content)
    return token


def kept_upload(token) -> bytes | None:
    """The file `token` names, None when there is none (any more)."""
    path = _path(token, ".json")
    try:
        return path.read_bytes() if path is not None else None
    except OSError:
        return None


def keep_result(token, shown: dict) -> None:
    """Keep what applying the file did, for its result page."""
    _path(token, ".result.json").write_text(json.dumps(shown))


def kept_result(token) -> dict | None:
    path = _path(token, ".result.json")
    try:
        return json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        return None


def _forget_old(folder):
    cutoff = time.time() - KEEP_SECONDS
    for entry in folder.iterdir():
        try:
            if entry.stat().st_mtime < cutoff:
                os.unlink(entry)
        except OSError:
            pass
