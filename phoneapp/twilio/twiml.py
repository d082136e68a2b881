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
    response = VoiceResponse()
    dial_options = {"action": action_url, "method": "POST", "timeout": timeout}
    if caller_id:
        dial_options["caller_id"] = caller_id
    if record:
        dial_options["record"] = "record-from-answer-dual"
        dial_options["recording_status_callback"] = recording_url
        dial_options["recording_status_callback_method"] = "POST"
    dial = response.dial(**dial_options)
    dial.number(target, status_callback=events_url, status_callback_event=DIAL_EVENTS,
                status_callback_method="POST")
    return str(response)


def message_twiml(message=UNAVAILABLE_MESSAGE):
    """Say a short, polite message and hang up: there is nobody to forward to."""
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return str(response)


def voicemail_twiml(*, recording_url, max_length=120):
    """Invite the caller to leave a message; both the result and the file go to `recording_url`."""
    response = VoiceResponse()
    response.say(VOICEMAIL_PROMPT)
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
