"""The plan for a call under its client's rules, and the TwiML of every plan, parsed as Twilio parses it."""
import xml.etree.ElementTree as ET
from datetime import datetime
from zoneinfo import ZoneInfo

from phoneapp.domain.block_list import BlockEntry
from phoneapp.domain.business_hours import Schedule, parse_hours
from phoneapp.domain.call_plan import ClientRules, plan_call, targets_to_ring
from phoneapp.domain.routing import RouteEntry
from phoneapp.twilio.twiml import accept_twiml, dial_twiml, reject_twiml, voicemail_twiml, whisper_twiml

NEW_YORK = ZoneInfo("America/New_York")
TRACKING, CALLER, TARGET = "+14155550100", "+12025550143", "+14155550187"
SECOND, THIRD, AFTER_HOURS = "+14155550188", "+14155550189", "+14155550190"
ENTRY = RouteEntry(phone_number=TRACKING, assignment_id=1, client_id=7, is_active=True, target=TARGET)
NINE_TO_FIVE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
WEEKDAYS = Schedule(NEW_YORK, parse_hours(NINE_TO_FIVE)[0])
MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=NEW_YORK)
MONDAY_NIGHT = datetime(2026, 11, 23, 20, 0, tzinfo=NEW_YORK)
URLS = {"action_url": "https://calls.example.test/twilio/dial-status",
        "events_url": "https://calls.example.test/twilio/dial-events"}


def plan(rules=None, blocked=(), now=MONDAY_NOON, **options):
    return plan_call(ENTRY, rules, list(blocked), CALLER, now, tracking_numbers=frozenset({TRACKING}), **options)


def twiml_of(plan_, attempt=0, whisper_url_for=None):
    """The document phoneapp answers with for `plan_`, as the webhooks build it."""
    if plan_.action == "reject":
        return ET.fromstring(reject_twiml())
    if plan_.action == "voicemail":
        return ET.fromstring(voicemail_twiml(recording_url="https://calls.example.test/twilio/recording",
                                             greeting=plan_.greeting))
    return ET.fromstring(dial_twiml(targets_to_ring(plan_, attempt), caller_id=CALLER, timeout=plan_.ring_seconds,
                                    whisper_url_for=whisper_url_for, **URLS))


def rung(document):
    return [number.text for number in document.findall("Dial/Number")]


def test_a_blocked_caller_is_rejected_as_busy_for_every_client_or_only_the_clients_own():
    account_wide = plan(blocked=[BlockEntry("+1202*")])
    assert (account_wide.action, account_wide.rule) == ("reject", "blocked")
    assert twiml_of(account_wide).find("Reject").get("reason") == "busy"
    assert plan(blocked=[BlockEntry(CALLER, client_id=8)]).action == "dial"  # another client's entry


def test_open_hours_ring_the_target_with_the_clients_ring_seconds():
    open_ = plan(ClientRules(schedule=WEEKDAYS, ring_seconds=12))
    assert (open_.action, open_.rule, open_.targets) == ("dial", "open", (TARGET,))
    dial = twiml_of(open_).find("Dial")
    assert dial.get("timeout") == "12" and rung(twiml_of(open_)) == [TARGET]
    assert plan(ClientRules()).ring_seconds == 20, "DIAL_TIMEOUT when the client sets none"


def test_after_hours_forward_to_the_after_hours_number_or_straight_to_voicemail_with_the_greeting():
    forward = plan(ClientRules(schedule=WEEKDAYS, after_hours="forward", after_hours_number=AFTER_HOURS),
                   now=MONDAY_NIGHT)
    assert (forward.action, forward.rule, rung(twiml_of(forward))) == ("dial", "after-hours", [AFTER_HOURS])
    voicemail = plan(ClientRules(schedule=WEEKDAYS, greeting="Acme is closed; leave a message."), now=MONDAY_NIGHT)
    assert (voicemail.action, voicemail.rule) == ("voicemail", "after-hours")
    document = twiml_of(voicemail)
    assert document.find("Say").text == "Acme is closed; leave a message." and document.find("Record") is not None


def test_sequential_failover_rings_each_target_in_turn_and_simultaneous_rings_them_all_at_once():
    sequential = plan(ClientRules(failover_numbers=(SECOND, THIRD), ring_seconds=15))
    assert [rung(twiml_of(sequential, attempt)) for attempt in range(4)] == [[TARGET], [SECOND], [THIRD], []]
    simultaneous = plan(ClientRules(failover_numbers=(SECOND, THIRD), ring_mode="simultaneous"))
    assert rung(twiml_of(simultaneous)) == [TARGET, SECOND, THIRD]
    assert rung(twiml_of(simultaneous, 1)) == []


def test_a_failover_number_that_is_a_tracking_number_is_skipped_not_dialled():
    looping = plan(ClientRules(failover_numbers=(TRACKING, SECOND)))
    assert (looping.targets, looping.skipped) == ((TARGET, SECOND), (TRACKING,))


def test_whisper_announces_the_call_and_with_accept_waits_for_1_else_hangs_up_the_called_leg():
    whispered = plan(ClientRules(whisper=True, require_accept=True))
    whisper_at = "https://calls.example.test/twilio/whisper?to="
    number = twiml_of(whispered, whisper_url_for=lambda target: whisper_at + target).find("Dial/Number")
    assert (number.get("url"), number.get("method")) == (whisper_at + TARGET, "POST")

    announce_only = ET.fromstring(whisper_twiml("Call from Acme main line"))
    assert [verb.tag for verb in announce_only] == ["Say"]
    with_accept = ET.fromstring(whisper_twiml("Call from Acme main line",
                                              accept_url="https://calls.example.test/twilio/accept"))
    gather = with_accept.find("Gather")
    assert (gather.get("numDigits"), gather.get("action")) == ("1", "https://calls.example.test/twilio/accept")
    assert "Press 1" in gather.find("Say").text
    assert [verb.tag for verb in with_accept] == ["Gather", "Hangup"]
    assert [verb.tag for verb in ET.fromstring(accept_twiml("1"))] == []
    assert [verb.tag for verb in ET.fromstring(accept_twiml("2"))] == ["Hangup"]


def test_a_number_nobody_can_take_says_the_message_or_goes_to_the_default_number():
    unassigned = RouteEntry(phone_number=TRACKING, assignment_id=1, client_id=None, is_active=True, target=None)
    message = plan_call(unassigned, None, [], CALLER, MONDAY_NOON)
    assert (message.action, message.rule, message.reason) == ("message", "message",
                                                              "number is not assigned to a client")
    default = plan_call(unassigned, None, [], CALLER, MONDAY_NOON, default_number=SECOND)
    assert (default.action, default.rule, default.targets) == ("dial", "default", (SECOND,))
