"""A client's routing rules (SPEC §3a) and who is told of its calls (§10) as staff set them: validated field by
field, stored normalised, audited."""
from __future__ import annotations

import re

from phoneapp.domain.business_hours import hours_as_json, parse_closed_dates, parse_hours, parse_zone
from phoneapp.domain.call_plan import AFTER_HOURS_ACTIONS, MAX_FAILOVER_NUMBERS, RING_MODES, ClientRules, client_rules
from phoneapp.domain.phones import InvalidPhoneNumber, parse_phone
from phoneapp.domain.rule_summary import hours_in_words, summarise_rules
from phoneapp.services.audit import record_audit
from phoneapp.services.call_rules import rule_fields as stored_rule_fields
from phoneapp.services.routing_table import LOOP_REFUSAL, is_tracking_number

RULE_FIELDS = ("timezone", "business_hours", "closed_dates", "after_hours", "after_hours_number",
               "failover_numbers", "ring_mode", "ring_seconds", "whisper", "require_accept", "greeting")
MIN_RING_SECONDS, MAX_RING_SECONDS = 5, 600
MAX_GREETING_LENGTH = 500
RULES_CHANGED = "change_routing_rules"
# Per-call notices (SPEC §10): who hears of which of the client's calls.
NOTICE_FIELDS = ("notify_emails", "notify_sms", "notify_on")
NOTICE_EVENTS = ("missed", "voicemail", "answered")
MAX_NOTICE_RECIPIENTS = 10
# One mailbox: no spaces, commas or brackets (which would make it several, or a display name), a dotted domain.
_EMAIL = re.compile(r"^[^@\s,;<>()\[\]\"]+@[^@\s,;<>()\[\]\"]+\.[^@\s,;<>()\[\]\"]+$")


def rule_fields(client):
    """The rules and notices as the API answers them: empty lists and objects rather than nulls, so scripts need
    no checks."""
    return {**_routing_fields(client), **notice_fields(client)}


def notice_fields(client):
    """Who hears of which calls; events in their fixed order."""
    events = set(client.notify_on or ())
    return {
        "notify_emails": list(client.notify_emails or []),
        "notify_sms": list(client.notify_sms or []),
        "notify_on": [event for event in NOTICE_EVENTS if event in events],
    }


def _routing_fields(client):
    return {
        "timezone": client.timezone,
        "business_hours": client.business_hours or {},
        "closed_dates": list(client.closed_dates or []),
        "after_hours": client.after_hours or "voicemail",
        "after_hours_number": client.after_hours_number,
        "failover_numbers": list(client.failover_numbers or []),
        "ring_mode": client.ring_mode or "sequential",
        "ring_seconds": client.ring_seconds,
        "whisper": bool(client.whisper),
        "require_accept": bool(client.require_accept),
        "greeting": client.greeting,
    }


def audited_rules(client):
    """The rules as the audit trail shows them: the schedule in words, lists as lists."""
    fields = _routing_fields(client)
    fields["business_hours"] = hours_in_words(fields["business_hours"])
    return fields


def clean_rule_fields(data, region, current=None):
    """({field: stored value}, {field: why}) for the rule fields present in `data`.

    `current` (the client being changed, or None) supplies the fields not given, for the checks that look at two
    fields at once: an after-hours forward needs a number, whichever of the two the change names.
    """
    clean, errors = {}, {}
    if "timezone" in data:
        value = data["timezone"]
        if value in (None, ""):
            clean["timezone"] = None
        else:
            zone, why = parse_zone(value)
            if why:
                errors["timezone"] = why
            else:
                clean["timezone"] = zone.key
    if "business_hours" in data:
        hours, problems = parse_hours(data["business_hours"])
        errors.update(problems)
        if not problems:
            clean["business_hours"] = hours_as_json(hours) or None
    if "closed_dates" in data:
        dates, problems = parse_closed_dates(data["closed_dates"])
        errors.update(problems)
        if not problems:
            clean["closed_dates"] = sorted(day.isoformat() for day in dates) or None
    _choice(data, "after_hours", AFTER_HOURS_ACTIONS, clean, errors)
    _choice(data, "ring_mode", RING_MODES, clean, errors)
    if "after_hours_number" in data:
        value = data["after_hours_number"]
        if value in (None, ""):
            clean["after_hours_number"] = None
        else:
            number, why = _target(value, region)
            if why:
                errors["after_hours_number"] = why
            else:
                clean["after_hours_number"] = number
    if "failover_numbers" in data:
        _failovers(data["failover_numbers"], region, clean, errors)
    if "ring_seconds" in data:
        value = data["ring_seconds"]
        if value is None:
            clean["ring_seconds"] = None
        elif isinstance(value, bool) or not isinstance(value, int) \
                or not MIN_RING_SECONDS <= value <= MAX_RING_SECONDS:
            errors["ring_seconds"] = f"must be a whole number of seconds from {MIN_RING_SECONDS} to " \
                                     f"{MAX_RING_SECONDS}, or null for the default"
        else:
            clean["ring_seconds"] = value
    for field in ("whisper", "require_accept"):
        if field in data:
            if isinstance(data[field], bool):
                clean[field] = data[field]
            else:
                errors[field] = "must be true or false"
    if "greeting" in data:
        value = data["greeting"]
        if value is not None and not isinstance(value, str):
            errors["greeting"] = "must be text"
        elif len((value or "").strip()) > MAX_GREETING_LENGTH:
            errors["greeting"] = f"at most {MAX_GREETING_LENGTH} characters"
        else:
            clean["greeting"] = (value or "").strip() or None
    _after_hours_needs_a_number(clean, errors, current)
    _notices(data, region, clean, errors)
    return clean, errors


