"""Tests of the background jobs (phoneapp/jobs/): the worker, test calls, verification, alerts, health."""
