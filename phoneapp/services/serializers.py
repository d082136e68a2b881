"""Rows as API JSON: snake_case keys, times as ISO 8601 UTC with "Z", phone numbers in E.164."""
from __future__ import annotations

from phoneapp.domain.call_status import outcome_of
from phoneapp.services.client_rules import rule_fields
from phoneapp.services.number_statuses import number_statuses
from phoneapp.services.recordings import media_addresses


def iso(moment):
    """Stored times are naive UTC; the API says so explicitly."""
    if moment is None:
        return None
    return moment.replace(microsecond=0).isoformat() + "Z"


def client_json(client):
    return {
        "id": client.id,
        "name": client.name,
        "phone": client.phone,
        "email": client.email,
        "notes": client.notes or "",
        "is_active": client.is_active,
        **rule_fields(client),
        "created_at": iso(client.created_at),
        "updated_at": iso(client.updated_at),
    }


def status_json(status):
    return {"colour": status.colour, "label": status.label, "reason": status.reason, "key": status.key}


def assignment_json(number, status):
    return {
        "id": number.id,
        "twilio_sid": number.twilio_sid,
        "phone_number": number.phone_number,
        "friendly_name": number.friendly_name or "",
        "client_id": number.client_id,
        "client": client_json(number.client) if number.client is not None else None,
        "forward_to_number": number.forward_to_number,
        "target_number": number.target_number,
        "is_active": number.is_active,
        "webhook_url": number.webhook_url,
        "config_state": number.config_state,
        "config_detail": number.config_detail or "",
        "last_verified_at": iso(number.last_verified_at),
        "last_call_at": iso(number.last_call_at),
        "created_at": iso(number.created_at),
        "updated_at": iso(number.updated_at),
        "status": status_json(status),
    }


def assignments_json(numbers):
    statuses = number_statuses(numbers)
    return [assignment_json(number, statuses[number.id]) for number in numbers]


def call_record_json(record):
    """`client_id` is the client the call was routed for; reassigning the number later does not change it.

    Recordings are phoneapp's own addresses (staff sign in to play them); Twilio's URLs are never handed out.
    """
    recording_url, voicemail_url = media_addresses(record.id, record.recording_url, record.voicemail_url)
    return {
        "id": record.id,
        "twilio_call_sid": record.twilio_call_sid,
        "phone_assignment_id": record.phone_assignment_id,
        "client_id": record.client_id,
        "from_number": record.from_number,
        "to_number": record.to_number,
        "forwarded_to": record.forwarded_to,
        "routed_by": record.routed_by,
        "status": record.status,
        "dial_status": record.dial_status,
        "dial_leg_status": record.dial_leg_status,
        "dial_call_sid": record.dial_call_sid,
        "outcome": outcome_of(record),
        "duration": record.duration,
        "dial_duration": record.dial_duration,
        "recording_url": recording_url,
        "recording_sid": record.recording_sid,
        "voicemail_url": voicemail_url,
        "voicemail_duration": record.voicemail_duration,
        "route_rule": record.route_rule,
        "answered_by": record.answered_by,
        "accepted_by": record.accepted_by,
        "caller_name": record.caller_name,
        "first_time_caller": record.first_time_caller,
        "notes": record.notes or "",
        "tags": list(record.tags or []),
        "caller_hung_up": record.caller_hung_up,
        "ended_by": record.ended_by,
        "error_code": record.error_code,
        "error_url": record.error_url,
        "caller_city": record.caller_city,
        "caller_state": record.caller_state,
        "caller_zip": record.caller_zip,
        "caller_country": record.caller_country,
        "is_test": record.is_test,
        "started_at": iso(record.started_at),
        "answered_at": iso(record.answered_at),
        "ended_at": iso(record.ended_at),
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
    }


def call_event_json(entry):
    """One request Twilio made about a call, as received (`entry`: a call_details.TimelineEntry)."""
    event = entry.event
    return {
        "id": event.id,
        "kind": event.kind,
        "leg_sid": event.leg_sid,
        "sequence_number": event.sequence_number,
        "sent_at": iso(event.sent_at),
        "received_at": iso(event.received_at),
        "repeat": entry.repeat,
        "out_of_order": entry.out_of_order,
        "params": dict(event.params or {}),
    }


def page_json(items, page, per_page, total):
    return {"items": items, "page": page, "per_page": per_page, "total": total}
