"""Inbound calls as Twilio delivers them: every signed request of each kind of call, and the record it must end as.

A sequence is data: its steps (which request, when it reaches phoneapp, what Twilio put in it) and the record
expected at the end. `requests_of` turns it into concrete requests for one replay, with SIDs of its own and its
own start time, so replays on one database never meet. `deliver` posts a request the way Twilio does (signed for
the public URL) with the clock set to the moment it arrives; `read_call` reads the record back, its outcome
three ways (the Python rule, the SQL twin, the API), and the call's events.

The timeline follows the TwiML phoneapp answers with: a <Dial> whose <Number> reports initiated, ringing,
answered and completed to /twilio/dial-events and whose action is /twilio/dial-status; on a failed forward,
<Say> then <Record> whose action and recordingStatusCallback are /twilio/recording?kind=voicemail.
"""
from __future__ import annotations

import itertools
import math
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import sqlalchemy as sa
import time_machine

from phoneapp.domain.call_status import outcome_of
from phoneapp.extensions import db
from phoneapp.models import CallEvent, CallRecord, PhoneAssignment
from phoneapp.services.call_outcomes import outcome_expression
from tests.support.apps import PUBLIC_BASE_URL
from tests.support.webhooks import CALLER, TRACKING, post_signed

CLIENT_PHONE = "+14155550187"  # Acme's phone, where tests.support.webhooks.setup_routing forwards TRACKING
ACCOUNT_SID = "AC" + "0" * 32
T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
# Wider than the longest call in the corpus, so no two replays overlap in time.
REPLAY_SPACING = timedelta(days=2)
# Twilio's Timestamp has whole seconds, and so does everything staff see.
TIME_TOLERANCE = 1.0
TIMES = ("started", "answered", "ended")

VOICE, FALLBACK, STATUS = "/twilio/voice", "/twilio/fallback", "/twilio/status"
DIAL_EVENTS, DIAL_ACTION, VOICEMAIL = "/twilio/dial-events", "/twilio/dial-status", "/twilio/recording?kind=voicemail"

# What phoneapp's answer to a step must be, where it matters.
DIALS, OFFERS_VOICEMAIL, NO_VOICEMAIL = "dials", "offers voicemail", "no voicemail"


# -- the corpus as data --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One request Twilio makes during a call. `at`: seconds after the call started when it reaches phoneapp;
    `sent`: the moment its Timestamp names (None: Twilio sends no Timestamp on this request)."""

    name: str
    at: float
    route: str
    kind: str
    fields: dict = field(default_factory=dict)
    sent: float | None = None
    answer: str | None = None


@dataclass(frozen=True)
class Expected:
    """The record a sequence ends as; times in seconds after the call started, None where there is none."""

    outcome: str
    started: float = 0.0
    answered: float | None = None
    ended: float | None = None
    duration: int | None = None
    voicemail_duration: int | None = None  # None: no voicemail at all; 0: Twilio said the message was empty
    caller_hung_up: bool = False
    error_code: str | None = None
    error_url: str | None = None
    status: str = "completed"
    # Only where the corpus says how the end became known: a call whose final callback never came must not
    # claim to have been ended by it.
    ended_by_final_callback: bool | None = None


@dataclass(frozen=True)
class CallSequence:
    """`essential`: groups of step names; a subset of the steps keeps the outcome when it keeps at least one
    step of every group."""

    name: str
    steps: tuple[Step, ...]
    expected: Expected
    essential: tuple[frozenset[str], ...]


def voice(at=0.0):
    return Step("voice", at, VOICE, "voice", answer=DIALS)


def fallback(at=0.0, error_code="11200"):
    # Twilio names what went wrong with the voice URL and which URL it was.
    return Step("fallback", at, FALLBACK, "fallback",
                {"ErrorCode": error_code, "ErrorUrl": PUBLIC_BASE_URL + VOICE}, answer=DIALS)


def leg(status, at, duration=None):
    """A status callback of the forwarded leg; the terminal one carries the leg's CallDuration."""
    fields = {"CallStatus": status}
    if duration is not None:
        fields.update(CallDuration=str(duration), Duration=str(math.ceil(duration / 60)))
    return Step(f"leg {status}", at, DIAL_EVENTS, "leg", fields, sent=math.floor(at))


