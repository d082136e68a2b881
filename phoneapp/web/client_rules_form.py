"""The routing rules form: what staff type (ranges per day, one number a line) to and from the rules as stored."""
from __future__ import annotations

import re
from zoneinfo import available_timezones

from phoneapp.domain.business_hours import DAYS
from phoneapp.domain.phones import display_phone
from phoneapp.services.client_rules import NOTICE_EVENTS

DAY_NAMES = dict(zip(DAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
                     strict=True))
_RANGE_SEPARATORS = re.compile(r"[,;\n]+")
_RANGE = re.compile(r"^\s*(\d{1,2})(?::(\d{2}))?\s*(?:-|–|—|to)\s*(\d{1,2})(?::(\d{2}))?\s*$")
_LIST_SEPARATORS = re.compile(r"[\n,;]+")
_INDEXED = re.compile(r"^(business_hours\.(\w+)|failover_numbers|closed_dates|notify_emails|notify_sms)\[(\d+)\]$")
EVENT_WORDS = {"missed": "missed calls", "voicemail": "voicemails", "answered": "answered calls"}
# A client nobody is told about yet: the form suggests the calls most agencies want to hear of.
SUGGESTED_EVENTS = ("missed", "voicemail")


def zone_choices():
    """Every time zone name Python knows, sorted: the select offers them all."""
    return sorted(available_timezones())


def form_from_client(client, region, app_zone):
    """The form's fields as staff would type the client's stored rules."""
    hours = client.business_hours or {}
    form = {f"hours_{day}": ", ".join(f"{start}-{end}" for start, end in hours.get(day, ())) for day in DAYS}
    form.update({
        "timezone": client.timezone or app_zone,
        "closed_dates": "\n".join(client.closed_dates or []),
        "after_hours": client.after_hours or "voicemail",
        "after_hours_number": display_phone(client.after_hours_number, region) if client.after_hours_number else "",
        "failover_numbers": "\n".join(display_phone(number, region) for number in client.failover_numbers or []),
        "ring_mode": client.ring_mode or "sequential",
        "ring_seconds": str(client.ring_seconds) if client.ring_seconds else "",
        "whisper": bool(client.whisper),
        "require_accept": bool(client.require_accept),
        "greeting": client.greeting or "",
    })
    return form


def read_rules_form(form):
    """(what the form shows back, the rules as the services read them, {field: why} found already)."""
    shown = {f"hours_{day}": form.get(f"hours_{day}", "").strip() for day in DAYS}
    for name in ("timezone", "closed_dates", "after_hours", "after_hours_number", "failover_numbers", "ring_mode",
                 "ring_seconds", "greeting"):
        shown[name] = form.get(name, "").strip()
    # A checkbox left unticked is not sent at all.
    shown["whisper"], shown["require_accept"] = "whisper" in form, "require_accept" in form
    errors, hours = {}, {}
    for day in DAYS:
        ranges = [part for part in _RANGE_SEPARATORS.split(shown[f"hours_{day}"]) if part.strip()]
        pairs = [_clock_pair(text) for text in ranges]
        for index, (text, pair) in enumerate(zip(ranges, pairs, strict=True)):
            if pair is None:
                errors[f"business_hours.{day}[{index}]"] = f"“{text.strip()[:20]}” is not a range such as 09:00-17:00"
        # A day with an unreadable range is left out, so the services' reasons keep the ranges' places.
        hours[day] = pairs if None not in pairs else []
    data = {
        "timezone": shown["timezone"] or None,
        "business_hours": {day: ranges for day, ranges in hours.items() if ranges},
        "closed_dates": _lines(shown["closed_dates"]),
        "after_hours": shown["after_hours"],
        "after_hours_number": shown["after_hours_number"] or None,
        "failover_numbers": _lines(shown["failover_numbers"]),
        "ring_mode": shown["ring_mode"],
        "whisper": shown["whisper"],
        "require_accept": shown["require_accept"],
        "greeting": shown["greeting"] or None,
    }
    if not shown["ring_seconds"]:
        data["ring_seconds"] = None
    elif shown["ring_seconds"].isdigit() and len(shown["ring_seconds"]) < 6:
        data["ring_seconds"] = int(shown["ring_seconds"])
    else:
        errors["ring_seconds"] = "must be a whole number of seconds"
    return shown, data, errors


def notices_form_from_client(client, region):
    """The notices form's fields as staff would type the client's stored recipients."""
    nothing_set = not (client.notify_emails or client.notify_sms or client.notify_on)
    return {
        "notify_emails": "\n".join(client.notify_emails or []),
        "notify_sms": "\n".join(display_phone(number, region) for number in client.notify_sms or []),
        "notify_on": list(SUGGESTED_EVENTS) if nothing_set else list(client.notify_on or []),
    }


def notices_in_words(client):
    """One sentence on who is told of which calls, or why nobody is."""
    events = [EVENT_WORDS[event] for event in NOTICE_EVENTS if event in (client.notify_on or ())]
    ways = [way for way, recipients in (("by e-mail", client.notify_emails), ("by text", client.notify_sms))
            if recipients]
    if not events and not ways:
        return "Nobody is told of this client's calls."
    if not events:
        return "No kind of call is chosen, so nobody is told."
    if not ways:
        return "Nobody to tell: add an address or a number."
    told = events[0] if len(events) == 1 else f"{', '.join(events[:-1])} and {events[-1]}"
    return f"{told[:1].upper()}{told[1:]} are told {' and '.join(ways)}, once each."


def read_notices_form(form):
    """(what the form shows back, the notices as the services read them)."""
    shown = {"notify_emails": form.get("notify_emails", "").strip(), "notify_sms": form.get("notify_sms", "").strip(),
             # Checkboxes: each ticked event is sent once under the same name.
             "notify_on": [value.strip() for value in form.getlist("notify_on") if value.strip()]}
    data = {"notify_emails": _lines(shown["notify_emails"]), "notify_sms": _lines(shown["notify_sms"]),
            "notify_on": shown["notify_on"]}
    return shown, data


def errors_by_input(details):
    """The services' per-field reasons placed next to the form's inputs: "business_hours.mon[1]" is Monday's box,
    "failover_numbers[2]" the failover list's third line."""
    placed = {}
    for key, why in details.items():
        match = _INDEXED.match(key)
        if match is None:
            field = "hours" if key == "business_hours" else key
            placed.setdefault(field, []).append(why)
            continue
        whole, day, index = match.groups()
        if day is not None:
            placed.setdefault(f"hours_{day}", []).append(f"range {int(index) + 1}: {why}")
        else:
            placed.setdefault(whole, []).append(f"line {int(index) + 1}: {why}")
    return {field: "; ".join(reasons) for field, reasons in placed.items()}


def _clock_pair(text):
    match = _RANGE.match(text)
    if match is None:
        return None
    start_hour, start_minute, end_hour, end_minute = match.groups()
    return [f"{int(start_hour):02d}:{start_minute or '00'}", f"{int(end_hour):02d}:{end_minute or '00'}"]


def _lines(text):
    return [line.strip() for line in _LIST_SEPARATORS.split(text) if line.strip()]
