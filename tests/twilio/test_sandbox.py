"""The sandbox account file and simulated inbound calls against a small TwiML app that checks signatures."""
from __future__ import annotations

import json
import multiprocessing
import re
import stat
import threading

import pytest
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from phoneapp.sandbox import SandboxAccount, simulate_inbound_call
from phoneapp.twilio.signed_requests import deliver, http_transport, wsgi_transport

PUBLIC = "https://calls.example.com"
TARGET = "+14155559876"
CALLER = "+12125550123"
EVENTS = ["initiated", "ringing", "answered", "completed"]


class TwimlApp:
    """A stand-in for phoneapp's webhooks: fixed TwiML per path, every request and its signature check kept."""

    def __init__(self, token, record="record-from-answer"):
        self.validator = RequestValidator(token)
        self.record = record
        self.seen = []  # (url as the app saw it, form, signature valid, headers)

    def __call__(self, environ, start_response):
        request = Request(environ)
        form = request.form.to_dict()
        valid = self.validator.validate(request.url, form, request.headers.get("X-Twilio-Signature", ""))
        self.seen.append((request.url, form, valid, dict(request.headers)))
        if not valid:
            return Response("bad signature", status=403)(environ, start_response)
        return self.answer(request.path, form)(environ, start_response)

    def answer(self, path, form):
        twiml = VoiceResponse()
        if path == "/twilio/voice" or path == "/twilio/fallback":
            # Relative URLs: Twilio resolves them against the URL of the document that holds them.
            dial = twiml.dial(action="/twilio/dial-status", method="POST", timeout=20,
                              caller_id=form["From"], record=self.record,
                              recording_status_callback="/twilio/recording")
            dial.number(TARGET, status_callback="/twilio/dial-events",
                        status_callback_event=" ".join(EVENTS), status_callback_method="POST")
        elif path == "/twilio/dial-status":
            if form["DialCallStatus"] in ("busy", "no-answer", "failed"):
                twiml.say("Please leave a message.")
                twiml.record(action="/twilio/voicemail-done", max_length=120,
                             recording_status_callback="/twilio/recording")
            else:
                twiml.hangup()
        elif path == "/twilio/broken":
            return Response("oops", status=500)
        elif path == "/twilio/loop":
            twiml.redirect("/twilio/loop")
        elif path in ("/twilio/status", "/twilio/dial-events", "/twilio/recording"):
            return Response("", status=204)
        else:
            twiml.hangup()
        return Response(str(twiml), mimetype="text/xml")

    def paths(self):
        return [url.split("calls.example.com")[-1].split("?")[0] for url, *_ in self.seen]


@pytest.fixture
def account(tmp_path):
    account = SandboxAccount.open(tmp_path / "sandbox.json")
    sid = account.find_number("+14155550101")["sid"]
    account.update_number(sid, voice_url=f"{PUBLIC}/twilio/voice", voice_fallback_url=f"{PUBLIC}/twilio/fallback",
                          status_callback=f"{PUBLIC}/twilio/status")
    return account


@pytest.fixture
def app(account):
    return TwimlApp(account.auth_token)


def call(account, app, **kwargs):
    return simulate_inbound_call(account, wsgi_transport(app), from_number=CALLER, to_number="+14155550101", **kwargs)


# -- the account file ----------------------------------------------------------------


def test_new_account_file_has_four_fictional_numbers(tmp_path):
    path = tmp_path / "nested" / "dir" / "sandbox.json"
    account = SandboxAccount.open(path)
    assert re.fullmatch(r"AC[0-9a-f]{32}", account.account_sid) and re.fullmatch(r"[0-9a-f]{32}", account.auth_token)
    numbers = account.numbers()
    assert [n["phone_number"] for n in numbers] == [f"+1415555010{i}" for i in range(1, 5)]
    assert [n["friendly_name"] for n in numbers] == [f"Sandbox line {i}" for i in range(1, 5)]
    assert all(re.fullmatch(r"PN[0-9a-f]{32}", n["sid"]) and not n["voice_url"] for n in numbers)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = SandboxAccount.open(path)
    assert (again.account_sid, again.auth_token) == (account.account_sid, account.auth_token)
    assert json.loads(path.read_text())["friendly_name"] == "phoneapp sandbox"


def test_numbers_add_update_remove_and_target_behaviour(tmp_path):
    account = SandboxAccount.open(tmp_path / "s.json")
    added = account.add_numbers([f"+1415556{i:04d}" for i in range(120)])
    assert len(added) == 120 and len(account.numbers()) == 124
    one = account.add_number("+14155557777", "Spare", voice_url=f"{PUBLIC}/v")
    assert account.find_number("+14155557777")["voice_url"] == f"{PUBLIC}/v" and one["friendly_name"] == "Spare"
    with pytest.raises(ValueError):
        account.add_number("+14155557777")
    assert account.update_number(one["sid"], status_callback=f"{PUBLIC}/s")["status_callback"] == f"{PUBLIC}/s"
    with pytest.raises(KeyError):
        account.update_number("PN" + "0" * 32, voice_url="x")
    assert account.remove_number(one["sid"]) and account.get_number(one["sid"]) is None
    assert account.target_behaviour(TARGET) == "answered"
    account.set_target_behaviour(TARGET, "busy")
    assert SandboxAccount.open(tmp_path / "s.json").target_behaviour(TARGET) == "busy"
    with pytest.raises(ValueError):
        account.set_target_behaviour(TARGET, "exploded")