def dial_action(dial_status, at, duration=0, caller_gone=False):
    """The <Dial action>. While the caller is still on the line the call is in progress; a caller who hung up
    while it rang makes Twilio report the call completed (with the leg canceled, or no-answer if it timed out)."""
    fields = {"CallStatus": "completed" if caller_gone else "in-progress", "DialCallStatus": dial_status,
              "DialCallDuration": str(duration), "DialBridged": "true" if dial_status == "completed" else "false"}
    answer = OFFERS_VOICEMAIL if dial_status in ("busy", "no-answer", "failed") and not caller_gone else NO_VOICEMAIL
    return Step("dial action", at, DIAL_ACTION, "dial action", fields, answer=answer)


def record_action(at, seconds):
    """The <Record action>: the caller hung up to end the message, so Twilio reports the call completed."""
    return Step("record action", at, VOICEMAIL, "record action",
                {"CallStatus": "completed", "RecordingDuration": str(seconds), "Digits": "hangup"})


def recording_status(status, at, seconds):
    return Step(f"recording {status}", at, VOICEMAIL, "recording status",
                {"RecordingStatus": status, "RecordingDuration": str(seconds)})


def final(at, duration):
    """The number's own status callback, sent once the call is over: it happened `duration` s after the start."""
    return Step("final", at, STATUS, "final",
                {"CallStatus": "completed", "CallDuration": str(duration),
                 "Duration": str(math.ceil(duration / 60))}, sent=duration)


def answered_steps(talk=42, end=48, first=voice()):
    """A forward picked up after ringing 5 s and bridged for `talk` s, the caller hanging up at `end`."""
    return (first, leg("initiated", 0.5), leg("ringing", 1), leg("in-progress", 6), leg("completed", end, talk),
            dial_action("completed", end + 0.2, talk), final(end + 0.5, end))


def unanswered_steps(leg_status, at):
    """A forward that rang and ended `leg_status` at `at` (the forward's result follows 0.2 s later)."""
    return (voice(), leg("initiated", 0.5), leg("ringing", 1), leg(leg_status, at, 0),
            dial_action(leg_status, at + 0.2))


def without(steps, *names):
    return tuple(step for step in steps if step.name not in names)


ANSWER_EVIDENCE = frozenset({"leg in-progress", "leg completed", "dial action"})
# The call is over once Twilio says so, or once phoneapp answered its last TwiML with <Hangup>. Until then a call
# nobody took is in progress: a <Dial action> answered with the voicemail prompt has the caller still on the line.
OVER = frozenset({"dial action", "final"})
OVER_AFTER_VOICEMAIL = frozenset({"record action", "final"})
VOICEMAIL_LEFT = frozenset({"record action", "recording completed"})

