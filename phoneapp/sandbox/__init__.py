"""A built-in simulated Twilio account, so phoneapp can be seen working without a real one."""
from phoneapp.sandbox.account import OUTCOMES, SandboxAccount
from phoneapp.sandbox.caller import SimulatedCall, simulate_inbound_call
from phoneapp.sandbox.rest import make_rest_app

__all__ = ["OUTCOMES", "SandboxAccount", "SimulatedCall", "make_rest_app", "simulate_inbound_call"]
