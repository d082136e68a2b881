"""Concurrent edits of one number: none is lost, the audit chain is exact, and a race to create answers 200 or 409.

Run on PostgreSQL, where web processes really write at once (SQLite takes one writer at a time).
"""
import threading

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from phoneapp.extensions import db
from phoneapp.models import AuditEvent, PhoneAssignment
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.services import users
from tests.support.api import ApiClient
from tests.support.apps import TEST_DATABASE_URL
from tests.support.not_run import note_not_run

THREADS = 20


@pytest.fixture(autouse=True)
def postgres_only():
    if not TEST_DATABASE_URL:
        note_not_run("concurrent edit tests", "TEST_DATABASE_URL is unset", service=True)
        pytest.skip("TEST_DATABASE_URL is unset")


def all_at_once(app, token, requests):
    """Send every (method, path, body) from a thread of its own, released together; the answers in order."""
    start = threading.Barrier(len(requests))
    answers = [None] * len(requests)

    def send(index, method, path, body):
        # A plain client: each request pushes its own contexts on its own thread, as in a threaded server.
        client = ApiClient(FlaskClient(app, app.response_class), token)
        start.wait()
        try:
            response = client.open(method, path, body)
            answers[index] = (response.status_code, response.get_json())
        except Exception as exc:  # noqa: BLE001 - the failure is the answer the test reports
            answers[index] = ("raised", repr(exc))

    threads = [threading.Thread(target=send, args=(index, *request)) for index, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def test_concurrent_patches_of_one_number_lose_nothing_and_chain_the_audit(app, staff, make_client, make_number):
    clients = [make_client(name=f"Client {n}", phone=f"+1415555{n + 200:04d}") for n in range(4)]
    number = make_number(client=clients[0], friendly_name="start")
    token = users.issue_token(staff)
    asked = [(clients[n % 4].id, f"name {n}") for n in range(THREADS)]
    answers = all_at_once(app, token, [("PATCH", f"/api/phone-assignments/{number.id}",
                                        {"client_id": client_id, "friendly_name": name})
                                       for client_id, name in asked])
    assert [status for status, _ in answers] == [200] * THREADS, answers[:2]

    db.session.expire_all()
    final = db.session.get(PhoneAssignment, number.id)
    assert (final.client_id, final.friendly_name) in asked, "the end state is one that a request asked for"
    events = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.subject_type == "PhoneAssignment", AuditEvent.subject_id == number.id)
        .order_by(AuditEvent.id)).all()
    renames = [event for event in events if event.action == "rename"]
    moves = [event for event in events if event.action in ("assign", "reassign", "unassign")]
    assert len(renames) == THREADS, "every request renamed the number"
    for earlier, later in zip(renames, renames[1:], strict=False):
        assert later.before["friendly_name"] == earlier.after["friendly_name"]
    for earlier, later in zip(moves, moves[1:], strict=False):
        assert later.before["client_id"] == earlier.after["client_id"]
    assert renames[-1].after["friendly_name"] == final.friendly_name
    assert (moves[-1].after["client_id"] if moves else clients[0].id) == final.client_id


def test_a_race_to_track_one_number_answers_200_or_409_never_already_tracked(app, staff, make_client):
    acme = make_client()
    sid = SandboxAccount.open(app.config["SANDBOX_STATE_PATH"]).numbers()[0]["sid"]
    token = users.issue_token(staff)
    answers = all_at_once(app, token, [("POST", "/api/phone-assignments", {"twilio_sid": sid, "client_id": acme.id})
                                       for _ in range(THREADS)])
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 409}, answers
    assert 200 in statuses
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PhoneAssignment)
                             .where(PhoneAssignment.twilio_sid == sid)) == 1
