"""A web process's routing cache: written as it starts, kept current from the database, kept through an outage."""
import logging
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import sqlalchemy as sa

from phoneapp import create_app
from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment
from phoneapp.services import assignments, clients
from phoneapp.services.routing_cache_keeper import RoutingCacheKeeper, start_routing_cache_keeper
from phoneapp.services.routing_table import routing_cache
from tests.support.apps import base_environ, make_app
from tests.support.webhooks import TRACKING, down_app, post_signed, setup_routing, voice_params

ACME_PHONE = "+14155550187"
BOLT_PHONE = "+14155550142"


@pytest.fixture
def first(tmp_path, migrated_postgres):
    """The machine where ACME's number was assigned; its change wrote the routing cache of its folder alone."""
    app = make_app(tmp_path)
    setup_routing(app)
    return app


def another_machine(tmp_path, **overrides):
    """A web process on another machine: the same database, an instance folder of its own that nothing wrote."""
    return create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "another-machine"), **overrides},
                      environ=base_environ(tmp_path))


def cached_target(app):
    with app.app_context():
        entry = routing_cache().lookup(TRACKING)
        return entry.target if entry is not None else None


def fallback_dials(app):
    with app.app_context():
        response = post_signed(app, "/twilio/fallback", voice_params())
    assert response.status_code == 200
    number = ET.fromstring(response.data).find("Dial/Number")
    return number.text if number is not None else None


def reassign_to_bolt(app):
    with app.app_context():
        bolt = clients.create_client({"name": "Bolt", "phone": BOLT_PHONE}, "US")
        number = db.session.scalars(sa.select(PhoneAssignment).where(PhoneAssignment.phone_number == TRACKING)).one()
        assignments.update_assignment(number, {"client_id": bolt.id})
        db.session.remove()


def file_identity(path):
    """What changes when the file is replaced: its inode (a new file each time) and its mtime."""
    stat = Path(path).stat()
    return stat.st_ino, stat.st_mtime_ns


def test_a_machine_started_after_the_assignment_forwards_from_its_fallback(tmp_path, first):
    started = another_machine(tmp_path)

    assert cached_target(started) == ACME_PHONE
    assert fallback_dials(started) == ACME_PHONE


def test_a_change_made_on_one_machine_reaches_the_others_cache_within_one_refresh(tmp_path, first):
    other = another_machine(tmp_path, ROUTING_CACHE_REFRESH_SECONDS=0.01)
    reassign_to_bolt(first)
    assert cached_target(other) == ACME_PHONE, "the change wrote only the first machine's cache"

    keeper = start_routing_cache_keeper(other)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and cached_target(other) != BOLT_PHONE:
            time.sleep(0.01)
    finally:
        keeper.stop()

    assert not keeper.thread.is_alive()
    assert cached_target(other) == BOLT_PHONE
    assert fallback_dials(other) == BOLT_PHONE


def test_an_app_started_without_its_database_keeps_the_cache_it_has(tmp_path, first, caplog):
    cache_path = first.config["ROUTING_CACHE_PATH"]
    written, identity = Path(cache_path).read_bytes(), file_identity(cache_path)
    caplog.set_level(logging.INFO, logger="phoneapp.services.routing_cache_keeper")

    down = down_app(tmp_path)
    keeper = RoutingCacheKeeper(down)
    refreshed = [keeper.refresh() for _ in range(3)]

    assert refreshed == [False] * 3
    assert (Path(cache_path).read_bytes(), file_identity(cache_path)) == (written, identity)
    assert fallback_dials(down) == ACME_PHONE
    said = [record.getMessage() for record in caplog.records
            if record.name == "phoneapp.services.routing_cache_keeper"]
    assert len(said) == 2, said
    assert "not written at start-up, the database cannot be read (OperationalError)" in said[0]
    assert "not refreshed, the database cannot be read (OperationalError)" in said[1], "once per outage"


def test_a_refresh_with_nothing_changed_leaves_the_file_alone(tmp_path, first):
    other = another_machine(tmp_path)
    cache_path = other.config["ROUTING_CACHE_PATH"]
    written = file_identity(cache_path)

    another_machine(tmp_path)
    assert RoutingCacheKeeper(other).refresh()
    assert file_identity(cache_path) == written, "a restart and a refresh with the same routes"

    reassign_to_bolt(first)
    assert RoutingCacheKeeper(other).refresh()
    assert file_identity(cache_path) != written
    assert cached_target(other) == BOLT_PHONE


def test_a_servers_web_process_starts_its_keeper_with_its_first_request(tmp_path, first):
    server = another_machine(tmp_path, KEEP_ROUTING_CACHE=True, ROUTING_CACHE_REFRESH_SECONDS=3600)
    under_test = another_machine(tmp_path)
    try:
        assert fallback_dials(server) == fallback_dials(under_test) == ACME_PHONE

        [keeper] = server.extensions["phoneapp.routing_cache_keeper"].values()
        assert keeper.thread.is_alive()
        assert "phoneapp.routing_cache_keeper" not in under_test.extensions
    finally:
        for keeper in server.extensions.get("phoneapp.routing_cache_keeper", {}).values():
            keeper.stop()
