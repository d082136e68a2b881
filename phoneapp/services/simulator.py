"""Sandbox calls: the simulated Twilio rings phoneapp's real webhook routes, signed, in-process."""
import logging
import random
import threading

from flask import current_app

from phoneapp.sandbox.account import SandboxAccount
from phoneapp.sandbox.caller import simulate_inbound_call, wsgi_transport

log = logging.getLogger(__name__)
SANDBOX_CALLERS = ("+12025550143", "+13125550178", "+16175550119", "+17185550165", "+14085550132")


class UnreachableWebhook(ConnectionError):
    """The simulated Twilio was told to call a URL that is not this phoneapp."""


def in_process_transport(app):
    """Deliver the sandbox's webhook requests through the app's full WSGI stack."""
    base = app.config["PUBLIC_BASE_URL"]
    send = wsgi_transport(app)

    def transport(url, params, headers):
        # A voice URL pointing elsewhere is unreachable here, as a stranger's server would be for Twilio.
        if not url or not url.startswith(base + "/"):
            raise UnreachableWebhook(f"{url!r} is not served by this phoneapp")
        return send(url, params, headers)

    return transport


def place_simulated_call(to_number, *, from_number=None, outcome=None, background=True, pace=None):
    """Ring `to_number` in the sandbox; in the background, at a human pace, unless told otherwise."""
    app = current_app._get_current_object()
    if not app.config["SANDBOX"]:
        raise RuntimeError("simulated calls exist only in sandbox mode")
    account = SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])
    caller = from_number or random.choice(SANDBOX_CALLERS)
    step_pace = app.config["SANDBOX_CALL_PACE"] if pace is None else pace

    def run():
        try:
            return simulate_inbound_call(account, in_process_transport(app), from_number=caller,
                                         to_number=to_number, outcome=outcome, pace=step_pace)
        except Exception:
            log.exception("simulated call to %s failed", to_number)
            raise

    if not background:
        return run()
    threading.Thread(target=run, name=f"sandbox-call-{to_number}", daemon=True).start()
    return None