CORPUS = (
    CallSequence(
        "answered", answered_steps(),
        Expected("answered", answered=6, ended=48, duration=48),
        (ANSWER_EVIDENCE, OVER)),
    CallSequence(
        "busy, voicemail left",
        unanswered_steps("busy", 3) + (record_action(20.1, 14), recording_status("completed", 20.4, 14),
                                       final(20.5, 20)),
        Expected("voicemail", ended=20, duration=20, voicemail_duration=14),
        (VOICEMAIL_LEFT, OVER_AFTER_VOICEMAIL)),
    CallSequence(
        "no answer, voicemail left",
        unanswered_steps("no-answer", 30) + (record_action(50.1, 14), recording_status("completed", 50.4, 14),
                                             final(50.5, 50)),
        Expected("voicemail", ended=50, duration=50, voicemail_duration=14),
        (VOICEMAIL_LEFT, OVER_AFTER_VOICEMAIL)),
    CallSequence(
        # The caller hears the prompt and hangs up at the beep: nothing was recorded, Twilio makes no Record action.
        "no answer, caller hangs up at the beep",
        unanswered_steps("no-answer", 30) + (final(36.4, 36),),
        Expected("missed", ended=36, duration=36),
        (frozenset({"final"}),)),
    CallSequence(
        "caller hangs up while it rings (leg canceled)",
        (voice(), leg("initiated", 0.5), leg("ringing", 1), leg("canceled", 10, 0),
         dial_action("canceled", 10.1, caller_gone=True), final(10.3, 10)),
        Expected("missed", ended=10, duration=10, caller_hung_up=True),
        (OVER,)),
    CallSequence(
        "caller hangs up while it rings (leg no-answer)",
        (voice(), leg("initiated", 0.5), leg("ringing", 1), leg("no-answer", 12, 0),
         dial_action("no-answer", 12.1, caller_gone=True), final(12.3, 12)),
        Expected("missed", ended=12, duration=12, caller_hung_up=True),
        (OVER,)),
    CallSequence(
        # Twilio still links a recording of nothing; a 0-second message is no voicemail.
        "empty voicemail",
        unanswered_steps("busy", 3) + (record_action(9.1, 0), final(9.4, 9)),
        Expected("missed", ended=9, duration=9, voicemail_duration=0),
        (OVER_AFTER_VOICEMAIL,)),
    CallSequence(
        # The Record action counts 3 s, but the file turns out to hold no audio: Twilio reports it absent, later.
        "voicemail reported absent",
        unanswered_steps("busy", 3) + (record_action(12.1, 3), final(12.4, 12), recording_status("absent", 14, 0)),
        Expected("missed", ended=12, duration=12, voicemail_duration=0),
        (frozenset({"recording absent"}), OVER_AFTER_VOICEMAIL)),
    CallSequence(
        "voice webhook lost, fallback answered",
        answered_steps(first=fallback()),
        Expected("answered", answered=6, ended=48, duration=48, error_code="11200",
                 error_url=PUBLIC_BASE_URL + VOICE),
        (ANSWER_EVIDENCE, OVER)),
    CallSequence(
        # Twilio could reach neither URL: it told the caller so and hung up; only the number's callback came.
        "voice webhook and fallback lost",
        (final(2.3, 2),),
        Expected("missed", ended=2, duration=2),
        (frozenset({"final"}),)),
    CallSequence(
        "dial action lost, answered",
        without(answered_steps(), "dial action"),
        Expected("answered", answered=6, ended=48, duration=48),
        (frozenset({"leg in-progress", "leg completed"}), frozenset({"final"}))),
    CallSequence(
        # Twilio could not fetch what follows the <Dial>: it apologised and hung up.
        "dial action lost, busy",
        (voice(), leg("initiated", 0.5), leg("ringing", 1), leg("busy", 3, 0), final(5.3, 5)),
        Expected("missed", ended=5, duration=5),
        (frozenset({"final"}),)),
    CallSequence(
        # phoneapp answered the <Dial action> with <Hangup>: the call ended there, whatever came after.
        "final status lost",
        without(answered_steps(), "final"),
        Expected("answered", answered=6, ended=48.2, duration=48, ended_by_final_callback=False),
        (frozenset({"dial action"}),)),
    CallSequence(
        "answered, 24 hours long",
        answered_steps(talk=86394, end=86400),
        Expected("answered", answered=6, ended=86400, duration=86400),
        (ANSWER_EVIDENCE, OVER)),
)
SEQUENCES = {sequence.name: sequence for sequence in CORPUS}


# -- one replay: concrete requests ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    """The SIDs and start of one replay."""

    sid: str
    leg_sid: str
    recording_sid: str
    start: datetime

    def moment(self, offset):
        return self.start + timedelta(seconds=offset)


@dataclass(frozen=True)
class Request:
    step: Step
    arrives: datetime
    path: str
    params: dict


_starts = itertools.count()


def new_call():
    """A call no other replay uses: fresh SIDs, and a start of its own after every earlier replay's."""
    def sid(prefix):
        return prefix + uuid.uuid4().hex

    return Call(sid("CA"), sid("CA"), sid("RE"), T0 + next(_starts) * REPLAY_SPACING)


def rfc2822(moment):
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def requests_of(steps, call):
    """The requests Twilio makes for `steps` in `call`; the forwarded leg numbers its callbacks 0, 1, 2…"""
    leg_sequence = itertools.count()
    return [Request(step, call.moment(step.at), step.route,
                    _params(step, call, next(leg_sequence) if step.kind == "leg" else 0))
            for step in steps]


def _inbound(call, status):
    """What every request about the inbound call itself carries."""
    params = {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": call.sid, "CallStatus": status,
              "Direction": "inbound", "From": CALLER, "To": TRACKING, "Caller": CALLER, "Called": TRACKING}
    for prefix, (city, state, zip_code) in (("From", ("WASHINGTON", "DC", "20001")),
                                            ("Caller", ("WASHINGTON", "DC", "20001")),
                                            ("To", ("SAN FRANCISCO", "CA", "")),
                                            ("Called", ("SAN FRANCISCO", "CA", ""))):
        params.update({prefix + "City": city, prefix + "State": state, prefix + "Zip": zip_code,
                       prefix + "Country": "US"})
    return params


