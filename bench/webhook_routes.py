"""The per-route phase of bench/webhooks.py: each Twilio webhook route alone, its requests/s and latency.

After the mixed runs, every route gets a short wrk run of its own at the same connections, and one row of a
table: the voice webhook of a number that rings one phone, and of one whose client screens its calls (a
failover rung in turn, a whisper and press 1 for whoever picks up); the whisper itself, the key press, the
<Dial action> of a pickup that did not press 1 (answered with the failover's <Dial>) and of a call put through;
the forwarded leg's callbacks, the call's final status and the recording callback.

Every request is signed as Twilio signs it and is about a call of its own. The voice webhooks bring new
CallSids; the calls the other routes speak of are written to call_records beforehand, in progress, as their
voice webhook left them, so that what phoneapp writes behind its answers is what it writes in production. The
screened routes use the very URLs phoneapp gives Twilio: a voice webhook is sent to a few screened numbers, and
their <Number url>, <Dial action> and the whisper's <Gather action> are taken from the TwiML it answers. A
route's run is over once everything it answered is in the database (a call event per request), so the next
route does not pay for its writes.
"""
from __future__ import annotations

import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

import psycopg

# Screened numbers whose TwiML is asked for; the screened routes' requests are spread over them.
PROBED_NUMBERS = 20


def fail(message):
    raise SystemExit(f"bench/webhooks.py: {message}")


def new_sid(prefix="CA"):
    return prefix + secrets.token_hex(16)


def twilio_now():
    """Now, as Twilio writes the Timestamp of a callback."""
    return format_datetime(datetime.now(UTC))


@dataclass(frozen=True)
class Line:
    """A tracking number and the phone it rings first; for a screened one, the URLs phoneapp gives for it."""

    number: str
    assignment_id: int
    client_id: int
    target: str
    whisper: str | None = None  # path and query of the <Number url>
    action: str | None = None  # of the <Dial action>
    accept: str | None = None  # of the whisper's <Gather action>


@dataclass(frozen=True)
class Call:
    sid: str
    leg_sid: str  # the forwarded leg's
    line: Line
    caller: str


# -- one request of each route, about `call` ---------------------------------------------------------------

def voice(requests, call):
    return "/twilio/voice", {**requests.call_params(call.line.number, call.caller, call.sid), "CallStatus": "ringing"}


def leg(requests, call, **extra):
    """What the forwarded leg's own requests carry: its SID, its parent's, and the number it rang."""
    return {"AccountSid": requests.account_sid, "ApiVersion": "2010-04-01", "CallSid": call.leg_sid,
            "ParentCallSid": call.sid, "Direction": "outbound-dial", "From": call.caller, "Caller": call.caller,
            "To": call.line.target, "Called": call.line.target, "CallStatus": "in-progress", **extra}


def whisper(requests, call):
    return call.line.whisper, leg(requests, call)


def accept(requests, call):
    return call.line.accept, leg(requests, call, Digits="1", FinishedOnKey="")


def dial_events(requests, call):
    return "/twilio/dial-events", leg(requests, call, CallbackSource="call-progress-events", SequenceNumber="2",
                                      Timestamp=twilio_now())


def dial_result(requests, call, path, **result):
    return path, {**requests.call_params(call.line.number, call.caller, call.sid), "CallStatus": "in-progress",
                  "DialCallSid": call.leg_sid, **result}


def not_accepted(requests, call):
    """Picked up (a voicemail, say) but 1 was never pressed: phoneapp rings the failover."""
    return dial_result(requests, call, call.line.action, DialCallStatus="completed", DialBridged="false",
                       DialCallDuration="4")


def put_through(requests, call):
    return dial_result(requests, call, "/twilio/dial-status", DialCallStatus="completed", DialBridged="true",
                       DialCallDuration="95")


def final_status(requests, call):
    return "/twilio/status", {**requests.call_params(call.line.number, call.caller, call.sid),
                              "CallStatus": "completed", "CallbackSource": "call-progress-events",
                              "SequenceNumber": "2", "Timestamp": twilio_now(), "CallDuration": "101",
                              "Duration": "2"}


