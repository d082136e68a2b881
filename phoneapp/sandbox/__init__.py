"""A built-in simulated Twilio account, so phoneapp can be seen working without a real one."""
from phoneapp.sandbox.account import OUTCOMES, SandboxAccount
from phoneapp.sandbox.caller import (
                                     SimulatedCall,
                                     WebhookRequest,
                                     deliver,
                                     http_transport,
                                     signed_request,
                                     simulate_inbound_call,
                                     wsgi_transport,
)
from phoneapp.sandbox.rest import make_rest_app

__all__ = ["OUTCOMES", "SandboxAccount", "SimulatedCall", "WebhookRequest", "deliver", "http_transport",
           "make_rest_app", "signed_request", "simulate_inbound_call", "wsgi_transport"]
