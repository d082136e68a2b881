"""Fixtures for Redis outages (a pytest plugin, loaded by the root conftest): a private redis-server."""
import shutil

import pytest

from tests.support.apps import TEST_REDIS_URL
from tests.support.not_run import note_not_run
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer


@pytest.fixture
def private_redis():
    if not TEST_REDIS_URL:
        note_not_run("Redis outage test", "TEST_REDIS_URL is unset", service=True)
        pytest.skip("TEST_REDIS_URL is unset")
    assert shutil.which("redis-server"), "redis-server must be on PATH where TEST_REDIS_URL is set"
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()
