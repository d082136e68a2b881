"""JSON Schemas (2020-12) of what the API reads and writes, for the OpenAPI document's components."""
from phoneapp.api.calls import CALL_STATUSES, OUTCOME_FILTERS
from phoneapp.api.inputs import DEFAULT_PER_PAGE, MAX_PER_PAGE
from phoneapp.domain.business_hours import DAYS, MAX_CLOSED_DATES, MAX_RANGES_PER_DAY
from phoneapp.domain.call_plan import AFTER_HOURS_ACTIONS, MAX_FAILOVER_NUMBERS, RING_MODES
from phoneapp.domain.call_status import FAILED_DIAL_STATUSES, OUTCOMES
from phoneapp.models import CONFIG_STATES, MAX_ID
from phoneapp.services.block_list_changes import MAX_REASON_LENGTH
from phoneapp.services.call_details import MAX_NOTES_LENGTH as MAX_CALL_NOTES_LENGTH
from phoneapp.services.call_details import MAX_TAG_LENGTH, MAX_TAGS
from phoneapp.services.client_rules import (
    MAX_GREETING_LENGTH,
    MAX_NOTICE_RECIPIENTS,
    MAX_RING_SECONDS,
    MIN_RING_SECONDS,
    NOTICE_EVENTS,
)
from phoneapp.services.clients import MAX_NOTES_LENGTH


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema):
    return {"anyOf": [schema, {"type": "null"}]}


ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
E164 = {"type": "string", "pattern": r"^\+[1-9][0-9]{1,14}$", "description": "E.164, e.g. +14155550187",
        "examples": ["+14155550187"]}
TIME = {"type": "string", "format": "date-time", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
        "description": "UTC, ISO 8601 with Z", "examples": ["2024-05-01T13:00:00Z"]}
BLOCK_PATTERN = {"type": "string", "pattern": r"^\+[0-9]{1,15}\*?$",
                 "description": "E.164, or a prefix ending in * that blocks every number starting so",
                 "examples": ["+19005550100", "+1900*"]}
TWILIO_NUMBER_SID = {"type": "string", "pattern": "^PN[0-9a-fA-F]{32}$"}
PHONE_INPUT = {"type": "string", "maxLength": 64,
               "description": "A phone number; E.164 is safest, national format is read in PHONE_REGION"}
# A status or duration Twilio has not reported yet is null.
CALL_STATUS = {"type": "string", "enum": list(CALL_STATUSES)}
DIAL_STATUS = {"type": "string", "description": "Twilio's DialCallStatus of the forwarded leg, e.g. "
               + ", ".join(sorted(FAILED_DIAL_STATUSES | {"completed", "answered", "canceled"}))}


def _object(properties, required=None, description=None):
    schema = {"type": "object", "properties": properties, "additionalProperties": False,
              "required": list(properties) if required is None else list(required)}
    if description:
        schema["description"] = description
    return schema


def _page_of(name):
    return _object({
        "items": {"type": "array", "items": ref(name)},
        "page": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE},
        "total": {"type": "integer", "minimum": 0},
    }, description=f"One page of {name} rows, and how many there are in all")


CLIENT_FIELDS_IN = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "phone": {**PHONE_INPUT, "description": "The default forward target of the client's numbers"},
    "email": nullable({"type": "string", "maxLength": 254}),
    "notes": nullable({"type": "string", "maxLength": MAX_NOTES_LENGTH}),
    "is_active": {"type": "boolean"},
}
# The routing rules (SPEC §3a), read and written alike; in a body, null clears an optional one.
CLOCK = {"type": "string", "pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", "examples": ["09:00"]}
SCHEDULE = {"type": "object", "additionalProperties": False,
            "properties": {day: {"type": "array", "maxItems": MAX_RANGES_PER_DAY,
                                 "items": {"type": "array", "items": CLOCK, "minItems": 2, "maxItems": 2,
                                           "description": "[start, end]"}} for day in DAYS},
            "description": "Opening ranges per day in the client's time zone, e.g. {\"mon\": [[\"09:00\", "
                           "\"17:00\"]]}; an end at or before its start runs past midnight (22:00-06:00). "
                           "No ranges at all: always open"}
