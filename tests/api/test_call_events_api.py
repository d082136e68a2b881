"""A call's timeline in the API (every callback kept as received, with Twilio's sequence), and its notes and tags."""
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import jsonschema
import pytest
import sqlalchemy as sa

from phoneapp.api.openapi import openapi_document
from phoneapp.extensions import db
from phoneapp.models import CallEvent, CallRecord
from tests.support.api import assert_error
from tests.support.webhooks import CALLER, post_signed, setup_routing, voice_params

CALL_SID = "CA" + "a1" * 16
LEG_SID = "CA" + "b2" * 16
ACME_PHONE = "+14155550187"
# The leg's callbacks say they were sent a second apart, starting a minute ago.
SENT = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)


def leg_callback(sequence_number, status, **extra):
    """A status callback of the forwarded leg, as Twilio sends it to /twilio/dial-events."""
    return {"AccountSid": "AC" + "0" * 32, "CallSid": LEG_SID, "ParentCallSid": CALL_SID, "CallStatus": status,
            "Direction": "outbound-dial", "From": CALLER, "To": ACME_PHONE, "SequenceNumber": str(sequence_number),
            "CallbackSource": "call-progress-events",
            "Timestamp": format_datetime(SENT + timedelta(seconds=sequence_number), usegmt=True), **extra}


@pytest.fixture
def call(app):
    setup_routing(app)
    assert post_signed(app, "/twilio/voice", voice_params(call_sid=CALL_SID)).status_code == 200
    return db.session.scalars(sa.select(CallRecord).where(CallRecord.twilio_call_sid == CALL_SID)).one()


def schema_check(app, name):
    """A validator of the OpenAPI document's schema `name`, so answers are held to what the document says."""
    document = openapi_document()
    return jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                            "components": document["components"]})


# Sent in this order, arriving as: 0, 2, 1, 2 again (a retry), 3.
ARRIVALS = [(0, "initiated"), (2, "in-progress"), (1, "ringing"), (2, "in-progress"), (3, "completed")]


def test_callbacks_out_of_order_and_twice_are_all_kept_in_the_order_received(app, api, call):
    for number, status in ARRIVALS:
        extra = {"CallDuration": "42"} if status == "completed" else {}
        assert post_signed(app, "/twilio/dial-events", leg_callback(number, status, **extra)).status_code == 200
    final = dict(voice_params(call_sid=CALL_SID, CallStatus="completed", CallDuration="48"), SequenceNumber="0")
    assert post_signed(app, "/twilio/status", final).status_code == 200

    response = api.get(f"/api/call-records/{call.id}/events")
    assert response.status_code == 200
    body = response.get_json()
    schema_check(app, "CallEventPage").validate(body)
    items = body["items"]
    assert body["total"] == len(items) == 7
    assert [item["kind"] for item in items] == ["voice"] + ["dial_events"] * 5 + ["call_status"]
    assert [item["sequence_number"] for item in items] == [None, 0, 2, 1, 2, 3, 0]
    assert [item["params"].get("CallStatus") for item in items[1:6]] == [status for _, status in ARRIVALS]
    assert [item["repeat"] for item in items] == [False, False, False, False, True, False, False]
    assert [item["out_of_order"] for item in items] == [False, False, False, True, False, False, False]
    assert all(item["leg_sid"] == LEG_SID for item in items[1:6]) and items[0]["leg_sid"] is None
    assert items[1]["sent_at"] == SENT.strftime("%Y-%m-%dT%H:%M:%SZ") and items[0]["sent_at"] is None
    assert items[2]["sent_at"] == (SENT + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    received = [item["received_at"] for item in items]
    assert received == sorted(received)


def test_no_signature_or_secret_is_kept(app, api, call):
    token = app.config["TWILIO_AUTH_TOKEN"]
    assert post_signed(app, "/twilio/dial-events", leg_callback(0, "ringing", AuthToken=token)).status_code == 200
    stored = db.session.scalars(sa.select(CallEvent).where(CallEvent.call_sid == CALL_SID)).all()
    assert len(stored) == 2
    for event in stored:
        assert not any("signature" in key.lower() for key in event.params)
        assert "AuthToken" not in event.params
        assert token not in repr(event.params)
    answer = api.get(f"/api/call-records/{call.id}/events").get_data(as_text=True)
    assert token not in answer and "X-Twilio-Signature" not in answer


def test_the_timeline_pages_like_every_list(app, api, call):
    for number, status in ARRIVALS:
        post_signed(app, "/twilio/dial-events", leg_callback(number, status))
    second = api.get(f"/api/call-records/{call.id}/events?page=2&per_page=4").get_json()
    assert (second["page"], second["per_page"], second["total"]) == (2, 4, 6)
    assert [item["sequence_number"] for item in second["items"]] == [2, 3]
    assert_error(api.get(f"/api/call-records/{call.id}/events?sort=sideways"), 400)
    assert_error(api.get("/api/call-records/99999/events"), 404)


def test_notes_and_tags_are_changed_and_shown(app, api, call):
    response = api.patch(f"/api/call-records/{call.id}", {"notes": "Wants a quote for a boiler.",
                                                          "tags": ["Lead", "boiler", "lead"]})
    assert response.status_code == 200, response.get_json()
    schema_check(app, "CallRecord").validate(response.get_json())
    assert response.get_json()["tags"] == ["lead", "boiler"]
    again = api.get(f"/api/call-records/{call.id}").get_json()
    assert again["notes"] == "Wants a quote for a boiler." and again["tags"] == ["lead", "boiler"]

    only_tags = api.patch(f"/api/call-records/{call.id}", {"tags": ["spam"]}).get_json()
    assert only_tags["notes"] == "Wants a quote for a boiler." and only_tags["tags"] == ["spam"]
    cleared = api.patch(f"/api/call-records/{call.id}", {"notes": None, "tags": None}).get_json()
    assert cleared["notes"] == "" and cleared["tags"] == []


@pytest.mark.parametrize("body, field", [
    ({"status": "completed"}, "status"),
    ({"notes": "fine", "from_number": "+12025550100"}, "from_number"),
    ({"tags": "lead"}, "tags"),
    ({"tags": ["two words"]}, "tags"),
    ({"tags": [""]}, "tags"),
    ({"tags": ["x" * 31]}, "tags"),
    ({"tags": [f"tag{n}" for n in range(21)]}, "tags"),
    ({"tags": ["lead", 7]}, "tags"),
    ({"notes": "x" * 5001}, "notes"),
    ({"notes": 12}, "notes"),
])
def test_other_fields_and_bad_values_are_refused_and_nothing_is_saved(app, api, call, body, field):
    api.patch(f"/api/call-records/{call.id}", {"notes": "before", "tags": ["before"]})
    body = assert_error(api.patch(f"/api/call-records/{call.id}", body), 400)
    assert field in body["details"], body
    db.session.expire_all()
    record = db.session.get(CallRecord, call.id)
    assert (record.notes, record.tags) == ("before", ["before"])


def test_changes_need_a_user(app, call):
    response = app.test_client().patch(f"/api/call-records/{call.id}", json={"notes": "x"})
    assert_error(response, 401)
    assert_error(app.test_client().get(f"/api/call-records/{call.id}/events"), 401)


def test_the_document_describes_both(app):
    paths = openapi_document()["paths"]
    assert "patch" in paths["/api/call-records/{call_id}"]
    assert "get" in paths["/api/call-records/{call_id}/events"]
