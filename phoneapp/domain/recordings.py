"""Which recording links phoneapp keeps and shows: Twilio's own, over https, and nothing else."""
from __future__ import annotations

from urllib.parse import urlsplit


def is_twilio_recording_url(url) -> bool:
    """True for an https URL on Twilio's API host, where Twilio keeps recordings; never a script or another site."""
    if not isinstance(url, str) or len(url) > 500 or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and (host == "twilio.com" or host.endswith(".twilio.com")) and not parts.username


def is_safe_link(url) -> bool:
    """A stored link a page may render: https only, so a `javascript:` or `data:` value is never clickable."""
    return isinstance(url, str) and urlsplit(url.strip()).scheme == "https"


def keep_voicemail(record, url, seconds):
    """Link a voicemail to a call record, unless Twilio has said there is none: its length then stays 0, for good.

    Whichever of the <Record action> and the recording's status callback comes first, an empty or absent
    recording is never shown as a message.
    """
    if record.voicemail_duration == 0:
        return
    if url is None:
        record.voicemail_url, record.voicemail_duration = None, 0
        return
    record.voicemail_url = record.voicemail_url or url
    record.voicemail_duration = record.voicemail_duration or seconds