def _notices(data, region, clean, errors):
    if "notify_emails" in data:
        _recipients(data["notify_emails"], "notify_emails", "e-mail addresses", _address, clean, errors)
    if "notify_sms" in data:
        _recipients(data["notify_sms"], "notify_sms", "phone numbers", lambda value: _mobile(value, region),
                    clean, errors)
    if "notify_on" in data:
        value = data["notify_on"]
        if value in (None, ""):
            clean["notify_on"] = None
        elif not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            errors["notify_on"] = f"must be a list of events: {', '.join(NOTICE_EVENTS)}"
        else:
            unknown = [item for item in value if item not in NOTICE_EVENTS]
            if unknown:
                errors["notify_on"] = f"unknown event “{unknown[0][:40]}”: the events are {', '.join(NOTICE_EVENTS)}"
            else:
                clean["notify_on"] = [event for event in NOTICE_EVENTS if event in value] or None


def _recipients(value, field, what, check, clean, errors):
    """A list of e-mail addresses or numbers, each checked by `check` ((stored, None) or (None, why))."""
    if value in (None, ""):
        clean[field] = None
        return
    if not isinstance(value, list):
        errors[field] = f"must be a list of {what}"
        return
    if len(value) > MAX_NOTICE_RECIPIENTS:
        errors[field] = f"at most {MAX_NOTICE_RECIPIENTS} {what}"
        return
    stored, problems = [], {}
    for index, item in enumerate(value):
        recipient, why = check(item)
        if why:
            problems[f"{field}[{index}]"] = why
        elif recipient.lower() in (known.lower() for known in stored):
            problems[f"{field}[{index}]"] = "listed twice"
        else:
            stored.append(recipient)
    errors.update(problems)
    if not problems:
        clean[field] = stored or None


def _address(value):
    """(the address, None) for one e-mail address, else (None, why not)."""
    if not isinstance(value, str):
        return None, "must be an e-mail address written as text"
    address = value.strip()
    if not address:
        return None, "an e-mail address is required"
    if len(address) > 254:
        return None, "at most 254 characters"
    if not _EMAIL.match(address) or ".." in address or address.endswith("."):
        return None, f"“{address[:60]}” is not an e-mail address such as name@example.com"
    return address, None


def _mobile(value, region):
    """(E.164, None) for a number texts can go to, else (None, why not)."""
    if not isinstance(value, str):
        return None, "must be a phone number written as text"
    try:
        return parse_phone(value, region), None
    except InvalidPhoneNumber as exc:
        return None, exc.reason


def _choice(data, field, choices, clean, errors):
    if field in data:
        if data[field] in choices:
            clean[field] = data[field]
        else:
            errors[field] = f"must be one of: {', '.join(choices)}"


def _target(value, region):
    """(E.164, None) for a number calls may be sent to, else (None, why not)."""
    if not isinstance(value, str):
        return None, "must be a phone number written as text"
    try:
        number = parse_phone(value, region)
    except InvalidPhoneNumber as exc:
        return None, exc.reason
    if is_tracking_number(number):
        return None, LOOP_REFUSAL
    return number, None


def _failovers(value, region, clean, errors):
    if value in (None, ""):
        clean["failover_numbers"] = None
        return
    if not isinstance(value, list):
        errors["failover_numbers"] = "must be a list of phone numbers"
        return
    if len(value) > MAX_FAILOVER_NUMBERS:
        errors["failover_numbers"] = f"at most {MAX_FAILOVER_NUMBERS} numbers"
        return
    numbers, problems = [], {}
    for index, item in enumerate(value):
        number, why = _target(item, region)
        if why:
            problems[f"failover_numbers[{index}]"] = why
        elif number in numbers:
            problems[f"failover_numbers[{index}]"] = "listed twice"
        else:
            numbers.append(number)
    errors.update(problems)
    if not problems:
        clean["failover_numbers"] = numbers or None


def _after_hours_needs_a_number(clean, errors, current):
    if "after_hours" not in clean and "after_hours_number" not in clean:
        return
    if "after_hours" in errors or "after_hours_number" in errors:
        return
    action = clean.get("after_hours", getattr(current, "after_hours", None))
    number = clean["after_hours_number"] if "after_hours_number" in clean \
        else getattr(current, "after_hours_number", None)
    if action == "forward" and not number:
        errors["after_hours_number"] = "after hours calls forward here: a number is required"


def record_rule_change(client, before, actor):
    """Audit the rules when a change moved them; True when it did."""
    after = audited_rules(client)
    if after == before:
        return False
    changed = [key for key in after if after[key] != before.get(key)]
    record_audit(RULES_CHANGED, client, before={key: before.get(key) for key in changed},
                 after={key: after[key] for key in changed}, actor=actor)
    return True


# -- the rules as staff read them ------------------------------------------------------------------------

def rules_of_client(client, app_zone) -> ClientRules:
    """The ClientRules of a loaded client, read as a call's plan reads them."""
    return client_rules(stored_rule_fields(client), app_zone)


def rule_summary(client, first_target, moment, config):
    """The rules of `client` in words at `moment`, ringing `first_target` first (None: nowhere yet)."""
    rules = rules_of_client(client, config["APP_TIMEZONE"])
    targets = {number for number in (first_target, *rules.failover_numbers) if number}
    return summarise_rules(rules, moment, len(targets), home_zone=config["APP_TIMEZONE"],
                           region=config["PHONE_REGION"], dial_timeout=config["DIAL_TIMEOUT"])
