"""The Twilio gateway configured for this app: the real account, a local test server, or the sandbox."""
from collections.abc import Mapping

from flask import current_app

from phoneapp.sandbox.account import SandboxAccount
from phoneapp.sandbox.http_client import SandboxHttpClient
from phoneapp.services.simulator import sandbox_call_player
from phoneapp.twilio import gateway


def gateway_for(settings: Mapping, *, on_call_created=None) -> gateway.TwilioGateway:
    """The gateway the settings describe; in the sandbox, `on_call_created` plays the calls phoneapp places."""
    if not settings.get("SANDBOX"):
        return gateway.gateway_for(settings)
    state_path = settings.get("SANDBOX_STATE_PATH")
    if not state_path:
        raise ValueError("SANDBOX_STATE_PATH must name the sandbox account file in sandbox mode")
    account = SandboxAccount.open(state_path)
    return gateway.TwilioGateway(account.account_sid, account.auth_token,
                                 SandboxHttpClient(account, on_call_created=on_call_created))


def twilio():
    """The app's TwilioGateway, built once per app."""
    app = current_app._get_current_object()
    built = app.extensions.get("phoneapp.twilio")
    if built is None:
        on_call_created = None
        if app.config["SANDBOX"]:
            on_call_created = sandbox_call_player(app)
        built = gateway_for(app.config, on_call_created=on_call_created)
        app.extensions["phoneapp.twilio"] = built
    return built
