"""The Twilio gateway configured for this app (real account, test server or sandbox)."""
from flask import current_app

from phoneapp.twilio_gateway import gateway_for


def twilio():
    """The app's TwilioGateway, built once per app."""
    gateway = current_app.extensions.get("phoneapp.twilio")
    if gateway is None:
        gateway = gateway_for(current_app.config)
        current_app.extensions["phoneapp.twilio"] = gateway
    return gateway
