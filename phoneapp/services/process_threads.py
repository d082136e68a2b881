"""Background threads kept one per process: a server forks after building the app, and threads do not survive a
fork, so each process starts its own on first use."""
from __future__ import annotations

import os
import threading

_start_lock = threading.Lock()


def started_for_this_process(app, name, make):
    """The object `make(app)` this process keeps under `name` (it has a `thread`), made and started on first use."""
    state = app.extensions.setdefault(name, {})
    kept = state.get(os.getpid())
    if kept is None:
        with _start_lock:
            kept = state.get(os.getpid())
            if kept is None:
                kept = make(app)
                # What the parent process kept belongs to a thread that did not come along.
                state.clear()
                state[os.getpid()] = kept
                kept.thread.start()
    return kept
