"""One call told in full: every request Twilio made about it, its forwarded legs, and staff's notes and tags."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from phoneapp.domain.call_status import TERMINAL_STATUSES, advance_status, outcome_of
from phoneapp.domain.recordings import is_twilio_recording_url
from phoneapp.extensions import db
from phoneapp.models import CallEvent
from phoneapp.services.errors import ValidationError

MAX_NOTES_LENGTH = 5000
MAX_TAGS = 20
MAX_TAG_LENGTH = 30
NOTE_FIELDS = ("notes", "tags")
_TAG = re.compile(rf"^[\w-]{{1,{MAX_TAG_LENGTH}}}$")
_TAG_SEPARATORS = re.compile(r"[,\s]+")
# The forwarded leg's callbacks (its own SequenceNumber), and the <Dial> result that names it.
LEG_KINDS = ("dial_events", "whisper", "accept")
DIAL_RESULT_KIND = "dial_status"


@dataclass(frozen=True)
class TimelineEntry:
    """A CallEvent and how it arrived: again (`repeat`), or after one Twilio sent later (`out_of_order`)."""

    event: CallEvent
    repeat: bool
    out_of_order: bool


@dataclass
class Leg:
    """One forwarded leg as its callbacks tell it: whom it rang, how far it got, when, and for how long."""

    sid: str
    target: str | None = None
    status: str | None = None
    dial_status: str | None = None
    rang_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration: int | None = None
    accepted: bool = False
    events: list = field(default_factory=list)


def is_live(record):
    """The call is still going on, so its page keeps asking for news."""
    return outcome_of(record) == "in progress"


def call_events(record):
    """Every CallEvent of the call, in the order phoneapp received them."""
    return db.session.scalars(sa.select(CallEvent).where(CallEvent.call_sid == record.twilio_call_sid)
                              .order_by(CallEvent.received_at, CallEvent.id)).all()


def timeline(events):
    """`events` (in received order) each marked as a repeat or as out of order within its own stream of callbacks.

    Twilio numbers the callbacks of each call leg (SequenceNumber); a number seen before is a retry, and one below
    the highest seen came late. Requests without one are retries when they repeat an earlier one word for word.
    """
    highest, seen, earlier = {}, set(), []
    entries = []
    for event in events:
        stream = (event.kind, event.leg_sid)
        number = event.sequence_number
        if number is not None:
            repeat = (stream, number) in seen
            out_of_order = not repeat and stream in highest and number < highest[stream]
            seen.add((stream, number))
            highest[stream] = max(highest.get(stream, number), number)
        else:
            repeat = (event.kind, event.params) in earlier
            out_of_order = False
            earlier.append((event.kind, event.params))
        entries.append(TimelineEntry(event, repeat, out_of_order))
    return entries


def call_legs(events):
    """The forwarded legs seen in the call's events, in the order they first rang."""
    legs = {}
    for event in events:
        params = event.params or {}
        moment = event.sent_at or event.received_at
        if event.kind == DIAL_RESULT_KIND and params.get("DialCallSid"):
            leg = legs.setdefault(params["DialCallSid"], Leg(params["DialCallSid"]))
            leg.dial_status = params.get("DialCallStatus") or leg.dial_status
            leg.duration = leg.duration if leg.duration is not None else _seconds(params.get("DialCallDuration"))
            continue
        if event.kind not in LEG_KINDS or not event.leg_sid:
            continue
        leg = legs.setdefault(event.leg_sid, Leg(event.leg_sid))
        leg.events.append(event)
        leg.target = leg.target or params.get("To") or params.get("Called")
        if event.kind == "accept":
            leg.accepted = leg.accepted or params.get("Digits") == "1"
        status = params.get("CallStatus")
        if event.kind != "dial_events" or not status:
            continue
        leg.status = advance_status(leg.status, status)
        if status in ("initiated", "ringing"):
            leg.rang_at = _earliest(leg.rang_at, moment)
        elif status == "in-progress":
            leg.answered_at = _earliest(leg.answered_at, moment)
        elif status in TERMINAL_STATUSES:
            leg.ended_at = _earliest(leg.ended_at, moment)
            leg.duration = _seconds(params.get("CallDuration"), leg.duration)
    return sorted(legs.values(), key=lambda leg: (leg.rang_at or leg.answered_at or leg.ended_at or datetime.max))


def _earliest(current, moment):
    return moment if current is None or (moment is not None and moment < current) else current


def _seconds(value, default=None):
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return default


def split_tags(text):
    """Tags as a form's single field holds them: separated by commas or spaces."""
    return [tag for tag in _TAG_SEPARATORS.split(text or "") if tag]


def clean_notes_and_tags(data):
    """Notes and tags checked and normalised (tags lower-cased, each once); ValidationError naming each bad field."""
    errors, clean = {}, {}
    for name in sorted(set(data) - set(NOTE_FIELDS)):
        errors[name] = "only notes and tags can be changed"
    if "notes" in data:
        notes = data["notes"]
        if notes is None:
            clean["notes"] = ""
        elif not isinstance(notes, str):
            errors["notes"] = "must be text or null"
        elif "\x00" in notes:
            errors["notes"] = "must not contain NUL characters"
        elif len(notes) > MAX_NOTES_LENGTH:
            errors["notes"] = f"at most {MAX_NOTES_LENGTH} characters (this is {len(notes)})"
        else:
            clean["notes"] = notes.strip()
    if "tags" in data:
        tags, problem = _clean_tags(data["tags"])
        if problem:
            errors["tags"] = problem
        else:
            clean["tags"] = tags
    if errors:
        raise ValidationError(errors)
    return clean


def _clean_tags(value):
    if value is None:
        return [], None
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        return None, "must be a list of words, e.g. [\"lead\", \"spam\"], or null"
    if len(value) > MAX_TAGS:
        return None, f"at most {MAX_TAGS} tags (these are {len(value)})"
    tags = []
    for tag in (tag.lower() for tag in value):
        if not _TAG.match(tag):
            shown = tag if len(tag) <= 40 else tag[:40] + "…"
            return None, (f"“{shown}” is not a tag: one word of letters, digits, - or _, "
                          f"at most {MAX_TAG_LENGTH} characters")
        if tag not in tags:
            tags.append(tag)
    return tags, None


def update_notes_and_tags(record, data):
    """Change the call's notes and/or tags; nothing is saved when either is refused."""
    for name, value in clean_notes_and_tags(data).items():
        setattr(record, name, value)
    db.session.commit()
    return record


def shown_params(params):
    """(name, value) of an event's parameters for a page; a Twilio address (a recording's) is None, as staff play it
    through phoneapp and are never sent to Twilio's site."""
    return [(name, None if is_twilio_recording_url(value) else value) for name, value in (params or {}).items()]
