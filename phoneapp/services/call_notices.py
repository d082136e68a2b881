"""Per-call notices (SPEC §10): a client's missed, voicemail and answered calls told by e-mail and text, once."""
from __future__ import annotations


def queue_call_notices(record, outcome):
    """Queue the notices `record`'s client wants for a call that ended `outcome` (called as the call settles)."""
    raise NotImplementedError  # written with the notices
