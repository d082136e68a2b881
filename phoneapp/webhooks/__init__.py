"""Twilio's webhooks (SPEC §2): thin, signed routes that log each request, then answer with TwiML."""
from phoneapp.webhooks.calls import bp

__all__ = ["bp"]
