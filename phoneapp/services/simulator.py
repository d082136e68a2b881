"""Sandbox calls: the simulated Twilio rings phoneapp's real webhook routes, signed, in-process."""
import logging
import random
import threading

from flask import current_app

from phoneapp.sandbox.account import SandboxAccount
from phoneapp.sandbox.caller import simulate_inbound_call
from phoneapp.twilio.signed_requests import deliver, signed_request, wsgi_transport

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


def sandbox_call_player(app):
    """The sandbox's answer to a call phoneapp places (a live test call): Twilio's part, played in-process.

    The test phone's status callbacks are sent, and a call to a sandbox number rings it through
    phoneapp's real webhooks. Like Twilio it plays on its own thread, with its own request contexts;
    unlike Twilio, creating the call waits until it is over, so no part of it outlives the worker's job.
    """

    def play(call):
        thread = threading.Thread(target=_play_call, args=(app, call), name=f"sandbox-call-{call['sid']}",
                                  daemon=True)
        thread.start()
        thread.join(timeout=app.config["TEST_CALL_TIMEOUT"] + 60)

    return play


def _play_call(app, call):
    with app.app_context():
        account = SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])
        transport = in_process_transport(app)
        request = call.get("request") or {}
        callback, events = request.get("status_callback"), set(request.get("status_callback_events") or ())

        def caller_status(status, event):
            if callback and event in events:
                params = {"AccountSid": account.account_sid, "CallSid": call["sid"], "CallStatus": status,
                          "Direction": "outbound-api", "From": call["from"], "To": call["to"],
                          "ApiVersion": "2010-04-01"}
                deliver(transport, signed_request(account.auth_token, callback, params, kind="status"))

        try:
            caller_status("initiated", "initiated")
            if account.find_number(call["to"]) is None:
                # A phone outside the account: it rings and answers, or not, as the sandbox is told.
                outcome = account.target_behaviour(call["to"])
                final = "completed" if outcome == "answered" else outcome
            else:
                caller_status("ringing", "ringing")
                account.update_call(call["sid"], status="in-progress")
                caller_status("in-progress", "answered")
                simulate_inbound_call(account, transport, from_number=call["from"], to_number=call["to"],
                                      leave_voicemail=False, pace=app.config["SANDBOX_CALL_PACE"])
                final = "completed"
            account.update_call(call["sid"], status=final)
            caller_status(final, "completed")
        except Exception:
            log.exception("sandbox call %s failed", call.get("sid"))