def recording(requests, call):
    sid = new_sid("RE")
    # As the <Dial recordingStatusCallback> of a recorded forward names it.
    return "/twilio/recording?kind=call", {
        "AccountSid": requests.account_sid, "CallSid": call.sid, "RecordingSid": sid,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{requests.account_sid}/Recordings/{sid}",
        "RecordingStatus": "completed", "RecordingDuration": "95", "RecordingChannels": "2",
        "RecordingSource": "DialVerb", "RecordingStartTime": twilio_now()}


@dataclass(frozen=True)
class Route:
    label: str
    kind: str  # the call events its requests are kept as: the endpoint's name
    request: Callable  # (requests, call) -> (path and query, form fields)
    screened: bool = False  # to the numbers whose clients screen their calls
    in_progress: bool = True  # about a call already in progress, not a new one


ROUTES = (
    Route("/twilio/voice", "voice", voice, in_progress=False),
    Route("/twilio/voice, failover + whisper", "voice", voice, screened=True, in_progress=False),
    Route("/twilio/whisper?...&accept=1", "whisper", whisper, screened=True),
    Route("/twilio/accept, Digits=1", "accept", accept, screened=True),
    Route("/twilio/dial-status?attempt=0 (failover)", "dial_status", not_accepted, screened=True),
    Route("/twilio/dial-status", "dial_status", put_through),
    Route("/twilio/dial-events", "dial_events", dial_events),
    Route("/twilio/status", "call_status", final_status),
    Route("/twilio/recording", "recording", recording),
)


# -- the URLs phoneapp gives Twilio, and the calls in progress ---------------------------------------------

def load_lines(database_url):
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT p.phone_number, p.id, p.client_id, coalesce(p.forward_to_number, c.phone)"
                            " FROM phone_assignments p JOIN clients c ON c.id = p.client_id").fetchall()
    return {row[0]: Line(*row) for row in rows}


def twiml(requests, path, params):
    answer = requests.post(path, params)
    try:
        return ET.fromstring(answer)
    except ET.ParseError:
        fail(f"POST {path} answered no TwiML: {answer[:300]!r}")


def probe(requests, lines):
    """`lines` (screened) with the URLs phoneapp gives Twilio for them, from its answers to a call to each."""
    probed = []
    for line in lines:
        call = Call(new_sid(), new_sid(), line, requests.caller())
        answer = twiml(requests, *voice(requests, call))
        dial, number = answer.find("Dial"), answer.find("Dial/Number")
        if number is None or not number.get("url") or (number.text or "").strip() != line.target:
            fail(f"the voice webhook of {line.number} rings no whisper to {line.target}: {ET.tostring(answer)!r}")
        action = requests.public_path(dial.get("action"))
        if parse_qs(urlsplit(action).query) != {"attempt": ["0"], "target": [line.target]}:
            fail(f"the voice webhook of {line.number} names no first attempt in its <Dial action>: {action}")
        call = replace(call, line=replace(line, whisper=requests.public_path(number.get("url")), action=action))
        gather = twiml(requests, *whisper(requests, call)).find("Gather")
        if gather is None or not gather.get("action"):
            fail(f"the whisper {call.line.whisper} asks for no key press")
        call = replace(call, line=replace(call.line, accept=requests.public_path(gather.get("action"))))
        probed.append(call.line)
    # What the last call's other screened requests answer: nothing to do on 1; the failover after a pickup without it.
    if twiml(requests, *accept(requests, call)).find("Hangup") is not None:
        fail(f"pressing 1 on {call.line.accept} hangs up")
    following = twiml(requests, *not_accepted(requests, call)).find("Dial")
    if following is None or following.find("Number") is None or "attempt=1" not in (following.get("action") or ""):
        fail(f"{call.line.action} with nobody pressing 1 rings no failover")
    return probed


def start_calls(database_url, calls):
    """Write the calls the callbacks speak of as their voice webhooks left them: routed, ringing the first number."""
    started = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=30)
    with psycopg.connect(database_url) as conn:
        with conn.cursor().copy(
                "COPY call_records (twilio_call_sid, phone_assignment_id, client_id, from_number, to_number,"
                " forwarded_to, routed_by, route_rule, requires_accept, status, is_test, started_at, created_at,"
                " updated_at) FROM STDIN") as copy:
            for call, screened in calls:
                line = call.line
                copy.write_row((call.sid, line.assignment_id, line.client_id, call.caller, line.number, line.target,
                                "assignment", "open", screened, "in-progress", False, started, started, started))
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE call_records")


