"""Simulated inbound calls: Twilio's half of a phone call, driving phoneapp's webhooks with signed requests.

Requests go through a transport of phoneapp.twilio.signed_requests, over HTTP or in-process.
"""
from __future__ import annotations

import math
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

from phoneapp.sandbox.account import OUTCOMES, new_sid, rfc2822
from phoneapp.twilio.signed_requests import WebhookRequest, deliver, signed_request

# Twilio stops following TwiML documents (redirects, actions) after this many in one call.
MAX_DOCUMENTS = 10
# Seconds a forwarded phone rings before it answers or reports busy.
RING_SECONDS = {"answered": 6, "voicemail": 15, "busy": 3, "failed": 0, "canceled": 8}
# Phones that pick up: a person, or the phone's own voicemail.
PICKS_UP = ("answered", "voicemail")
VOICEMAIL_SECONDS = 14
DEFAULT_CALLER_LOCATION = {"city": "SAN FRANCISCO", "state": "CA", "zip": "94103", "country": "US"}
DEFAULT_NUMBER_LOCATION = {"city": "SAN FRANCISCO", "state": "CA", "zip": "", "country": "US"}
# statusCallbackEvent names the answered event; its callback reports CallStatus=in-progress.
_EVENT_OF_STATUS = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}
_CONTINUE, _STOP = object(), object()


@dataclass
class SimulatedCall:
    """The result of a simulated call: its sids, how the forwarded leg ended, and every request made."""

    call_sid: str
    from_number: str
    to_number: str
    child_sid: str | None = None
    outcome: str | None = None
    status: str = "completed"
    duration: int = 0
    recording_sids: list = field(default_factory=list)
    requests: list = field(default_factory=list)

    def requests_of(self, kind: str) -> list[WebhookRequest]:
        """The requests of one kind, in the order they were made."""
        return [r for r in self.requests if r.kind == kind]


def simulate_inbound_call(account, transport, *, from_number, to_number, outcome=None, talk_seconds=42,
                          leave_voicemail=True, caller_location=None, pace=0.0, call_sid=None) -> SimulatedCall:
    """Ring `to_number` from `from_number` the way Twilio would, following phoneapp's TwiML to the end."""
    if outcome is not None and outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
    number = account.find_number(to_number)
    if number is None:
        raise ValueError(f"{to_number} is not a number of the sandbox account")
    return _Call(account, transport, number, from_number, outcome, talk_seconds, leave_voicemail,
                 caller_location, pace, call_sid).run()