def _recording_url(call):
    return f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{call.recording_sid}"


def _params(step, call, sequence_number):
    if step.kind in ("voice", "fallback"):
        params = _inbound(call, "ringing")
    elif step.kind == "leg":
        # The <Dial> has no callerId of its own choosing: the caller's number is shown to the target.
        params = {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": call.leg_sid,
                  "ParentCallSid": call.sid, "Direction": "outbound-dial", "From": CALLER, "To": CLIENT_PHONE,
                  "Caller": CALLER, "Called": CLIENT_PHONE, "CallbackSource": "call-progress-events",
                  "SequenceNumber": str(sequence_number)}
    elif step.kind == "dial action":
        params = dict(_inbound(call, "in-progress"), DialCallSid=call.leg_sid)
    elif step.kind == "record action":
        params = dict(_inbound(call, "completed"), RecordingUrl=_recording_url(call), RecordingSid=call.recording_sid)
    elif step.kind == "recording status":
        seconds = int(step.fields["RecordingDuration"])
        params = {"AccountSid": ACCOUNT_SID, "CallSid": call.sid, "RecordingSid": call.recording_sid,
                  "RecordingUrl": _recording_url(call), "RecordingChannels": "1", "RecordingSource": "RecordVerb",
                  "RecordingStartTime": rfc2822(call.moment(step.at - seconds)), "ErrorCode": "0"}
    elif step.kind == "final":
        params = dict(_inbound(call, "completed"), CallbackSource="call-progress-events", SequenceNumber="0")
    else:
        raise ValueError(f"unknown step kind {step.kind!r}")
    params.update(step.fields)
    if step.sent is not None:
        params["Timestamp"] = rfc2822(call.moment(step.sent))
    return params


# -- delivering and reading back -----------------------------------------------------------------------------

def deliver(app, request):
    """POST `request` signed as Twilio signs it, with the app's clock at the moment it arrives."""
    with time_machine.travel(request.arrives, tick=False):
        response = post_signed(app, request.path, request.params)
    assert response.status_code == 200, (request.step.name, response.status_code, response.get_data(as_text=True))
    return response


def answer_problem(step, response):
    """What is wrong with phoneapp's TwiML answer to `step`, or None."""
    if step.answer is None:
        return None
    document = ET.fromstring(response.data)
    verbs = [element.tag for element in document.iter()]
    if step.answer == DIALS:
        number = document.find("Dial/Number")
        if number is None or (number.text or "").strip() != CLIENT_PHONE:
            return f"{step.name}: expected a <Dial> to {CLIENT_PHONE}, got {response.data!r}"
    elif step.answer == OFFERS_VOICEMAIL and "Record" not in verbs:
        return f"{step.name}: expected voicemail (<Record>), got {response.data!r}"
    elif step.answer == NO_VOICEMAIL and "Record" in verbs:
        return f"{step.name}: the caller has gone, yet voicemail is offered: {response.data!r}"
    return None


def tracking_number():
    return db.session.scalars(sa.select(PhoneAssignment).where(PhoneAssignment.phone_number == TRACKING)).one()


def call_status(sid):
    return db.session.scalar(sa.select(CallRecord.status).where(CallRecord.twilio_call_sid == sid))


def read_call(api, call):
    """The record of `call` as comparable values (times in seconds after its start), its outcome read three ways
    that must agree, and its events."""
    db.session.expire_all()
    record = db.session.scalars(sa.select(CallRecord).where(CallRecord.twilio_call_sid == call.sid)).one_or_none()
    assert record is not None, f"no record of call {call.sid}"
    in_sql = db.session.scalar(sa.select(outcome_expression()).where(CallRecord.id == record.id))
    in_api = _api_outcome(api, record)
    in_python = outcome_of(record)
    assert in_python == in_sql == in_api, f"outcome: Python {in_python!r}, SQL {in_sql!r}, API {in_api!r}"

    def offset(moment):
        return None if moment is None else (moment - call.start.replace(tzinfo=None)).total_seconds()

    return {
        "status": record.status, "outcome": in_python,
        "phone_assignment_id": record.phone_assignment_id, "client_id": record.client_id,
        "from_number": record.from_number, "to_number": record.to_number,
        "started": offset(record.started_at), "answered": offset(record.answered_at),
        "ended": offset(record.ended_at), "duration": record.duration,
        "voicemail": record.voicemail_url is not None, "voicemail_duration": record.voicemail_duration,
        "caller_hung_up": record.caller_hung_up, "error_code": record.error_code, "error_url": record.error_url,
        "ended_by": record.ended_by,
        "events": sorted(
            ((event.leg_sid is not None, event.sequence_number, offset(event.sent_at), offset(event.received_at),
              event.kind)
             for event in db.session.scalars(sa.select(CallEvent).where(CallEvent.call_sid == call.sid))),
            key=_event_order),
    }


