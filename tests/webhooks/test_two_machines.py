"""Two web machines on one database, each with its own INSTANCE_PATH (SPEC §11): a reassignment made through one
routes the calls that reach the other a second later, in every one of its processes.

On PostgreSQL when TEST_DATABASE_URL is set (the change travels by NOTIFY), else on one SQLite file (by the change
marker beside it).
"""
import json
import os
import shutil
import signal
import threading
import urllib.request
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa
from werkzeug.serving import make_server

from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment
from phoneapp.services import assignments, clients, users
from tests.support.apps import base_environ, make_app
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.webhooks import CALLER, voice_params
from tests.webhooks.test_database_outage import gunicorn, post_to_server, wait_for_http

CLIENT_PHONES = ["+14155550187", "+14155550142", "+14155550163", "+14155550119"]
REASSIGNMENTS = 12
# Calls at once after each change: a server's two processes take them between them.
CALLS_AT_ONCE = 8


def first_machine(tmp_path):
    """The machine staff use: clients, a tracking number assigned to the first, a staff user's API token."""
    app = make_app(tmp_path)
    with app.app_context():
        staff = users.create_user("sam@example.test", "a long staff password 42", role="staff", name="Sam")
        token = users.issue_token(staff)
        client_ids = [clients.create_client({"name": f"Client {n}", "phone": phone}, "US").id
                      for n, phone in enumerate(CLIENT_PHONES)]
        assignments.sync_numbers()
        number = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).first()
        assignments.update_assignment(number, {"client_id": client_ids[0]})
        seeded = {"token": token, "client_ids": client_ids, "number_id": number.id, "tracking": number.phone_number}
        db.session.remove()
    return app, seeded


def serve(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="first-machine", daemon=True).start()
    return server


def second_machine_environ(tmp_path, first):
    """Another machine's gunicorn: the same database and Twilio account, an instance folder of its own."""
    instance = tmp_path / "second-machine"
    instance.mkdir()
    shutil.copy(Path(first.instance_path) / "sandbox-account.json", instance / "sandbox-account.json")
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("TWILIO_", "REDIS_"))}
    environ.update(base_environ(tmp_path))
    # Only a notice can bring the change in time: the periodic reload is an hour away.
    environ.update({"INSTANCE_PATH": str(instance), "PYTHONPATH": str(ROOT), "ROUTING_CACHE_REFRESH_SECONDS": "3600"})
    return environ


def reassign_through_api(base, seeded, client_id):
    request = urllib.request.Request(
        f"{base}/api/phone-assignments/{seeded['number_id']}", method="PATCH",
        data=json.dumps({"client_id": client_id}).encode(),
        headers={"Authorization": f"Bearer {seeded['token']}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert json.load(response)["client_id"] == client_id


def dialled(first, port, path, tracking, call_sid):
    status, body = post_to_server(first, port, path, voice_params(call_sid=call_sid, to=tracking, caller=CALLER))
    assert status == 200
    number = ET.fromstring(body).find("Dial/Number")
    return number.text if number is not None else None


def test_reassignments_made_on_one_machine_route_the_next_calls_on_another(tmp_path, migrated_postgres):
    first, seeded = first_machine(tmp_path)
    first_server = serve(first)
    port = free_port()
    second = gunicorn(second_machine_environ(tmp_path, first), port, tmp_path / "second-machine.log")
    try:
        wait_for_http(port, second)
        base = f"http://127.0.0.1:{first_server.server_port}"
        tracking, client_ids = seeded["tracking"], seeded["client_ids"]
        wrong = []
        with ThreadPoolExecutor(CALLS_AT_ONCE) as calls:
            for change in range(1, REASSIGNMENTS + 1):
                phone_index = change % len(CLIENT_PHONES)
                reassign_through_api(base, seeded, client_ids[phone_index])
                threading.Event().wait(1.0)
                # The voice URL, and the fallback URL, which answers from the routing table alone.
                paths = ["/twilio/voice", "/twilio/fallback"] * (CALLS_AT_ONCE // 2)
                sids = [f"CA{change:016d}{n:016d}" for n in range(CALLS_AT_ONCE)]
                answers = list(calls.map(dialled, [first] * CALLS_AT_ONCE, [port] * CALLS_AT_ONCE, paths,
                                         [tracking] * CALLS_AT_ONCE, sids))
                wrong += [(change, paths[n], answer) for n, answer in enumerate(answers)
                          if answer != CLIENT_PHONES[phone_index]]
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=20)
        first_server.shutdown()
        with first.app_context():
            db.engine.dispose()
    assert wrong == [], (tmp_path / "second-machine.log").read_text()[-3000:]