def last_event_id(database_url):
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM call_events").fetchone()[0]


def wait_for_events(database_url, after_id, kind, expected, timeout=180):
    """Seconds from now until `expected` call events of `kind` past `after_id` are written (None: they never were)."""
    started = time.monotonic()
    last, stable_since = None, started
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            count = conn.execute("SELECT count(*) FROM call_events WHERE id > %s AND kind = %s",
                                 (after_id, kind)).fetchone()[0]
            now = time.monotonic()
            if count >= expected:
                return now - started
            if count != last:
                last, stable_since = count, now
            if now - stable_since > 10 or now - started > timeout:
                return None
            time.sleep(0.1)


# -- the phase ---------------------------------------------------------------------------------------------

def measure(requests, run, database_url, path_prefix, *, plain, screened, per_thread, seconds):
    """Run each route alone for `seconds`: [(route, wrk's figures, seconds until written or None)].

    `run(path_prefix, seconds)` runs wrk on the request files `requests.write_each` wrote; `plain` and
    `screened` are tracking numbers, the latter's clients screening their calls; `per_thread`: requests per
    wrk thread of each route, enough that no call comes round again.
    """
    lines = load_lines(database_url)
    plain_lines = [lines[number] for number in plain]
    mark = last_event_id(database_url)
    screened_lines = probe(requests, [lines[number] for number in screened[:PROBED_NUMBERS]])
    # The probes' calls are written before anything is measured.
    wait_for_events(database_url, mark, "voice", len(screened_lines))
    in_progress = []
    for index, route in enumerate(ROUTES):
        pool = screened_lines if route.screened else plain_lines

        def make(route=route, pool=pool):
            call = Call(new_sid(), new_sid(), requests.rng.choice(pool), requests.caller())
            if route.in_progress:
                in_progress.append((call, route.screened))
            return "v" if route.kind == "voice" else "r", requests.raw(*route.request(requests, call))

        requests.write_each(f"{path_prefix}-{index}", per_thread, make)
    start_calls(database_url, in_progress)
    rows = []
    for index, route in enumerate(ROUTES):
        mark = last_event_id(database_url)
        figures = run(f"{path_prefix}-{index}", seconds)
        answered = figures["requests"] - figures["bad_status"]
        rows.append((route, figures, wait_for_events(database_url, mark, route.kind, answered)))
    return rows


def report(rows, seconds, connections, screened):
    print(f"\nper route: each alone for {seconds} s at {connections} connections, one call per request; "
          f"screened = {screened} numbers whose client rings a failover with whisper and press 1")
    print(f"{'route':<40}{'requests/s':>11}{'p50 ms':>8}{'p99 ms':>8}{'requests':>10}{'non-2xx':>8}"
          f"{'errors':>7}{'web ms':>8}{'db ms':>7}{'written':>9}")
    for route, figures, caught_up in rows:
        errors = sum(figures[key] for key in ("connect_errors", "read_errors", "write_errors", "timeouts"))
        count = max(figures["requests"], 1)
        written = f"{caught_up:.1f} s" if caught_up is not None else "NOT ALL"
        print(f"{route.label:<40}{figures['rps']:>11,.0f}{figures['p50_us'] / 1000:>8.1f}"
              f"{figures['p99_us'] / 1000:>8.1f}{figures['requests']:>10,}{figures['bad_status']:>8}{errors:>7}"
              f"{figures['cpu']['web'] * 1000 / count:>8.2f}{figures['cpu']['db'] * 1000 / count:>7.2f}"
              f"{written:>9}" + (" *" if figures["wrapped"] else ""))
    print("web ms, db ms: CPU per request of the web processes and of PostgreSQL during the run; "
          "written: seconds after the run until all it answered was in the database")
    if any(figures["wrapped"] for _, figures, _ in rows):
        print("* the route's request list came round again: some of its calls were sent twice")