def _api_outcome(api, record):
    # The list, as staff and scripts read it; a window around the record's start keeps the page short.
    response = api.get("/api/call-records", query_string={
        "since": (record.started_at - timedelta(seconds=1)).isoformat(),
        "until": (record.started_at + timedelta(seconds=1)).isoformat(), "per_page": 200})
    assert response.status_code == 200, response.get_data(as_text=True)
    items = [item for item in response.get_json()["items"] if item["twilio_call_sid"] == record.twilio_call_sid]
    assert len(items) == 1, f"GET /api/call-records lists call {record.twilio_call_sid} {len(items)} times"
    return items[0]["outcome"]


def expected_record(sequence, number):
    """What read_call must find at the end of `sequence`, on `number` (assigned to its client)."""
    e = sequence.expected
    return {
        "status": e.status, "outcome": e.outcome,
        "phone_assignment_id": number.id, "client_id": number.client_id,
        "from_number": CALLER, "to_number": TRACKING,
        "started": e.started, "answered": e.answered, "ended": e.ended, "duration": e.duration,
        "voicemail": bool(e.voicemail_duration), "voicemail_duration": e.voicemail_duration,
        "caller_hung_up": e.caller_hung_up, "error_code": e.error_code, "error_url": e.error_url,
    }


def differences(actual, expected):
    """The fields of `expected` that `actual` gets wrong, times compared to within TIME_TOLERANCE."""
    wrong = []
    for key, want in expected.items():
        got = actual.get(key)
        if key in TIMES and want is not None and got is not None:
            if abs(got - want) > TIME_TOLERANCE:
                wrong.append(f"{key}: {got:+.1f}s, expected {want:+.1f}s")
        elif got != want:
            wrong.append(f"{key}: {got!r}, expected {want!r}")
    return wrong


def expected_events(requests, call):
    """(has a leg SID, SequenceNumber, Timestamp, arrival) of each request, in the order they arrived."""
    def offset(moment):
        return (moment - call.start).total_seconds()

    def sent(request):
        return None if request.step.sent is None else offset(call.moment(request.step.sent))

    return sorted(((request.step.kind == "leg", _sequence_number(request), sent(request), offset(request.arrives))
                   for request in requests), key=_event_order)


def _event_order(event):
    """By arrival, then by what each is, so events and requests that arrived at one moment pair up."""
    is_leg, sequence_number, sent, received = event[:4]
    return received, is_leg, -1 if sequence_number is None else sequence_number, -1 if sent is None else sent


def _sequence_number(request):
    value = request.params.get("SequenceNumber")
    return None if value is None else int(value)


def event_differences(events, expected):
    """How the call's events differ from the requests Twilio made (`expected_events`), times to the second."""
    if len(events) != len(expected):
        return [f"{len(events)} events for {len(expected)} requests: {events}"]
    wrong = []
    for (is_leg, sequence_number, sent, received, kind), (want_leg, want_sequence, want_sent, arrived) in zip(
            events, expected, strict=True):
        if (is_leg, sequence_number) != (want_leg, want_sequence):
            wrong.append(f"{kind} at {received:+.1f}s: leg {is_leg}, SequenceNumber {sequence_number}; expected "
                         f"leg {want_leg}, SequenceNumber {want_sequence}")
        if (sent is None) != (want_sent is None) or (sent is not None and abs(sent - want_sent) > TIME_TOLERANCE):
            wrong.append(f"{kind} at {received:+.1f}s: sent at {sent}, expected {want_sent}")
        if abs(received - arrived) > TIME_TOLERANCE:
            wrong.append(f"{kind}: received at {received:+.1f}s, it arrived at {arrived:+.1f}s")
    return wrong