DATE = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "examples": ["2026-12-25"]}
RING_SECONDS = {"type": "integer", "minimum": MIN_RING_SECONDS, "maximum": MAX_RING_SECONDS,
                "description": "How long each target rings; null: DIAL_TIMEOUT"}
CLIENT_RULES_IN = {
    "timezone": nullable({"type": "string", "maxLength": 64,
                          "description": "IANA time zone of the schedule, e.g. America/New_York; null: APP_TIMEZONE"}),
    "business_hours": nullable(SCHEDULE),
    "closed_dates": nullable({"type": "array", "items": DATE, "maxItems": MAX_CLOSED_DATES,
                              "description": "Whole days closed (YYYY-MM-DD, in the client's time zone)"}),
    "after_hours": {"type": "string", "enum": list(AFTER_HOURS_ACTIONS),
                    "description": "Outside business hours: straight to voicemail, or forward to after_hours_number"},
    "after_hours_number": nullable({**PHONE_INPUT, "description": "Required when after_hours is forward"}),
    "failover_numbers": nullable({"type": "array", "items": PHONE_INPUT, "maxItems": MAX_FAILOVER_NUMBERS,
                                  "description": "Rung after the first target, in order"}),
    "ring_mode": {"type": "string", "enum": list(RING_MODES),
                  "description": "sequential: each target in turn; simultaneous: all at once, and the first to "
                                 "pick up is put through (Twilio hangs up the others), so with require_accept a "
                                 "pickup that does not press 1 ends the ringing"},
    "ring_seconds": nullable(RING_SECONDS),
    "whisper": {"type": "boolean", "description": "The person who picks up hears \"Call from\" the number's "
                                                  "friendly name (or the tracking number) first"},
    "require_accept": {"type": "boolean",
                       "description": "The person who picks up must press 1 within 5 s, else their leg is hung "
                                      "up and the next target rings; only an accepted call counts as answered"},
    "greeting": nullable({"type": "string", "maxLength": MAX_GREETING_LENGTH,
                          "description": "Said before the voicemail beep"}),
}
CLIENT_RULES_OUT = {
    **CLIENT_RULES_IN,
    "business_hours": SCHEDULE,
    "closed_dates": {"type": "array", "items": DATE},
    "after_hours_number": nullable(E164),
    "failover_numbers": {"type": "array", "items": E164, "maxItems": MAX_FAILOVER_NUMBERS},
}
# Per-call notices (SPEC §10); in a body, null or [] clears a list.
NOTICE_EVENT = {"type": "string", "enum": list(NOTICE_EVENTS)}
CLIENT_NOTICES_IN = {
    "notify_emails": nullable({"type": "array", "items": {"type": "string", "maxLength": 254},
                               "maxItems": MAX_NOTICE_RECIPIENTS,
                               "description": "Addresses e-mailed about each call of the notify_on events"}),
    "notify_sms": nullable({"type": "array", "items": PHONE_INPUT, "maxItems": MAX_NOTICE_RECIPIENTS,
                            "description": "Numbers texted about each call of the notify_on events"}),
    "notify_on": nullable({"type": "array", "items": NOTICE_EVENT, "uniqueItems": True,
                           "description": "The calls told: missed, voicemail, answered; none: no notices"}),
}
CLIENT_NOTICES_OUT = {
    "notify_emails": {"type": "array", "items": {"type": "string"}},
    "notify_sms": {"type": "array", "items": E164},
    "notify_on": {"type": "array", "items": NOTICE_EVENT},
}
ASSIGNMENT_FIELDS_IN = {
    "client_id": nullable({**ID, "description": "An existing client; null unassigns"}),
    "forward_to_number": nullable({**PHONE_INPUT, "description": "Overrides the client's phone; null uses it"}),
    "is_active": {"type": "boolean"},
    "friendly_name": nullable({"type": "string", "maxLength": 200}),
}

