"""Call, dial and voicemail lengths as people read them: m:ss, or h:mm:ss from an hour up."""
from __future__ import annotations


def format_duration(seconds) -> str:
    """'0:11', '42:05', '1:02:03', '24:00:00'; "" for a length Twilio has not reported (None)."""
    if seconds is None:
        return ""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    # Minutes alone would grow without bound: a day-long call would read "1440:00".
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"
