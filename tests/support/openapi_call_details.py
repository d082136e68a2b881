"""A call's notes, tags and timeline: their scenarios for the OpenAPI document test, held to the document."""
from phoneapp.extensions import db
from phoneapp.models import utcnow
from phoneapp.services.call_events import keep_call_events


def update_call(check, env):
    values = {"call_id": env.make_call(env.make_number(), status="completed").id}
    check(200, values, body={"notes": "Asked for a quote.", "tags": ["lead", "boiler"]})
    check(200, values, body={"notes": None, "tags": None})
    check(400, values, body={"status": "completed"})
    check(400, values, body={"tags": ["two words"]})
    check(404, {"call_id": 999}, body={"notes": "x"})
    return values


def list_call_events(check, env):
    call = env.make_call(env.make_number(), status="completed")
    for number, status in ((0, "ringing"), (2, "completed"), (1, "in-progress"), (2, "completed")):
        keep_call_events([{"kind": "dial_event", "route": "dial_events", "received_at": utcnow().isoformat(),
                           "params": {"CallSid": "CA" + "e5" * 16, "ParentCallSid": call.twilio_call_sid,
                                      "CallStatus": status, "SequenceNumber": str(number)}}])
    db.session.commit()
    values = {"call_id": call.id}
    check(200, values)
    check(200, values, query_string={"page": 2, "per_page": 3})
    check(400, values, query_string={"per_page": 0})
    check(404, {"call_id": 999})
    return values


CALL_DETAIL_SCENARIOS = {
    ("/api/call-records/{call_id}", "patch"): update_call,
    ("/api/call-records/{call_id}/events", "get"): list_call_events,
}
