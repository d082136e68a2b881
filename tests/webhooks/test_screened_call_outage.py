"""A screened call (whisper, press 1, failover) while the database cannot be reached: every route answers from the
routing cache and its own URL, in Twilio's time, and the call is written as it happened once the database is back."""
import time
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import sqlalchemy as sa

from phoneapp import create_app
from phoneapp.domain.call_status import outcome_of
from phoneapp.extensions import db
from phoneapp.models import CallEvent, CallRecord, Client
from phoneapp.services.routing_table import refresh_routing_cache
from phoneapp.services.webhook_events import webhook_log, write_orphaned_webhooks
from tests.support.apps import base_environ, make_app
from tests.support.webhooks import CALLER, down_app, post_signed, setup_routing, voice_params

FIRST, SECOND = "+14155550187", "+14155550188"
CALL = "CA" + "5" * 32
FIRST_LEG, SECOND_LEG = "CA" + "6" * 32, "CA" + "7" * 32


def screened_client(app):
    assert setup_routing(app).target == FIRST
    with app.app_context():
        client = db.session.scalars(sa.select(Client)).one()
        client.failover_numbers, client.whisper, client.require_accept = [SECOND], True, True
        db.session.commit()
        refresh_routing_cache()
        db.session.remove()


def timed_post(app, path, params):
    started = time.monotonic()
    response = post_signed(app, path, params)
    took = time.monotonic() - started
    assert response.status_code == 200, response.data
    return ET.fromstring(response.data), took


def path_of(url):
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def leg(sid, target, **extra):
    return {"CallSid": sid, "ParentCallSid": CALL, "From": CALLER, "To": target, "CallStatus": "in-progress",
            "Direction": "outbound-dial", **extra}


def test_whisper_accept_and_failover_answer_without_the_database_and_are_written_when_it_returns(
        tmp_path, migrated_postgres):
    screened_client(make_app(tmp_path))
    down = down_app(tmp_path)
    with down.app_context():
        answers = []
        dialled, took = timed_post(down, "/twilio/voice", voice_params(call_sid=CALL))
        answers.append(took)
        first = dialled.find("Dial/Number")
        assert first.text == FIRST
        # The first phone's voicemail picks up: it hears the whisper and presses nothing.
        whisper, took = timed_post(down, path_of(first.get("url")), leg(FIRST_LEG, FIRST))
        answers.append(took)
        assert [verb.tag for verb in whisper] == ["Gather", "Hangup"]
        assert whisper.find("Gather/Say").text == "Call from (415) 555-0100. Press 1 to accept."
        action = path_of(dialled.find("Dial").get("action"))
        next_dial, took = timed_post(down, action, voice_params(
            call_sid=CALL, CallStatus="in-progress", DialCallStatus="completed", DialBridged="false",
            DialCallSid=FIRST_LEG, DialCallDuration="5"))
        answers.append(took)
        second = next_dial.find("Dial/Number")
        assert second.text == SECOND, "the next target rings, from the routing cache"
        # The second is a person: the whisper, then 1.
        whisper, took = timed_post(down, path_of(second.get("url")), leg(SECOND_LEG, SECOND))
        answers.append(took)
        accepted, took = timed_post(down, path_of(whisper.find("Gather").get("action")),
                                    leg(SECOND_LEG, SECOND, Digits="1"))
        answers.append(took)
        assert list(accepted) == [], "an empty document puts the two through"
        done, took = timed_post(down, path_of(next_dial.find("Dial").get("action")), voice_params(
            call_sid=CALL, CallStatus="in-progress", DialCallStatus="completed", DialBridged="true",
            DialCallSid=SECOND_LEG, DialCallDuration="40"))
        answers.append(took)
        assert [verb.tag for verb in done] == ["Hangup"]
        assert max(answers) < 1.0, f"slowest answer during the outage took {max(answers):.2f} s"
        assert webhook_log().waiting()[0] == 6, "every request kept on disk"

    up = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance")}, environ=base_environ(tmp_path))
    with down.app_context():
        webhook_log().close()
    with up.app_context():
        result = write_orphaned_webhooks()
        assert (result.written, result.remaining, result.quarantined) == (6, 0, 0)
        record = db.session.scalars(sa.select(CallRecord)).one()
        assert (outcome_of(record), record.answered_by, record.accepted_by, record.route_rule) == (
            "answered", SECOND, SECOND, "failover 2")
        assert record.requires_accept
        kinds = db.session.scalars(sa.select(CallEvent.kind).where(CallEvent.call_sid == CALL)
                                   .order_by(CallEvent.received_at, CallEvent.id)).all()
        assert kinds == ["voice", "whisper", "dial_status", "whisper", "accept", "dial_status"]
