"""Outbound webhooks (SPEC §10): events signed per the Standard Webhooks specification, delivered at least once."""
from __future__ import annotations


def queue_call_events(record, outcome):
    """Queue call.completed (and call.missed or voicemail.created) for a settled call, for every endpoint."""
    raise NotImplementedError  # written with the deliveries
