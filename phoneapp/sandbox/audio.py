"""The sandbox's recordings: a few seconds of a soft tone per recording SID, as WAV, so a demo call plays."""
from __future__ import annotations

import functools
import hashlib
import io
import math
import sys
import wave
from array import array

from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.wrappers import Response

from phoneapp.sandbox.account import new_sid

SAMPLE_RATE = 8000
SECONDS = 3
# Pitches a phone line carries well; the SID picks one, so two recordings sound apart.
PITCHES = (330.0, 392.0, 440.0, 494.0, 523.0)


@functools.lru_cache(maxsize=32)
def recording_wav(sid: str) -> bytes:
    """The same WAV bytes every time for one SID: 8 kHz 16-bit mono, fading in and out so it never clicks."""
    pitch = PITCHES[hashlib.sha256(sid.encode()).digest()[0] % len(PITCHES)]
    count = SAMPLE_RATE * SECONDS
    fade = SAMPLE_RATE // 10
    samples = array("h", (
        int(6000 * min(1.0, i / fade, (count - i) / fade) * math.sin(2 * math.pi * pitch * i / SAMPLE_RATE))
        for i in range(count)))
    if sys.byteorder == "big":
        samples.byteswap()  # WAV is little-endian
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(SAMPLE_RATE)
        audio.writeframes(samples.tobytes())
    return buffer.getvalue()


def recording_media(request, account, sid):
    """A recording's audio as Twilio serves it without an extension: WAV, or the byte range asked for."""
    audio = recording_wav(sid)
    response = Response(audio, mimetype="audio/x-wav")
    response.headers["Twilio-Request-Id"] = new_sid("RQ")
    try:
        return response.make_conditional(request, accept_ranges=True, complete_length=len(audio))
    except RequestedRangeNotSatisfiable:
        return Response(status=416, headers={"Content-Range": f"bytes */{len(audio)}", "Accept-Ranges": "bytes"})
