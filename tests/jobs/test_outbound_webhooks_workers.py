"""Outbound webhooks from real workers (SPEC §10): at least once when a worker dies, never one attempt sent twice."""
import signal
import threading
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment, WebhookAttempt, WebhookDelivery, utcnow
from phoneapp.services import assignments
from phoneapp.services.outbound_webhooks import event_payload, queue_event
from phoneapp.services.simulator import place_simulated_call
from phoneapp.services.webhook_delivery import CLAIM_LEASE, deliver_due_webhooks
from tests.support.jobs import start_worker, stop_worker, wait_until, worker_environ
from tests.support.sandbox_calls import the_call
from tests.support.webhook_receiver import add_endpoint, receiving

CALL_EVENTS = ("call.completed", "call.missed", "voicemail.created")


@pytest.fixture
def receiver(app):
    with receiving(app) as receiver:
        yield receiver


def test_a_worker_killed_mid_delivery_loses_nothing_another_sends_it_later(app, make_client, receiver, tmp_path):
    receiver.hold = True
    add_endpoint(receiver.url, events=CALL_EVENTS)
    assignments.sync_numbers()
    number = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).first()
    assignments.upsert_assignment({"twilio_sid": number.twilio_sid, "client_id": make_client().id})
    # A voicemail is final at once: the worker settles the call on its next tick.
    place_simulated_call(number.phone_number, outcome="busy", background=False, pace=0)
    call_sid = the_call().twilio_call_sid

    worker = start_worker(worker_environ(app, tmp_path, OUTBOUND_WEBHOOKS_ALLOW_PRIVATE="true"),
                          log_path=tmp_path / "worker.log")
    try:
        receiver.wait_for(1, timeout=90)
    finally:
        stop_worker(worker, sig=signal.SIGKILL)
    receiver.hold = False
    receiver.release()

    held = wait_until(lambda: db.session.scalars(sa.select(WebhookDelivery).where(WebhookDelivery.attempt == 1)).all(),
                      message="the claimed delivery")
    assert len(held) == 1 and held[0].state == "pending" and held[0].claimed_until > utcnow()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 2
    # The dead worker's claim holds until its lease runs out; then another worker sends it again.
    assert deliver_due_webhooks(sender="worker-2") == 1
    assert deliver_due_webhooks(now=utcnow() + CLAIM_LEASE + timedelta(seconds=1), sender="worker-2") == 1

    requests = receiver.wait_for(3)
    assert [request.error for request in requests] == [None] * 3
    assert receiver.ids()[0] == receiver.ids()[2] and len(set(receiver.ids())) == 2
    payloads = receiver.verified()
    assert {payload["type"] for payload in payloads} == {"call.completed", "voicemail.created"}
    assert {payload["data"]["twilio_call_sid"] for payload in payloads} == {call_sid}
    db.session.expire_all()
    assert set(db.session.scalars(sa.select(WebhookDelivery.state))) == {"delivered"}
    retried = db.session.get(WebhookDelivery, held[0].id)
    first, second = retried.attempts
    assert first.finished_at is None and "stopped" in first.error and first.sender != "worker-2"
    assert (second.attempt, second.response_code, second.sender) == (2, 200, "worker-2")


def test_workers_delivering_at_once_never_send_the_same_attempt_twice(app, receiver):
    add_endpoint(receiver.url)
    for n in range(30):
        queue_event("call.completed", event_payload("call.completed", {"n": n}), client_id=None,
                    dedupe_key=f"call.completed:CA{n:04d}")
    db.session.commit()
    start, errors = threading.Barrier(4), []

    def work(name):
        with app.app_context():
            try:
                start.wait()
                while deliver_due_webhooks(sender=name):
                    pass
            except Exception as exc:  # noqa: BLE001 — reported below, with the thread's name
                errors.append((name, exc))
            finally:
                db.session.remove()

    workers = [threading.Thread(target=work, args=(f"worker-{n}",)) for n in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(120)
    assert errors == []

    sent = Counter(receiver.ids())
    assert len(sent) == 30 and set(sent.values()) == {1}, sent.most_common(3)
    assert len(receiver.verified()) == 30
    db.session.expire_all()
    assert set(db.session.scalars(sa.select(WebhookDelivery.state))) == {"delivered"}
    assert db.session.scalars(sa.select(WebhookAttempt.attempt)).all() == [1] * 30
