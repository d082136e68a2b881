"""The Twilio gateway configured for this app (real account, test server or sandbox)."""
from flask import current_app

from phoneapp.twilio_gateway import gateway_for


def twilio():
    """The app's TwilioGateway, built once per app."""
    app = current_app._get_current_object()
    gateway = app.extensions.get("phoneapp.twilio")
    if gateway is None:
        on_call_created = None
        if app.config["SANDBOX"]:
            from phoneapp.services.simulator import sandbox_call_player

            on_call_created = sandbox_call_player(app)
        gateway = gateway_for(app.config, on_call_created=on_call_created)
        app.extensions["phoneapp.twilio"] = gateway
    return gateway
