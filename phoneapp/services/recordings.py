"""Recordings and voicemail played through phoneapp: Twilio's audio streamed with the account's credentials.

Staff's browser only ever sees phoneapp's own address for a recording; Twilio's URL and credentials stay here.
"""
from __future__ import annotations

import re

from phoneapp.domain.recordings import is_safe_link
from phoneapp.services.errors import NotFound, UpstreamError
from phoneapp.services.twilio_account import twilio
from phoneapp.twilio.gateway import TwilioError
from phoneapp.twilio.public_urls import public_url

MEDIA_KINDS = ("recording", "voicemail")
# One range, as players send when they seek ("bytes=1000-", "bytes=-500"); anything else fetches the whole file.
_BYTE_RANGE = re.compile(r"^bytes=(?:[0-9]{1,15}-[0-9]{0,15}|-[0-9]{1,15})$")


def twilio_media_url(record, kind):
    """Where Twilio keeps the call's recording or voicemail, or None when it has none (pages show the same)."""
    url = record.recording_url if kind == "recording" else record.voicemail_url
    return url if is_safe_link(url) else None


def media_address(call_id, kind):
    """phoneapp's own absolute address of a call's recording or voicemail, for the API, the CSV and notices."""
    return public_url(f"calls.call_{kind}", call_id=call_id)


def media_addresses(call_id, recording_url, voicemail_url):
    """(recording, voicemail) as phoneapp's addresses, None for what the call does not have."""
    return (media_address(call_id, "recording") if is_safe_link(recording_url) else None,
            media_address(call_id, "voicemail") if is_safe_link(voicemail_url) else None)


def usable_range(value):
    """The Range header to pass on to Twilio, or None when it is absent or not a single byte range."""
    value = (value or "").strip()
    return value if _BYTE_RANGE.match(value) else None


def open_media(record, kind, byte_range=None):
    """The call's recording or voicemail from Twilio, streaming; NotFound without one, UpstreamError if Twilio fails."""
    url = twilio_media_url(record, kind)
    if url is None:
        raise NotFound(f"this call has no {kind}")
    try:
        return twilio().fetch_media(url, usable_range(byte_range))
    except TwilioError as error:
        said = f"HTTP {error.status}: {error.message}" if error.status else error.message
        raise UpstreamError(f"Twilio did not hand over the {kind} ({said}). Try again in a minute; if it keeps "
                            f"failing, check the Twilio credentials on the health page.") from error
