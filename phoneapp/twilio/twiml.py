"""TwiML documents, built only with twilio's VoiceResponse and named by outcome."""
from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

UNAVAILABLE_MESSAGE = ("Thank you for calling. We cannot connect your call right now. "
                       "Please try again later. Goodbye.")
VOICEMAIL_PROMPT = ("Sorry, nobody is available to take your call. "
                    "Please leave a message after the tone, and hang up when you are done.")
DIAL_EVENTS = "initiated ringing answered completed"


def forward_twiml(target, *, caller_id, action_url, events_url, timeout, record=False, recording_url=None):
    """Ring `target`, report the leg's progress to `events_url` and its result to `action_url`."""
    return dial_twiml((target,), caller_id=caller_id, action_url=action_url, events_url=events_url, timeout=timeout,
                      record=record, recording_url=recording_url)


def dial_twiml(targets, *, caller_id, action_url, events_url, timeout, record=False, recording_url=None,
               whisper_url_for=None):
    """Ring every one of `targets` at once (the first to pick up is put through), each leg reporting to `events_url`.

    `whisper_url_for(target)`: where the TwiML is that the person who picks up hears before being connected (the
    announcement, and the key to press when acceptance is required); None when they are put through at once.
    """
    response = VoiceResponse()
    dial_options = {"action": action_url, "method": "POST", "timeout": timeout}
    if caller_id:
        dial_options["caller_id"] = caller_id
    if record:
        dial_options["record"] = "record-from-answer-dual"
        dial_options["recording_status_callback"] = recording_url
        dial_options["recording_status_callback_method"] = "POST"
    dial = response.dial(**dial_options)
    for target in targets:
        number_options = {"status_callback": events_url, "status_callback_event": DIAL_EVENTS,
                          "status_callback_method": "POST"}
        if whisper_url_for is not None:
            number_options.update(url=whisper_url_for(target), method="POST")
        dial.number(target, **number_options)
    return str(response)


def reject_twiml():
    """Turn a blocked caller away as if the line were busy; Twilio does not bill a rejected call."""
    response = VoiceResponse()
    response.reject(reason="busy")
    return str(response)


def whisper_twiml(announcement, *, accept_url=None, accept_seconds=5):
    """What the person who picks up a forwarded call hears before being connected (`announcement`, or nothing).

    With `accept_url`, they must press 1 within `accept_seconds`; otherwise their leg is hung up, so a personal
    voicemail that picks up never takes the call.
    """
    response = VoiceResponse()
    if accept_url is None:
        if announcement:
            response.say(announcement)
        return str(response)
    gather = response.gather(num_digits=1, timeout=accept_seconds, action=accept_url, method="POST")
    gather.say(f"{announcement}. Press 1 to accept." if announcement else "Press 1 to accept this call.")
    # Reached only when nothing was pressed: this hangs up the called leg alone, and the caller's Dial moves on.
    response.hangup()
    return str(response)


def accept_twiml(digits):
    """The answer to the key pressed on a whisper: 1 connects the call (an empty document), anything else hangs up."""
    response = VoiceResponse()
    if digits != "1":
        response.hangup()
    return str(response)


def message_twiml(message=UNAVAILABLE_MESSAGE):
    """Say a short, polite message and hang up: there is nobody to forward to."""
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return str(response)


def voicemail_twiml(*, recording_url, max_length=120, greeting=None):
    """Invite the caller to leave a message (with the client's `greeting` when set); both the result and the file
    go to `recording_url`."""
    response = VoiceResponse()
    response.say(greeting or VOICEMAIL_PROMPT)
    # Record needs an action or Twilio re-requests the current URL after it, looping the prompt.
    response.record(action=recording_url, method="POST", max_length=max_length, play_beep=True,
                    recording_status_callback=recording_url, recording_status_callback_method="POST")
    response.hangup()
    return str(response)


def hangup_twiml():
    """End the call; used once the forwarded leg is over."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


def listen_twiml(seconds):
    """A test call's own side: listen in silence, long enough for the forward to ring out, then hang up."""
    response = VoiceResponse()
    response.pause(length=seconds)
    response.hangup()
    return str(response)


def empty_twiml():
    """Acknowledge a callback; Twilio wants 200 with TwiML or 204."""
    return str(VoiceResponse())
