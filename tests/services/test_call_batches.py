"""Logged webhooks written many to a transaction leave the same calls and alerts as written one by one."""
from datetime import timedelta

import sqlalchemy as sa

from phoneapp.domain.call_plan import decision_of
from phoneapp.extensions import db
from phoneapp.models import Alert, CallEvent, CallRecord, utcnow
from phoneapp.services import assignments
from phoneapp.services.call_context import plan_for
from phoneapp.services.routing_table import UNROUTED_ALERT
from phoneapp.services.webhook_events import inbound_call_event, webhook_event, write_batch
from tests.support.webhooks import CALLER, voice_params

# What only says when a row was written, not what it says of the call.
NOT_COMPARED = {"id", "twilio_call_sid", "created_at", "updated_at"}


def sid(n):
    return f"CA{n:032d}"


def voice_event(n, number, at, **params):
    plan, context = plan_for(number.phone_number, CALLER)
    event = inbound_call_event(voice_params(call_sid=sid(n), to=number.phone_number, **params), decision_of(plan),
                               context.entry, from_cache=context.from_cache)
    return {**event, "received_at": at.isoformat()}


def status_event(n, number, at, status="completed"):
    event = webhook_event("call_status", {"CallSid": sid(n), "CallStatus": status, "CallDuration": "30",
                                          "From": CALLER, "To": number.phone_number})
    return {**event, "route": "call_status", "received_at": at.isoformat()}


def record(n):
    db.session.expire_all()
    row = db.session.scalars(sa.select(CallRecord).where(CallRecord.twilio_call_sid == sid(n))).one()
    return {column: value for column, value in row.__dict__.items()
            if not column.startswith("_") and column not in NOT_COMPARED}


def unrouted_alert(number):
    db.session.expire_all()
    return db.session.scalars(sa.select(Alert).where(Alert.kind == UNROUTED_ALERT,
                                                     Alert.subject == number.phone_number)
                              .order_by(Alert.id.desc())).first()


def test_a_call_heard_of_by_its_status_first_is_the_same_record_in_one_batch_as_alone(app, make_client,
                                                                                     make_number):
    number = make_number(client=make_client())
    at = utcnow()
    with app.test_request_context():
        one, two = status_event(1, number, at + timedelta(seconds=40)), voice_event(1, number, at)
        write_batch([one, two])
        write_batch([status_event(2, number, at + timedelta(seconds=40))])
        write_batch([voice_event(2, number, at)])

        alone = record(2)
        assert alone["status"] == "completed" and alone["routed_by"] == "assignment"
        assert alone["first_time_caller"] is False, "the same caller's call 1 rang no later"
        assert {**record(1), "first_time_caller": False} == alone
        assert record(1)["first_time_caller"] is True
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CallEvent)) == 4


def test_a_new_call_in_a_batch_keeps_what_its_voice_webhook_said(app, make_client, make_number):
    number = make_number(client=make_client())
    with app.test_request_context():
        write_batch([voice_event(1, number, utcnow(), CallStatus="in-progress"),
                     voice_event(2, number, utcnow(), From="+13125550178")])

        assert (record(1)["status"], record(1)["from_number"], record(1)["client_id"]) == (
            "in-progress", CALLER, number.client_id)
        assert (record(2)["status"], record(2)["from_number"]) == ("ringing", "+13125550178")
        assert record(1)["first_time_caller"] is record(2)["first_time_caller"] is True


def test_a_batch_leaves_a_numbers_unrouted_alert_as_its_last_call_left_it(app, make_client, make_number):
    number = make_number()
    at = utcnow()
    with app.test_request_context():
        unrouted = [voice_event(n, number, at) for n in (1, 2)]
        assert unrouted[0]["decision"]["reason"] is not None
        assignments.update_assignment(number, {"client_id": make_client().id})
        routed = [voice_event(n, number, at) for n in (3, 4)]
        assert routed[0]["decision"]["reason"] is None

        write_batch([unrouted[0], routed[0]])
        assert unrouted_alert(number).resolved_at is not None, "the call routed last closed it"

        write_batch([routed[1], unrouted[1]])
        alert = unrouted_alert(number)
        assert alert.resolved_at is None, "the call left unrouted last opened it again"


def test_calls_routed_from_the_cache_leave_off_a_number_or_client_deleted_before_they_are_written(
        app, make_client, make_number):
    kept_client, gone_client = make_client(), make_client(name="Gone Ltd", phone="+14155550199")
    gone_number, kept_number = make_number(client=kept_client), make_number(client=gone_client)
    at = utcnow()
    with app.test_request_context():
        # Routed from the routing cache, as every call a web process answers from memory is.
        events = [{**voice_event(n, number, at), "from_cache": True} for n, number in ((1, gone_number),
                                                                                     (2, kept_number))]
        kept_client_id = kept_client.id
        db.session.delete(gone_number)
        db.session.delete(gone_client)
        db.session.commit()

        write_batch(events)

        assert (record(1)["phone_assignment_id"], record(1)["client_id"]) == (None, kept_client_id)
        assert (record(2)["phone_assignment_id"], record(2)["client_id"]) == (kept_number.id, None)
