"""Outbound webhooks (SPEC §10): signed per Standard Webhooks, retried for a day, never into the server's network."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from phoneapp.domain.call_status import outcome_of
from phoneapp.extensions import db
from phoneapp.models import Alert, PhoneAssignment, WebhookAttempt, WebhookDelivery, WebhookEndpoint, utcnow
from phoneapp.services import assignments
from phoneapp.services.call_settlement import settle_calls
from phoneapp.services.outbound_webhooks import announce_number_statuses, event_payload, queue_event, redeliver
from phoneapp.services.serializers import call_record_json
from phoneapp.services.simulator import place_simulated_call
from phoneapp.services.webhook_delivery import deliver_due_webhooks
from phoneapp.services.webhook_endpoints import update_endpoint
from tests.support.sandbox_calls import the_call
from tests.support.webhook_receiver import add_endpoint, receiving


@pytest.fixture
def receiver(app):
    with receiving(app) as receiver:
        yield receiver


def queue_test_event(key="CA0001", event_type="call.completed", client_id=None):
    event_id = queue_event(event_type, event_payload(event_type, {"twilio_call_sid": key}), client_id=client_id,
                           dedupe_key=f"{event_type}:{key}")
    db.session.commit()
    return event_id


def the_delivery():
    db.session.expire_all()
    return db.session.scalars(sa.select(WebhookDelivery)).one()


def attempts_log(delivery_id):
    return [(a.attempt, a.response_code) for a in db.session.scalars(
        sa.select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id).order_by(WebhookAttempt.attempt))]


def deliver_through(start, end):
    """Run the deliveries at every moment one falls due from `start` until `end`, as workers ticking would."""
    moment = start
    while moment <= end:
        deliver_due_webhooks(now=moment, sender="worker-1")
        db.session.expire_all()
        due = db.session.scalar(sa.select(sa.func.min(WebhookDelivery.next_attempt_at))
                                .join(WebhookEndpoint).where(WebhookDelivery.state == "pending",
                                                             WebhookEndpoint.is_active.is_(True)))
        if due is None:
            return
        moment = max(due, moment) + timedelta(seconds=1)


def test_a_settled_missed_call_reaches_the_receiver_as_call_completed_and_call_missed(app, make_client, receiver):
    add_endpoint(receiver.url)
    assignments.sync_numbers()
    number = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).first()
    client = make_client(phone="+14155550187")
    assignments.upsert_assignment({"twilio_sid": number.twilio_sid, "client_id": client.id})
    call = place_simulated_call(number.phone_number, outcome="canceled", background=False, pace=0)
    record = the_call()
    assert outcome_of(record) == "missed"

    # A missed call may still get its voicemail: it is told once that can no longer happen.
    assert settle_calls(now=record.ended_at + timedelta(seconds=30)) == 0
    assert deliver_due_webhooks() == 0 and receiver.requests == []
    assert settle_calls(now=record.ended_at + timedelta(minutes=2)) == 1
    assert deliver_due_webhooks(sender="worker-1") == 2

    received = receiver.wait_for(2)
    assert [request.error for request in received] == [None, None]
    by_type = {payload["type"]: payload for payload in receiver.verified()}
    assert set(by_type) == {"call.completed", "call.missed"}
    for payload in by_type.values():
        assert payload["data"] == call_record_json(the_call())
        assert payload["data"]["twilio_call_sid"] == call.call_sid and payload["data"]["outcome"] == "missed"
        assert payload["data"]["client_id"] == client.id
    assert len(set(receiver.ids())) == 2 and all(webhook_id.startswith("msg_") for webhook_id in receiver.ids())
    assert {request.headers["user-agent"] for request in received} == {"phoneapp"}
    assert {request.headers["content-type"] for request in received} == {"application/json"}

    # Settled once, told once, whatever runs again.
    assert settle_calls(now=record.ended_at + timedelta(minutes=5)) == 0
    assert deliver_due_webhooks() == 0 and len(receiver.requests) == 2
    assert set(db.session.scalars(sa.select(WebhookDelivery.state))) == {"delivered"}


def test_a_receiver_answering_503_three_times_gets_the_event_once_more_then_nothing(app, receiver):
    receiver.answers = [503, 503, 503]
    endpoint = add_endpoint(receiver.url)
    queue_test_event()
    start = utcnow()
    assert deliver_due_webhooks(now=start) == 1
    # The Standard Webhooks schedule: 5 s, then 5 min, then 30 min.
    assert deliver_due_webhooks(now=start + timedelta(seconds=4)) == 0
    assert deliver_due_webhooks(now=start + timedelta(seconds=6)) == 1
    assert deliver_due_webhooks(now=start + timedelta(minutes=4)) == 0
    assert deliver_due_webhooks(now=start + timedelta(minutes=6)) == 1
    assert the_delivery().last_error == "answered 503" and db.session.get(WebhookEndpoint, endpoint.id).failing_since
    assert deliver_due_webhooks(now=start + timedelta(minutes=30)) == 0
    assert deliver_due_webhooks(now=start + timedelta(minutes=37)) == 1
    assert deliver_due_webhooks(now=start + timedelta(days=3)) == 0

    assert len(receiver.requests) == 4 and len(receiver.verified()) == 4
    assert len(set(receiver.ids())) == 1
    delivery = the_delivery()
    assert (delivery.state, delivery.attempt, delivery.response_code) == ("delivered", 4, 200)
    assert attempts_log(delivery.id) == [(1, 503), (2, 503), (3, 503), (4, 200)]
    assert all(a.finished_at >= a.started_at and a.error in (None, "answered 503") for a in delivery.attempts)
    assert db.session.get(WebhookEndpoint, endpoint.id).failing_since is None


def test_a_redelivered_event_arrives_again_with_the_same_id(app, receiver):
    add_endpoint(receiver.url)
    queue_test_event()
    assert deliver_due_webhooks() == 1
    delivered = the_delivery()
    assert delivered.state == "delivered"
    assert deliver_due_webhooks() == 0

    again = redeliver(delivered.id)
    assert (again.state, again.event.event_id) == ("pending", delivered.event.event_id)
    assert deliver_due_webhooks() == 1
    assert receiver.ids() == [delivered.event.event_id] * 2 and len(receiver.verified()) == 2
    assert attempts_log(delivered.id) == [(1, 200), (2, 200)]
    assert redeliver(delivered.id + 1000) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_receiver_on_the_servers_own_network_is_refused_at_delivery_unless_allowed(app, receiver, host):
    app.config["OUTBOUND_WEBHOOKS_ALLOW_PRIVATE"] = False
    add_endpoint(f"http://{host}:{receiver.port}/hooks/phoneapp")
    queue_test_event()
    start = utcnow()
    assert deliver_due_webhooks(now=start) == 1
    assert receiver.requests == []
    delivery = the_delivery()
    assert delivery.state == "pending" and delivery.next_attempt_at > start
    assert delivery.response_code is None and "loopback" in delivery.last_error
    assert "refused" in delivery.attempts[0].error and delivery.attempts[0].finished_at is not None

    app.config["OUTBOUND_WEBHOOKS_ALLOW_PRIVATE"] = True
    assert deliver_due_webhooks(now=start + timedelta(seconds=10)) == 1
    assert len(receiver.verified()) == 1 and receiver.requests[0].headers["host"] == f"{host}:{receiver.port}"
    assert the_delivery().state == "delivered"


def test_a_redirect_is_not_followed_and_counts_as_a_failed_attempt(app, receiver):
    receiver.answers = [302]
    receiver.redirect_to = f"http://127.0.0.1:{receiver.port}/elsewhere"
    add_endpoint(receiver.url)
    queue_test_event()
    assert deliver_due_webhooks() == 1
    assert [request.path for request in receiver.requests] == ["/hooks/phoneapp"]
    delivery = the_delivery()
    assert (delivery.state, delivery.response_code) == ("pending", 302)
    assert "not followed" in delivery.last_error and delivery.attempts[0].response_code == 302


def test_an_endpoint_failing_for_a_day_is_switched_off_with_an_alert_and_loses_nothing(app, receiver):
    receiver.default = 500
    endpoint = add_endpoint(receiver.url)
    queue_test_event("CA0001")
    start = utcnow()
    deliver_through(start, start + timedelta(hours=23))
    assert len(receiver.requests) == 7 and db.session.get(WebhookEndpoint, endpoint.id).is_active
    queue_test_event("CA0002")
    deliver_through(start + timedelta(hours=23), start + timedelta(hours=26))

    endpoint = db.session.get(WebhookEndpoint, endpoint.id)
    assert not endpoint.is_active and endpoint.disabled_at is not None
    assert "failed for 24 hours" in endpoint.disabled_reason and "answered 500" in endpoint.disabled_reason
    alert = db.session.scalars(sa.select(Alert)).one()
    assert (alert.kind, alert.severity, alert.resolved_at) == ("webhook_endpoint_disabled", "error", None)
    assert receiver.url in alert.message
    assert set(db.session.scalars(sa.select(WebhookDelivery.state))) == {"pending"}
    tried = len(receiver.requests)
    assert deliver_due_webhooks(now=start + timedelta(days=3)) == 0 and len(receiver.requests) == tried
    # What happens while it is off is owed to it too: its receiver is only down.
    queue_test_event("CA0003")
    db.session.commit()

    # The receiver is back and an admin switches the endpoint on: everything owed arrives.
    receiver.default = 200
    endpoint.is_active = True
    db.session.commit()
    assert deliver_due_webhooks(now=start + timedelta(days=3)) == 3
    arrived = {payload["data"]["twilio_call_sid"] for payload in receiver.verified()[tried:]}
    assert arrived == {"CA0001", "CA0002", "CA0003"}
    assert set(db.session.scalars(sa.select(WebhookDelivery.state))) == {"delivered"}
    db.session.expire_all()
    assert db.session.scalars(sa.select(Alert)).one().resolved_at is not None


def test_a_receiver_that_never_answers_well_gets_the_schedule_then_the_delivery_fails(app, receiver):
    receiver.default = 500
    add_endpoint(receiver.url)
    queue_test_event()
    start = utcnow()
    deliver_through(start, start + timedelta(days=3))
    delivery = the_delivery()
    assert (delivery.state, delivery.attempt) == ("failed", 8)
    tries = delivery.attempts
    gaps = [later.started_at - earlier.finished_at for earlier, later in zip(tries, tries[1:], strict=False)]
    expected = [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                timedelta(hours=5), timedelta(hours=10), timedelta(hours=10)]
    assert all(timedelta(0) <= gap - want <= timedelta(seconds=2) for gap, want in zip(gaps, expected, strict=True))
    assert len(receiver.requests) == 8 and len(set(receiver.ids())) == 1


def test_an_event_goes_to_the_endpoints_that_take_it_once_per_key(app, make_client, receiver):
    acme, other = make_client(name="Acme"), make_client(name="Other", phone="+14155550188")
    everything = add_endpoint(receiver.url)
    add_endpoint(receiver.url, events=["call.missed"])
    for_acme = add_endpoint(receiver.url, client_id=acme.id)
    add_endpoint(receiver.url, client_id=other.id)
    add_endpoint(receiver.url, is_active=False)

    assert queue_test_event("CA0001", client_id=acme.id) is not None
    assert queue_test_event("CA0001", client_id=acme.id) is None
    assert set(db.session.scalars(sa.select(WebhookDelivery.endpoint_id))) == {everything.id, for_acme.id}


def test_a_number_changing_colour_is_announced_once_with_the_old_and_new_status(app, make_client, make_number,
                                                                                 receiver):
    add_endpoint(receiver.url, events=["number.status_changed"])
    number = make_number(client=make_client())
    assert announce_number_statuses() == 0
    assert db.session.get(PhoneAssignment, number.id).announced_status == "yellow"

    number.is_active = False
    db.session.commit()
    assert announce_number_statuses() == 1
    assert announce_number_statuses() == 0
    number.is_active = True
    db.session.commit()
    assert announce_number_statuses() == 1
    assert deliver_due_webhooks() == 2

    switched_off, back_on = sorted(receiver.verified(), key=lambda p: p["data"]["number"]["status"]["colour"])
    assert switched_off["type"] == "number.status_changed"
    assert switched_off["data"]["number"]["status"] == {"colour": "grey", "label": "Inactive",
                                                       "reason": "Switched off by staff", "key": "inactive"}
    assert switched_off["data"]["previous_status"] == {"colour": "yellow", "label": "Pending setup", "reason": None}
    assert back_on["data"]["number"]["id"] == number.id and back_on["data"]["number"]["status"]["colour"] == "yellow"
    assert back_on["data"]["previous_status"] == {"colour": "grey", "label": "Inactive",
                                                  "reason": "Switched off by staff"}


def test_an_endpoint_switched_off_by_staff_is_owed_nothing_from_then_on(app, receiver):
    receiver.default = 500
    endpoint = add_endpoint(receiver.url)
    queue_test_event("CA0001")
    deliver_due_webhooks(now=utcnow())
    assert db.session.get(WebhookEndpoint, endpoint.id).failing_since is not None

    update_endpoint(db.session.get(WebhookEndpoint, endpoint.id), {"is_active": False}, allow_private=True)
    db.session.commit()
    queue_test_event("CA0002")

    owed = db.session.scalars(sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)).all()
    assert [delivery.event.payload["data"]["twilio_call_sid"] for delivery in owed] == ["CA0001"]
