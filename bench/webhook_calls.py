"""The requests of bench/webhooks.py: whole calls signed as Twilio signs them, written for wrk to replay."""
import random
import secrets
import sys
import urllib.error
import urllib.request
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

# Signatures are checked against this address, not the one wrk connects to: as behind a TLS proxy.
PUBLIC_BASE_URL = "https://calls.bench.example"
ACCOUNT_SID = "AC" + "b3" * 16
AUTH_TOKEN = secrets.token_hex(16)
SECRET_KEY = secrets.token_urlsafe(48)
# Names the web process that answered (bench/webhook_server.py).
SERVED_BY_HEADER = "X-Served-By"
WRK_THREADS = 2
# One client in this many rings a failover number after its own, with a whisper and press 1 to accept.
SCREENED_EVERY = 10
# Calls are sent in blocks: every voice webhook of a block, then every "ringing" of it, and so on, so that
# the requests of one call are a block apart, as Twilio's callbacks of one call are seconds apart.
BLOCK = 64
AREA_CODES = ("415", "312", "206", "512", "617", "303", "404", "702", "919", "503")
PLACES = (("San Francisco", "CA", "94103"), ("Chicago", "IL", "60601"), ("Seattle", "WA", "98101"),
          ("Austin", "TX", "78701"), ("Boston", "MA", "02108"), ("Denver", "CO", "80202"))


def fail(message):
    sys.exit(f"bench/webhooks.py: {message}")


def phone(rng):
    return f"+1{rng.choice(AREA_CODES)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"


class Requests:
    """Raw, signed HTTP requests of whole calls, as Twilio sends them."""

    account_sid = ACCOUNT_SID

    def __init__(self, tracked, port, seed, auth_token=AUTH_TOKEN):
        self.tracked = tracked
        self.host = f"127.0.0.1:{port}"
        self.validator = RequestValidator(auth_token)
        self.rng = random.Random(seed)

    def signed(self, path, params):
        """The body of `params` POSTed to `path` (and its query), and its X-Twilio-Signature."""
        return urlencode(params), self.validator.compute_signature(PUBLIC_BASE_URL + path, params)

    def raw(self, path, params, prefix=""):
        body, signature = self.signed(path, params)
        return (f"POST {prefix}{path} HTTP/1.1\r\nHost: {self.host}\r\nUser-Agent: TwilioProxy/1.1\r\n"
                f"Accept: */*\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()

    def post(self, path, params):
        """Send one signed request now and return the answer (bytes); anything but a 200 ends the benchmark."""
        body, signature = self.signed(path, params)
        request = urllib.request.Request(
            f"http://{self.host}{path}", data=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            fail(f"POST {path} answered {error.code}: {error.read()[:300]!r}")

    @staticmethod
    def public_path(url):
        """The path and query of a URL phoneapp gave Twilio."""
        if not (url or "").startswith(PUBLIC_BASE_URL + "/"):
            fail(f"{url!r} is not under {PUBLIC_BASE_URL}")
        return url[len(PUBLIC_BASE_URL):]

    def caller(self):
        return phone(self.rng)

    def call_params(self, to, caller, call_sid):
        """What every request of the inbound call `call_sid` from `caller` to `to` carries."""
        city, state, zip_code = self.rng.choice(PLACES)
        return {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": call_sid, "Called": to,
                "CalledCountry": "US", "Caller": caller, "CallerCity": city, "CallerCountry": "US",
                "CallerState": state, "CallerZip": zip_code, "Direction": "inbound", "From": caller,
                "FromCity": city, "FromCountry": "US", "FromState": state, "FromZip": zip_code, "To": to,
                "ToCountry": "US"}

    def voice(self, prefix="", to=None):
        """The voice webhook of a new call to `to` (a random tracking number): (kind, raw request)."""
        to = to or self.rng.choice(self.tracked)
        params = {**self.call_params(to, phone(self.rng), "CA" + secrets.token_hex(16)), "CallStatus": "ringing"}
        return "v", self.raw("/twilio/voice", params, prefix)

    def call(self, prefix=""):
        """The five requests of one forwarded, answered call: [(kind, raw request)] in Twilio's order."""
        rng = self.rng
        to = rng.choice(self.tracked)
        base = self.call_params(to, phone(rng), "CA" + secrets.token_hex(16))
        talk = rng.randint(20, 400)

        def status(value, sequence, **extra):
            return {**base, "CallStatus": value, "CallbackSource": "call-progress-events",
                    "SequenceNumber": str(sequence), "Timestamp": "Tue, 24 Nov 2026 10:00:00 +0000", **extra}

        return [
            ("v", self.raw("/twilio/voice", {**base, "CallStatus": "ringing"}, prefix)),
            ("s", self.raw("/twilio/status", status("ringing", 0), prefix)),
            ("s", self.raw("/twilio/status", status("in-progress", 1), prefix)),
            ("d", self.raw("/twilio/dial-status", {**base, "CallStatus": "in-progress", "DialBridged": "true",
                                                   "DialCallSid": "CA" + secrets.token_hex(16),
                                                   "DialCallStatus": "completed",
                                                   "DialCallDuration": str(talk)}, prefix)),
            ("s", self.raw("/twilio/status", status("completed", 2, CallDuration=str(talk + 6),
                                                    Duration=str(talk // 60 + 1)), prefix)),
        ]

    def write(self, path_prefix, calls_per_thread, prefix=""):
        """One file per wrk thread, `path_prefix`.<thread>; returns how many requests each holds."""
        for thread in range(WRK_THREADS):
            with open(f"{path_prefix}.{thread}", "wb") as out:
                for start in range(0, calls_per_thread, BLOCK):
                    block = [self.call(prefix) for _ in range(min(BLOCK, calls_per_thread - start))]
                    for step in range(5):
                        for call in block:
                            out.write(wrk_entry(*call[step]))
        return calls_per_thread * 5

    def write_voice(self, path_prefix, per_thread, prefix=""):
        """Only voice webhooks, each of a new call: one file per wrk thread of `per_thread` requests."""
        self.write_each(path_prefix, per_thread, lambda: self.voice(prefix))
        return per_thread

    @staticmethod
    def write_each(path_prefix, per_thread, make):
        """One file per wrk thread of `per_thread` requests, each (kind, raw request) from `make()`."""
        for thread in range(WRK_THREADS):
            with open(f"{path_prefix}.{thread}", "wb") as out:
                for _ in range(per_thread):
                    out.write(wrk_entry(*make()))


def wrk_entry(kind, raw):
    """One request as WRK_SCRIPT reads it."""
    return f"{kind} {len(raw)}\n".encode() + raw

