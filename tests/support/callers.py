"""Calls from named callers, as Twilio reports them through the signed webhooks: for searching and sorting."""
from tests.support.webhooks import TRACKING, post_signed, setup_routing, voice_params

JANE = "+14155550142"
ACME = "+12025551234"
NAMELESS = "+13125550178"
DOE = "+16175558800"


def sid(n):
    return f"CA{n:032d}"


def number_of(call_sid):
    """The n of sid(n)."""
    return int(call_sid[2:])


def webhook(app, path, params):
    response = post_signed(app, path, params)
    assert response.status_code == 200, response.data


def call_in(app, n, caller, name=None, dial_status=None, duration=None):
    """A call as Twilio reports it: the voice webhook, then (if told) how the forward ended and the call's end."""
    extra = {"CallerName": name} if name else {}
    webhook(app, "/twilio/voice", voice_params(call_sid=sid(n), caller=caller, **extra))
    if dial_status:
        webhook(app, "/twilio/dial-status", {"CallSid": sid(n), "DialCallStatus": dial_status, "From": caller,
                                             "To": TRACKING, "DialCallDuration": str(max(duration - 5, 0))})
        webhook(app, "/twilio/status", {"CallSid": sid(n), "CallStatus": "completed", "CallDuration": str(duration),
                                        "From": caller, "To": TRACKING})


def four_callers(app):
    """Calls 1 to 4, in that order, to TRACKING (Acme's): Jane (missed, 12 s), Acme Corp (answered, 30 s), a caller
    without a name (answered, 95 s) and Doe (still ringing, no duration)."""
    setup_routing(app)
    call_in(app, 1, JANE, "SMITH JANE", "no-answer", 12)
    call_in(app, 2, ACME, "Acme Corp", "completed", 30)
    call_in(app, 3, NAMELESS, None, "completed", 95)
    call_in(app, 4, DOE, "JANE DOE")
