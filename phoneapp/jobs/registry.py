"""Every background job phoneapp runs, and the one list of periodic ones.

Jobs are named here and resolved lazily, so a web process that only queues work never imports
what the work needs, and tests can register a job of their own under a new name.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    name: str
    target: str  # "module:function"
    timeout: int | Callable[[dict], int]  # seconds, or computed from the app's config
    # Retried per JOB_RETRY_DELAYS unless retrying could do harm (a second live test call costs money).
    retries: bool = True

    def function(self):
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def timeout_seconds(self, config) -> int:
        return int(self.timeout(config) if callable(self.timeout) else self.timeout)


@dataclass(frozen=True)
class Periodic:
    job: str
    interval: str | int  # a config key naming seconds, or seconds
    # Run by the scheduler itself rather than queued: a health check must work while the queue is down.
    inline: bool = False

    def interval_seconds(self, config) -> int:
        return max(1, int(config[self.interval] if isinstance(self.interval, str) else self.interval))


JOBS: dict[str, Job] = {}


def register(job: Job) -> Job:
    JOBS[job.name] = job
    return job


for _job in (
    Job("sync_numbers", "phoneapp.jobs.tasks:sync_numbers", timeout=600),
    Job("verify_numbers", "phoneapp.jobs.tasks:verify_numbers", timeout=900),
    Job("verify_some_numbers", "phoneapp.jobs.tasks:verify_some_numbers", timeout=300),
    Job("check_health", "phoneapp.jobs.tasks:check_health", timeout=120),
    Job("import_monitor_alerts", "phoneapp.jobs.tasks:import_monitor_alerts", timeout=300),
    Job("run_test_call", "phoneapp.jobs.tasks:run_test_call",
        timeout=lambda config: config["TEST_CALL_TIMEOUT"] + 60, retries=False),
    Job("prune_history", "phoneapp.jobs.tasks:prune_history", timeout=600),
    Job("end_silent_calls", "phoneapp.jobs.tasks:end_silent_calls", timeout=300),
):
    register(_job)

# Each runs once per period however many workers are up: the first worker to claim a period runs it.
PERIODIC = (
    Periodic("sync_numbers", "SYNC_INTERVAL"),
    Periodic("verify_numbers", "VERIFY_INTERVAL"),
    Periodic("check_health", "HEALTH_CHECK_INTERVAL", inline=True),
    Periodic("import_monitor_alerts", "MONITOR_ALERTS_INTERVAL"),
    Periodic("prune_history", 24 * 3600),
    Periodic("end_silent_calls", 15 * 60),
)