SCHEMAS = {
    "Error": _object({
        "error": {"type": "string", "description": "What went wrong, in one line"},
        "details": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "Per field (body field or query parameter): why it was refused"},
    }),
    "Client": _object({
        "id": ID,
        "name": {"type": "string"},
        "phone": E164,
        "email": nullable({"type": "string"}),
        "notes": {"type": "string"},
        "is_active": {"type": "boolean"},
        **CLIENT_RULES_OUT,
        **CLIENT_NOTICES_OUT,
        "created_at": TIME,
        "updated_at": TIME,
    }),
    "ClientCreate": _object({**CLIENT_FIELDS_IN, **CLIENT_NOTICES_IN}, required=["name", "phone"]),
    "ClientUpdate": _object({**CLIENT_FIELDS_IN, **CLIENT_NOTICES_IN}, required=[],
                            description="Any subset of the fields; null clears an optional one (email, notes, "
                                        "and the rules' time zone, hours, dates, numbers, ring_seconds, greeting)"),
    "NumberStatus": _object({
        "colour": {"type": "string", "enum": ["green", "yellow", "red", "grey"]},
        "label": {"type": "string", "enum": ["Forwarding", "Pending setup", "Error", "Inactive"]},
        "reason": {"type": "string", "description": "One line saying why"},
        "key": {"type": "string", "enum": ["forwarding", "pending", "error", "inactive"]},
    }, description="The status dot of a tracking number"),
    "PhoneAssignment": _object({
        "id": ID,
        "twilio_sid": TWILIO_NUMBER_SID,
        "phone_number": E164,
        "friendly_name": {"type": "string"},
        "client_id": nullable(ID),
        "client": nullable(ref("Client")),
        "forward_to_number": nullable(E164),
        "target_number": nullable({"type": "string", "description": "Where calls go now: the override, else "
                                   "the client's phone (the status says so when it is not dialable)"}),
        "is_active": {"type": "boolean"},
        "webhook_url": nullable({"type": "string", "description": "Voice URL as last read from Twilio"}),
        "config_state": {"type": "string", "enum": list(CONFIG_STATES)},
        "config_detail": {"type": "string"},
        "last_verified_at": nullable(TIME),
        "last_call_at": nullable(TIME),
        "created_at": TIME,
        "updated_at": TIME,
        "status": ref("NumberStatus"),
    }, description="A tracking number"),
    "PhoneAssignmentUpsert": _object({
        "twilio_sid": TWILIO_NUMBER_SID,
        "phone_number": nullable({**PHONE_INPUT,
                                  "description": "Optional; must match what Twilio has under twilio_sid"}),
        **ASSIGNMENT_FIELDS_IN,
    }, required=["twilio_sid"]),
    "PhoneAssignmentUpdate": _object(ASSIGNMENT_FIELDS_IN, required=[],
                                     description="Any subset of the fields; null clears an optional one"),
    "CallRecord": _object({
        "id": ID,
        "twilio_call_sid": {"type": "string"},
        "phone_assignment_id": nullable(ID),
        "client_id": nullable({**ID, "description": "The client the call was routed for, kept when the number moves"}),
        "from_number": {"type": "string", "description": "As Twilio sent it: E.164, or e.g. anonymous"},
        "to_number": {"type": "string", "description": "The tracking number called, as Twilio sent it"},
        "forwarded_to": nullable({"type": "string", "description": "The number the call was forwarded to"}),
        "routed_by": nullable({"type": "string",
                               "description": "How the call was routed: assignment, default_number or message"}),
        "status": CALL_STATUS,
        "dial_status": nullable(DIAL_STATUS),
        "dial_leg_status": nullable(CALL_STATUS),
        "dial_call_sid": nullable({"type": "string"}),
        "outcome": {"type": "string", "enum": list(OUTCOMES)},
        "duration": nullable({"type": "integer", "minimum": 0, "description": "Seconds"}),
        "dial_duration": nullable({"type": "integer", "minimum": 0, "description": "Seconds"}),
        "recording_url": nullable({"type": "string", "description": "phoneapp's address of the recording "
                                   "(/calls/<id>/recording, for signed-in staff), never Twilio's"}),
        "recording_sid": nullable({"type": "string"}),
        "voicemail_url": nullable({"type": "string", "description": "phoneapp's address of the voicemail "
                                   "(/calls/<id>/voicemail, for signed-in staff), never Twilio's"}),
        "voicemail_duration": nullable({"type": "integer", "minimum": 0,
                                        "description": "Seconds; 0 when Twilio said the message was empty"}),
        "route_rule": nullable({"type": "string",
                                "description": "The rule that decided the call: open, after-hours, failover 2, "
                                               "blocked, default or message"}),
        "answered_by": nullable({"type": "string", "description": "The number that took the call"}),
        "accepted_by": nullable({"type": "string", "description": "The number whose person pressed 1 to take it"}),
        "caller_name": nullable({"type": "string", "description": "Twilio's CallerName, when it sent one"}),
        "first_time_caller": nullable({"type": "boolean",
                                       "description": "The caller had never called this client before"}),
        "notes": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "caller_hung_up": {"type": "boolean",
                           "description": "The caller hung up before anybody answered; the target is not blamed"},
        "ended_by": nullable({"type": "string", "enum": ["status-callback", "call-flow", "timeout"],
                              "description": "What said the call was over: Twilio's final status callback "
                                             "(exact), the call's own flow, or nothing heard for too long"}),
        "error_code": nullable({"type": "string",
                                "description": "Twilio's error with the voice URL, when the fallback URL answered"}),
        "error_url": nullable({"type": "string", "description": "The voice URL that failed"}),
        "caller_city": nullable({"type": "string"}),
        "caller_state": nullable({"type": "string"}),
        "caller_zip": nullable({"type": "string"}),
        "caller_country": nullable({"type": "string"}),
        "is_test": {"type": "boolean"},
        "started_at": TIME,
        "answered_at": nullable(TIME),
        "ended_at": nullable(TIME),
        "created_at": TIME,
        "updated_at": TIME,
    }, description="One inbound call to a tracking number"),
    "BlockedNumber": _object({
        "id": ID,
        "number": BLOCK_PATTERN,
        "is_prefix": {"type": "boolean", "description": "number ends in *: every caller starting so is blocked"},
        "client_id": nullable({**ID, "description": "Blocked for this client's numbers; null: for every client"}),
        "client_name": nullable({"type": "string"}),
        "reason": {"type": "string"},
        "created_by": {"type": "string", "description": "Who added it (an e-mail, or system)"},
        "created_at": TIME,
    }, description="A caller turned away: the call is rejected as busy and recorded as blocked"),
    "BlockedNumberCreate": _object({
        "number": {**PHONE_INPUT, "description": "A phone number (national format is read in PHONE_REGION), "
                                                 "or + and digits then * for a prefix, e.g. +1900*"},
        "client_id": nullable({**ID, "description": "An existing client; absent or null blocks for every client"}),
        "reason": nullable({"type": "string", "maxLength": MAX_REASON_LENGTH}),
    }, required=["number"]),
    "BlockedNumberPage": _page_of("BlockedNumber"),
    "ClientPage": _page_of("Client"),
    "PhoneAssignmentPage": _page_of("PhoneAssignment"),
    "CallRecordPage": _page_of("CallRecord"),
    "CallRecordUpdate": _object({
        "notes": nullable({"type": "string", "maxLength": MAX_CALL_NOTES_LENGTH,
                           "description": "Staff's notes on the call; null clears them"}),
        "tags": nullable({"type": "array", "maxItems": MAX_TAGS,
                          "items": {"type": "string", "pattern": rf"^[\w-]{{1,{MAX_TAG_LENGTH}}}$"},
                          "description": "Words such as lead or spam, kept lower-case and each once; null clears "
                                         "them"}),
    }, required=[], description="notes, tags or both; any other field is refused"),
    "CallEvent": _object({
        "id": ID,
        "kind": {"type": "string", "description": "The webhook it came to: voice, call_status, dial_status, "
                                                  "dial_events, whisper, accept, recording, fallback…"},
        "leg_sid": nullable({"type": "string", "description": "The forwarded leg it is about, if any"}),
        "sequence_number": nullable({"type": "integer", "minimum": 0,
                                     "description": "Twilio's SequenceNumber, counted per call leg"}),
        "sent_at": nullable({**TIME, "description": "Twilio's Timestamp: when it was sent"}),
        "received_at": TIME,
        "repeat": {"type": "boolean", "description": "Twilio sent this one before (a retry)"},
        "out_of_order": {"type": "boolean", "description": "It came after one Twilio sent later"},
        "params": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "Twilio's parameters as received; signatures and secrets are never kept"},
    }, description="One webhook or callback of a call, as received"),
    "CallEventPage": _page_of("CallEvent"),
}

STATUS_FILTER_VALUES = list(CALL_STATUSES) + list(OUTCOME_FILTERS)