def _add_from_process(path, start):
    account = SandboxAccount(path)
    for i in range(start, start + 10):
        account.add_number(f"+1415557{i:04d}")


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "s.json"
    SandboxAccount.open(path)
    threads = [threading.Thread(target=_add_from_process, args=(path, 100 * t)) for t in range(4)]
    processes = [multiprocessing.get_context("fork").Process(target=_add_from_process, args=(path, 1000 + 100 * p))
                 for p in range(3)]
    for worker in threads + processes:
        worker.start()
    for worker in threads + processes:
        worker.join(timeout=20)
    assert all(p.exitcode == 0 for p in processes)
    assert len(SandboxAccount(path).numbers()) == 4 + 70


# -- simulated calls -------------------------------------------------------------------


def test_answered_call_signs_every_request_and_reports_the_forwarded_leg(account, app):
    result = call(account, app)
    assert [r.kind for r in result.requests] == ["voice"] + ["dial-event"] * 4 + ["recording", "dial-action", "status"]
    assert all(r.ok for r in result.requests)
    assert all(valid for *_, valid, _ in app.seen)
    for url, form, _, headers in app.seen:
        assert headers["X-Twilio-Signature"] == RequestValidator(account.auth_token).compute_signature(url, form)
    assert app.paths() == ["/twilio/voice"] + ["/twilio/dial-events"] * 4 + [
        "/twilio/recording", "/twilio/dial-status", "/twilio/status"]

    voice = result.requests[0].params
    assert voice["CallSid"] == result.call_sid and voice["AccountSid"] == account.account_sid
    assert (voice["From"], voice["To"], voice["CallStatus"], voice["Direction"]) == (
        CALLER, "+14155550101", "ringing", "inbound")
    assert voice["ApiVersion"] == "2010-04-01" and voice["FromCity"] and voice["FromCountry"] == "US"

    events = [r.params for r in result.requests_of("dial-event")]
    assert [e["CallStatus"] for e in events] == ["initiated", "ringing", "in-progress", "completed"]
    assert [e["SequenceNumber"] for e in events] == ["0", "1", "2", "3"]
    assert {e["CallSid"] for e in events} == {result.child_sid} and result.child_sid != result.call_sid
    assert {e["ParentCallSid"] for e in events} == {result.call_sid}
    assert {(e["Direction"], e["From"], e["To"]) for e in events} == {("outbound-dial", CALLER, TARGET)}
    assert all(e["CallbackSource"] == "call-progress-events" and e["Timestamp"].endswith("+0000") for e in events)
    assert events[-1]["CallDuration"] == "42" and "CallDuration" not in events[0]

    recording = result.requests_of("recording")[0].params
    assert recording["CallSid"] == result.call_sid and recording["RecordingSource"] == "DialVerb"
    assert recording["RecordingStatus"] == "completed" and recording["RecordingChannels"] == "1"
    assert recording["RecordingUrl"] == (f"https://api.twilio.com/2010-04-01/Accounts/{account.account_sid}"
                                         f"/Recordings/{recording['RecordingSid']}")

    action = result.requests_of("dial-action")[0].params
    assert (action["DialCallStatus"], action["DialCallSid"], action["DialBridged"]) == (
        "completed", result.child_sid, "true")
    assert action["DialCallDuration"] == "42" and action["RecordingUrl"] == recording["RecordingUrl"]
    assert action["CallSid"] == result.call_sid and action["CallStatus"] == "in-progress"

    status = result.requests_of("status")[0].params
    assert status["CallStatus"] == "completed" and int(status["CallDuration"]) == result.duration >= 42
    assert result.outcome == "answered" and result.status == "completed"
    stored = {c["sid"]: c for c in account.calls()}
    assert stored[result.call_sid]["status"] == "completed" and stored[result.call_sid]["direction"] == "inbound"
    assert stored[result.child_sid]["parent_call_sid"] == result.call_sid


@pytest.mark.parametrize("outcome", ["busy", "no-answer", "failed"])
def test_unanswered_forward_leads_to_voicemail(account, app, outcome):
    account.set_target_behaviour(TARGET, outcome)  # the phone's own behaviour, no outcome argument
    result = call(account, app)
    assert result.outcome == outcome
    events = [r.params["CallStatus"] for r in result.requests_of("dial-event")]
    assert events[0] == "initiated" and events[-1] == outcome and "in-progress" not in events
    action = result.requests_of("dial-action")[0].params
    assert action["DialCallStatus"] == outcome and action["DialBridged"] == "false" and "RecordingUrl" not in action
    assert [r.kind for r in result.requests[-4:]] == ["dial-action", "recording", "record-action", "status"]
    voicemail = result.requests_of("recording")[0].params
    assert voicemail["RecordingSource"] == "RecordVerb" and voicemail["CallSid"] == result.call_sid
    done = result.requests_of("record-action")[0]
    assert done.url == f"{PUBLIC}/twilio/voicemail-done"  # relative action resolved against the document URL
    assert done.params["Digits"] == "hangup" and done.params["RecordingDuration"] == "14"
    assert done.params["RecordingUrl"] == voicemail["RecordingUrl"]
    assert all(valid for *_, valid, _ in app.seen)


