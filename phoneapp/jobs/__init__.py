"""Background jobs (SPEC §6): queued by requests and the schedule, run by `python worker.py`."""
from phoneapp.jobs.queues import QueueUnavailable, enqueue

__all__ = ["QueueUnavailable", "enqueue"]