class _Call:
    def __init__(self, account, transport, number, from_number, outcome, talk_seconds, leave_voicemail,
                 caller_location, pace, call_sid):
        self.account, self.transport, self.number = account, transport, number
        self.forced_outcome, self.talk_seconds, self.leave_voicemail = outcome, talk_seconds, leave_voicemail
        self.caller_location = {**DEFAULT_CALLER_LOCATION, **(caller_location or {})}
        self.pace = pace
        # The call's own clock: its callbacks are stamped as far into it as the simulated seconds have gone,
        # so their Timestamps agree with the durations they carry, as Twilio's do.
        self.began = datetime.now(UTC)
        self.documents = 0
        self.last_error = None
        self.result = SimulatedCall(call_sid=call_sid or new_sid("CA"), from_number=from_number,
                                    to_number=number["phone_number"])

    # -- plumbing -------------------------------------------------------------

    def _now(self) -> str:
        return rfc2822(self.began + timedelta(seconds=self.result.duration))

    def _wait(self):
        if self.pace > 0:
            time.sleep(self.pace)

    def _post(self, kind, url, params) -> WebhookRequest:
        sent = deliver(self.transport, signed_request(self.account.auth_token, url, params, kind))
        self.result.requests.append(sent)
        return sent

    def _alert(self, code, url, http_response=None, message=""):
        self.account.add_alert(code, request_url=url or "", resource_sid=self.result.call_sid,
                               http_response=http_response, message=message, service_sid=self.number["sid"])

    def _params(self, status, **extra) -> dict:
        r, caller, own = self.result, self.caller_location, DEFAULT_NUMBER_LOCATION
        params = {"AccountSid": self.account.account_sid, "ApiVersion": "2010-04-01", "CallSid": r.call_sid,
                  "CallStatus": status, "Direction": "inbound", "From": r.from_number, "To": r.to_number,
                  "Caller": r.from_number, "Called": r.to_number}
        for prefix, place in (("From", caller), ("Caller", caller), ("To", own), ("Called", own)):
            for key in ("city", "state", "zip", "country"):
                params[prefix + key.capitalize()] = place.get(key) or ""
        params.update(extra)
        return params

    def _twiml(self, sent: WebhookRequest):
        """The <Response> element of an answer, or None (with the Monitor alert Twilio would raise)."""
        if not sent.ok:
            self.last_error = 11200
            self._alert(11200, sent.url, http_response=sent.status,
                        message=sent.error or f"HTTP {sent.status} from {sent.url}")
            return None
        try:
            root = ET.fromstring(sent.body)
        except ET.ParseError as exc:
            self.last_error = 12100
            self._alert(12100, sent.url, message=f"Document parse failure: {exc}")
            return None
        if root.tag != "Response":
            self.last_error = 12100
            self._alert(12100, sent.url, message=f"Root element is <{root.tag}>, not <Response>")
            return None
        return root

    def _follow(self, kind, url, params):
        if self.documents >= MAX_DOCUMENTS:
            self._alert(11215, url, message=f"More than {MAX_DOCUMENTS} TwiML documents in one call")
            return _STOP
        root = self._twiml(self._post(kind, url, params))
        if root is None:
            return _STOP
        self.documents += 1
        return root, url

    # -- the call -------------------------------------------------------------

    def run(self) -> SimulatedCall:
        r = self.result
        self.account.record_call({"sid": r.call_sid, "direction": "inbound", "from": r.from_number,
                                  "to": r.to_number, "status": "ringing", "phone_number_sid": self.number["sid"],
                                  "parent_call_sid": None, "start_time": rfc2822(self.began),
                                  "api_version": "2010-04-01"})
        routed_elsewhere = bool(self.number.get("voice_application_sid") or self.number.get("trunk_sid"))
        if not routed_elsewhere:
            # Otherwise Twilio hands the call, status callbacks included, to the application or trunk.
            document = self._answer()
            if document is not None:
                self._execute(*document)
        self.account.update_call(r.call_sid, status=r.status, duration=str(r.duration), end_time=self._now())
        callback = self.number.get("status_callback")
        if callback and not routed_elsewhere:
            self._wait()
            self._post("status", callback, self._params(
                r.status, CallDuration=r.duration, Duration=math.ceil(r.duration / 60), Timestamp=self._now(),
                CallbackSource="call-progress-events", SequenceNumber=0))
        return r

    def _answer(self):
        params = self._params("ringing")
        for kind, key in (("voice", "voice_url"), ("fallback", "voice_fallback_url")):
            url = self.number.get(key)
            if not url:
                if kind == "voice":
                    self.last_error = 11200
                    self._alert(11200, "", message="The number has no voice URL")
                continue
            if kind == "fallback":
                # Twilio tells the fallback URL what went wrong with the voice URL.
                params = dict(params, ErrorCode=self.last_error, ErrorUrl=self.number.get("voice_url") or "")
            root = self._twiml(self._post(kind, url, params))
            if root is not None:
                self.documents += 1
                return root, url
        return None

    def _execute(self, root, url):
        handlers = {"Dial": self._dial, "Record": self._record, "Redirect": self._redirect,
                    "Say": self._speak, "Play": self._speak, "Pause": self._pause, "Gather": self._gather,
                    "Hangup": lambda verb, url: _STOP, "Reject": lambda verb, url: _STOP}
        while True:
            for verb in root:
                handler = handlers.get(verb.tag)
                outcome = handler(verb, url) if handler else _CONTINUE
                if outcome is _CONTINUE:
                    continue
                if outcome is _STOP:
                    return
                root, url = outcome
                break
            else:
                return  # no verbs left: Twilio hangs up

    def _speak(self, verb, url):
        self.result.duration += 3
        return _CONTINUE

    def _pause(self, verb, url):
        self._wait()
        self.result.duration += _int(verb.get("length"), 1)
        return _CONTINUE

    def _gather(self, verb, url):
        # The simulated caller presses nothing: nested prompts play, then the next verb runs.
        for child in verb:
            if child.tag in ("Say", "Play"):
                self._speak(child, url)
        self.result.duration += _int(verb.get("timeout"), 5)
        return _CONTINUE

    def _redirect(self, verb, url):
        return self._follow("redirect", urljoin(url, (verb.text or "").strip()), self._params("in-progress"))

    def _dial(self, verb, url):
        r = self.result
        target_element = self._picked_up(verb.findall("Number"))
        target = ((target_element.text if target_element is not None else verb.text) or "").strip()
        caller_id = verb.get("callerId") or r.from_number
        timeout = min(max(_int(verb.get("timeout"), 30), 5), 600)
        # The outcome asked for is how the first phone rung takes the call; failover phones behave as they are set.
        forced, self.forced_outcome = self.forced_outcome, None
        behaviour = forced or (self.account.target_behaviour(target) if target else "failed")
        child = new_sid("CA")
        r.child_sid, r.outcome = child, behaviour
        self.account.record_call({"sid": child, "parent_call_sid": r.call_sid, "direction": "outbound-dial",
                                  "from": caller_id, "to": target, "status": "queued", "start_time": self._now(),
                                  "api_version": "2010-04-01"})
        attrs = target_element.attrib if target_element is not None else {}
        callback = attrs.get("statusCallback")
        events = set(_split(attrs.get("statusCallbackEvent") or "completed"))
        sequence = 0

        def child_event(status, **extra):
            nonlocal sequence
            if callback and _EVENT_OF_STATUS.get(status, "completed") in events:
                self._post("dial-event", urljoin(url, callback), {
                    "AccountSid": self.account.account_sid, "ApiVersion": "2010-04-01", "CallSid": child,
                    "ParentCallSid": r.call_sid, "CallStatus": status, "Direction": "outbound-dial",
                    "From": caller_id, "To": target, "Caller": caller_id, "Called": target,
                    "Timestamp": self._now(), "CallbackSource": "call-progress-events", "SequenceNumber": sequence,
                    **extra})
                sequence += 1

        child_event("initiated")
        if behaviour != "failed":
            self._wait()
            child_event("ringing")
        r.duration += RING_SECONDS.get(behaviour, timeout)
        bridged, talk = False, 0
        if behaviour in PICKS_UP:
            self._wait()
            child_event("in-progress")
            bridged = self._whisper(attrs.get("url"), url, child, caller_id, target,
                                    presses_1=behaviour == "answered")
            talk = self.talk_seconds if bridged else 5
            self._wait()
        r.duration += talk
        final = "completed" if behaviour in PICKS_UP else behaviour
        child_event(final, CallDuration=talk, Duration=math.ceil(talk / 60))
        self.account.update_call(child, status=final, duration=str(talk), end_time=self._now())
        recording = self._dial_recording(verb, url, talk) if bridged else None
        action = verb.get("action")
        if not action:
            return _CONTINUE
        # "canceled": the caller hung up while it rang; Twilio still asks the action, but nobody hears the answer.
        caller_gone = behaviour == "canceled"
        params = self._params("completed" if caller_gone else "in-progress", DialCallStatus=final, DialCallSid=child,
                              DialCallDuration=talk, DialBridged="true" if bridged else "false")
        if recording:
            params.update(RecordingUrl=recording[1], RecordingSid=recording[0], RecordingDuration=talk)
        followed = self._follow("dial-action", urljoin(url, action), params)
        return _STOP if caller_gone else followed

    def _picked_up(self, numbers):
        """The <Number> whose leg is followed: of several rung at once, the first whose phone picks up (a person
        before a voicemail, which waits out its rings); Twilio hangs up the others as it does."""
        if len(numbers) > 1 and not self.forced_outcome:
            behaviours = [self.account.target_behaviour((number.text or "").strip()) for number in numbers]
            for picks_up in PICKS_UP:
                if picks_up in behaviours:
                    return numbers[behaviours.index(picks_up)]
        return numbers[0] if numbers else None

    def _whisper(self, whisper_url, url, child, caller_id, target, *, presses_1) -> bool:
        """Run the screening TwiML on the leg that picked up: a person presses 1 when asked, a voicemail presses
        nothing. The legs are bridged unless the document hangs the leg up."""
        if not whisper_url:
            return True
        leg = {"AccountSid": self.account.account_sid, "ApiVersion": "2010-04-01", "CallSid": child,
               "ParentCallSid": self.result.call_sid, "CallStatus": "in-progress",
               "Direction": "outbound-dial", "From": caller_id, "To": target}
        document_url = urljoin(url, whisper_url)
        root = self._leg_document("whisper", document_url, leg)
        while root is not None:
            for verb in root:
                if verb.tag in ("Hangup", "Reject"):
                    return False
                if verb.tag in ("Say", "Play"):
                    self._speak(verb, document_url)
                elif verb.tag == "Gather":
                    for prompt in verb:
                        self._speak(prompt, document_url)
                    if presses_1:
                        action = urljoin(document_url, verb.get("action") or document_url)
                        root, document_url = self._leg_document("accept", action, {**leg, "Digits": "1"}), action
                        break
                    self.result.duration += _int(verb.get("timeout"), 5)
            else:
                return True  # the document ran out: Twilio puts the two through
        return False

    def _leg_document(self, kind, url, params):
        """The TwiML a leg's request was answered with; None (the leg hung up) when it is no document."""
        sent = self._post(kind, url, params)
        if not sent.ok:
            return None
        try:
            root = ET.fromstring(sent.body)
        except ET.ParseError:
            return None
        return root if root.tag == "Response" else None

    def _dial_recording(self, verb, url, talk):
        mode = (verb.get("record") or "do-not-record").lower()
        if mode in ("do-not-record", "false", ""):
            return None
        sid, recording_url = self._new_recording()
        callback = verb.get("recordingStatusCallback")
        if callback and "completed" in _split(verb.get("recordingStatusCallbackEvent") or "completed"):
            self._post("recording", urljoin(url, callback), self._recording_params(
                sid, recording_url, talk, channels=2 if mode.endswith("-dual") else 1, source="DialVerb"))
        return sid, recording_url

    def _record(self, verb, url):
        if not self.leave_voicemail:
            return _STOP  # the caller hangs up at the beep
        action = urljoin(url, verb.get("action")) if verb.get("action") else url
        seconds = min(VOICEMAIL_SECONDS, _int(verb.get("maxLength"), 3600))
        self._wait()
        self.result.duration += seconds
        sid, recording_url = self._new_recording()
        callback = verb.get("recordingStatusCallback")
        if callback and "completed" in _split(verb.get("recordingStatusCallbackEvent") or "completed"):
            self._post("recording", urljoin(url, callback),
                       self._recording_params(sid, recording_url, seconds, channels=1, source="RecordVerb"))
        # The caller hung up to end the message: Twilio still fetches the action, but nobody hears it.
        self._follow("record-action", action, self._params(
            "completed", RecordingUrl=recording_url, RecordingSid=sid, RecordingDuration=seconds, Digits="hangup"))
        return _STOP

    def _new_recording(self):
        sid = new_sid("RE")
        self.result.recording_sids.append(sid)
        return sid, f"https://api.twilio.com/2010-04-01/Accounts/{self.account.account_sid}/Recordings/{sid}"

    def _recording_params(self, sid, recording_url, seconds, *, channels, source):
        return {"AccountSid": self.account.account_sid, "CallSid": self.result.call_sid, "RecordingSid": sid,
                "RecordingUrl": recording_url, "RecordingStatus": "completed", "RecordingDuration": seconds,
                "RecordingChannels": channels, "RecordingStartTime": self._now(), "RecordingSource": source,
                "ErrorCode": 0}


def _int(value, default: int) -> int:
    # Twilio falls back to the default for an attribute it cannot read rather than dropping the call.
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _split(value: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", value.strip()) if part]