def test_outcome_argument_wins_and_caller_may_hang_up_without_message(account, app):
    account.set_target_behaviour(TARGET, "busy")
    result = call(account, app, outcome="no-answer", leave_voicemail=False)
    assert result.outcome == "no-answer" and result.recording_sids == []
    assert [r.kind for r in result.requests][-2:] == ["dial-action", "status"]


def test_failed_voice_url_raises_alert_11200_and_uses_fallback(account, app):
    sid = account.find_number("+14155550101")["sid"]
    account.update_number(sid, voice_url=f"{PUBLIC}/twilio/broken")
    result = call(account, app)
    assert [r.kind for r in result.requests][:2] == ["voice", "fallback"]
    assert result.requests[0].status == 500 and result.outcome == "answered"
    assert result.requests[1].params["ErrorCode"] == "11200"
    assert result.requests[1].params["ErrorUrl"] == f"{PUBLIC}/twilio/broken"
    alert = account.alerts()[0]
    assert alert["error_code"] == "11200" and alert["request_url"] == f"{PUBLIC}/twilio/broken"
    assert alert["resource_sid"] == result.call_sid and "httpResponse=500" in alert["alert_text"]


def test_unreachable_voice_url_counts_as_failed(account, app):
    sid = account.find_number("+14155550101")["sid"]
    account.update_number(sid, voice_url="https://down.example.com/twilio/voice")
    inner = wsgi_transport(app)

    def transport(url, params, headers):
        if "down.example.com" in url:
            raise ConnectionRefusedError("connection refused")
        return inner(url, params, headers)

    result = simulate_inbound_call(account, transport, from_number=CALLER, to_number="+14155550101")
    assert result.requests[0].status is None and "refused" in result.requests[0].error
    assert result.requests[1].kind == "fallback" and result.requests[1].ok
    assert account.alerts()[0]["request_url"] == "https://down.example.com/twilio/voice"


def test_redirect_loop_stops_after_ten_documents(account, app):
    sid = account.find_number("+14155550101")["sid"]
    account.update_number(sid, voice_url=f"{PUBLIC}/twilio/loop", voice_fallback_url="")
    result = call(account, app)
    assert len(result.requests_of("voice")) == 1 and len(result.requests_of("redirect")) == 9
    assert account.alerts()[0]["error_code"] == "11215"


def test_number_routed_to_an_application_never_reaches_the_app(account, app):
    sid = account.find_number("+14155550101")["sid"]
    account.update_number(sid, voice_application_sid="AP" + "c" * 32)
    result = call(account, app)
    assert result.requests == [] and app.seen == []
    assert account.get_call(result.call_sid)["status"] == "completed"


def test_unknown_number_is_refused(account, app):
    with pytest.raises(ValueError):
        simulate_inbound_call(account, wsgi_transport(app), from_number=CALLER, to_number="+19995550100")
    with pytest.raises(ValueError):
        call(account, app, outcome="exploded")


def test_callbacks_can_be_delivered_again(account, app):
    result = call(account, app)
    completed = result.requests_of("dial-event")[-1]
    again = deliver(wsgi_transport(app), completed)
    assert again.ok and again.params == completed.params and again is not completed
    (url1, form1, valid1, headers1), (url2, form2, valid2, headers2) = app.seen[4], app.seen[-1]
    assert (url1, form1) == (url2, form2) and valid1 and valid2
    assert headers1["I-Twilio-Idempotency-Token"] == headers2["I-Twilio-Idempotency-Token"]


def test_signatures_hold_over_real_http_with_a_port(tmp_path):
    account = SandboxAccount.open(tmp_path / "sandbox.json")
    app = TwimlApp(account.auth_token, record="do-not-record")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        sid = account.find_number("+14155550102")["sid"]
        account.update_number(sid, voice_url=f"{base}/twilio/voice?source=sandbox",
                              status_callback=f"{base}/twilio/status")
        result = simulate_inbound_call(account, http_transport(timeout=5), from_number=CALLER,
                                       to_number="+14155550102", talk_seconds=7)
    finally:
        server.shutdown()
        server.server_close()
    assert [r.kind for r in result.requests] == ["voice"] + ["dial-event"] * 4 + ["dial-action", "status"]
    assert all(r.ok for r in result.requests) and result.recording_sids == []
    assert app.seen[0][0] == f"{base}/twilio/voice?source=sandbox"
    assert all(valid for *_, valid, _ in app.seen)
    assert result.requests_of("dial-action")[0].params["DialCallDuration"] == "7"
