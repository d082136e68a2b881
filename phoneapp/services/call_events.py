"""Every request Twilio made about a call, kept as received (SPEC §2 CallEvent): the call's story, in order.

Twilio's retries are separate requests and are kept each; the same logged request written twice (its
webhook log replayed after a crash) is kept once.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime

from phoneapp.domain.call_times import twilio_timestamp
from phoneapp.domain.fitting import fit_count, fit_sid, fit_text
from phoneapp.extensions import db
from phoneapp.models import CallEvent
from phoneapp.services.db_utils import insert_for

# Enough for every parameter Twilio sends; a request with more, or longer, is kept cut, never refused.
MAX_PARAMS = 100
MAX_KEY_LENGTH = 64
MAX_VALUE_LENGTH = 1000
# Form fields a request may carry that are not Twilio's facts about the call and must never be stored.
NOT_KEPT = frozenset({"AuthToken", "auth_token", "Password", "password", "csrf_token"})


def keep_call_events(events):
    """Store each of `events` (logged webhooks of calls) under its call's SID, with Twilio's sequence and time."""
    rows = [row for row in map(_event_row, events) if row is not None]
    if rows:
        # One statement for the whole batch, its rows in the order the requests arrived.
        db.session.execute(insert_for(CallEvent).on_conflict_do_nothing(index_elements=["event_key"]), rows)


def _event_row(event):
    params = event["params"]
    # The forwarded leg's own requests (its callbacks, and what its person heard and pressed) name its parent.
    is_leg = event["kind"] in ("dial_event", "whisper", "accept")
    call_sid = fit_sid(params.get("ParentCallSid") if is_leg else params.get("CallSid")).value
    if is_leg and call_sid is None:
        call_sid = fit_sid(params.get("CallSid")).value
    if call_sid is None:
        return None
    received_at = datetime.fromisoformat(event["received_at"])
    return {
        "event_key": _event_key(event),
        "call_sid": call_sid,
        "leg_sid": fit_sid(params.get("CallSid")).value if is_leg else None,
        "kind": fit_text(event.get("route") or event["kind"], 20).value,
        "sequence_number": fit_count(params.get("SequenceNumber")).value,
        "sent_at": twilio_timestamp(params.get("Timestamp"), received_at),
        "received_at": received_at,
        "params": _kept_params(params),
    }


def _event_key(event):
    return hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()


def _kept_params(params):
    kept = {}
    for key, value in list(params.items())[:MAX_PARAMS]:
        key = fit_text(str(key), MAX_KEY_LENGTH).value
        if key and key not in NOT_KEPT:
            kept[key] = fit_text(str(value), MAX_VALUE_LENGTH).value
    return kept
