"""Tracking numbers: assignment to clients, forward targets, and Twilio's configuration of them."""
from __future__ import annotations

import re

import sqlalchemy as sa
from flask import current_app

from phoneapp.domain.phones import InvalidPhoneNumber, parse_phone
from phoneapp.extensions import db
from phoneapp.models import MAX_ID, Client, PhoneAssignment, utcnow
from phoneapp.services.alerts import raise_alert, resolve_alerts
from phoneapp.services.audit import record_audit
from phoneapp.services.errors import UpstreamError, ValidationError
from phoneapp.services.routing_table import LOOP_REFUSAL, is_tracking_number, refresh_routing_cache
from phoneapp.services.twilio_account import twilio
from phoneapp.services.verification import config_differences, verify_number
from phoneapp.twilio.gateway import NumberNotFound, TwilioError
from phoneapp.twilio.public_urls import expected_webhooks

TWILIO_NUMBER_SID = re.compile(r"^PN[0-9a-fA-F]{32}$")
CLIENT_ID = re.compile(r"[0-9]{1,10}")
ROUTING_FIELDS = ("client_id", "forward_to_number", "is_active")
EDITABLE_FIELDS = ("client_id", "forward_to_number", "is_active", "friendly_name")


def routing_fields(number):
    return {field: getattr(number, field) for field in ROUTING_FIELDS}


def _region():
    return current_app.config["PHONE_REGION"]


def clean_assignment_fields(data, *, allowed=EDITABLE_FIELDS):
    """Validated assignment fields from raw input; ValidationError names every bad field."""
    errors, clean = {}, {}
    for field in sorted(set(data) - set(allowed)):
        errors[field] = "unknown field"
    if "client_id" in data:
        client_id = data["client_id"]
        if client_id in (None, ""):
            clean["client_id"] = None
        elif (isinstance(client_id, bool) or not isinstance(client_id, (int, str))
              or not CLIENT_ID.fullmatch(str(client_id)) or int(client_id) > MAX_ID):
            errors["client_id"] = "must be a client id or null"
        elif db.session.get(Client, int(client_id)) is None:
            errors["client_id"] = f"no client with id {client_id}"
        else:
            clean["client_id"] = int(client_id)
    if "forward_to_number" in data:
        value = data["forward_to_number"]
        if value in (None, ""):
            clean["forward_to_number"] = None
        else:
            try:
                clean["forward_to_number"] = parse_phone(value, _region())
            except InvalidPhoneNumber as exc:
                errors["forward_to_number"] = exc.reason
            else:
                if is_tracking_number(clean["forward_to_number"]):
                    errors["forward_to_number"] = LOOP_REFUSAL
    if "is_active" in data:
        if not isinstance(data["is_active"], bool):
            errors["is_active"] = "must be true or false"
        else:
            clean["is_active"] = data["is_active"]
    if "friendly_name" in data:
        name = data["friendly_name"]
        if not isinstance(name, str) or len(name) > 200:
            errors["friendly_name"] = "must be text of at most 200 characters"
        else:
            clean["friendly_name"] = name.strip()
    if errors:
        raise ValidationError(errors)
    return clean


def _audit_routing_change(number, before, actor):
    after = routing_fields(number)
    if after == before:
        return
    if before["client_id"] != after["client_id"]:
        action = "unassign" if after["client_id"] is None else ("assign" if before["client_id"] is None else "reassign")
    elif before["forward_to_number"] != after["forward_to_number"]:
        action = "change_forward_target"
    else:
        action = "activate" if after["is_active"] else "deactivate"
    record_audit(action, number, before=before, after=after, actor=actor)


def ensure_webhooks(number_config):
    """Point the number's Twilio configuration at phoneapp; returns (config, changed)."""
    expected = expected_webhooks()
    if not config_differences(number_config, expected):
        return number_config, False
    return twilio().update_number_webhooks(number_config.sid, **expected), True


def upsert_assignment(data, actor=None):
    """Create or update the assignment for data["twilio_sid"]; Twilio is pointed at phoneapp first."""
    errors = {}
    sid = data.get("twilio_sid")
    if not isinstance(sid, str) or not TWILIO_NUMBER_SID.match(sid):
        errors["twilio_sid"] = "must be a Twilio phone number SID: PN followed by 32 hex digits"
    claimed_phone = None
    if "phone_number" in data and data["phone_number"] not in (None, ""):
        try:
            claimed_phone = parse_phone(data["phone_number"], _region())
        except InvalidPhoneNumber as exc:
            errors["phone_number"] = exc.reason
    try:
        fields = clean_assignment_fields({k: v for k, v in data.items() if k not in ("twilio_sid", "phone_number")})
    except ValidationError as exc:
        errors.update(exc.details)
        fields = {}
    if errors:
        raise ValidationError(errors)

    number = db.session.scalars(sa.select(PhoneAssignment).where(PhoneAssignment.twilio_sid == sid)).first()
    try:
        config = twilio().fetch_number(sid)
    except NumberNotFound:
        raise ValidationError({"twilio_sid": "no such number in the Twilio account"}) from None
    except TwilioError as exc:
        raise UpstreamError(f"Twilio could not be asked about {sid}, nothing was saved: {exc.message}") from None
    # Every refusal comes before Twilio is changed, so a refused request leaves no trace anywhere.
    if claimed_phone is not None and claimed_phone != config.phone_number:
        raise ValidationError({"phone_number": f"Twilio has {config.phone_number} under {sid}"})
    if number is None:
        clash = db.session.scalars(
            sa.select(PhoneAssignment).where(PhoneAssignment.phone_number == config.phone_number)).first()
        if clash is not None and clash.twilio_sid == sid:
            number = clash  # created by a request that ran at the same time: this one updates it
        elif clash is not None:
            raise ValidationError({"twilio_sid": f"{config.phone_number} is already tracked under {clash.twilio_sid}"})
    try:
        config, fixed = ensure_webhooks(config)
    except TwilioError as exc:
        raise UpstreamError(f"Twilio did not accept the change, nothing was saved: {exc.message}") from None

    created = number is None
    if created:
        number = PhoneAssignment(twilio_sid=sid, phone_number=config.phone_number,
                                 friendly_name=config.friendly_name or "", client_id=None,
                                 forward_to_number=None, is_active=True)
        db.session.add(number)
        db.session.flush()
    else:
        _lock_and_reload(number)
    before = routing_fields(number)
    for name, value in fields.items():
        setattr(number, name, value)
    _mark_verified(number, config.voice_url)
    db.session.flush()
    _audit_routing_change(number, before, actor)
    if fixed:
        record_audit("fix_webhook", number, after=expected_webhooks(), actor=actor)
    db.session.commit()
    refresh_routing_cache()
    return number, created


def _lock_and_reload(number):
    """Hold the number's row until this transaction ends, and read what the last writer left in it."""
    db.session.execute(sa.select(PhoneAssignment.id).where(PhoneAssignment.id == number.id).with_for_update())
    db.session.refresh(number)


def _mark_verified(number, voice_url):
    number.webhook_url = voice_url
    number.config_state = "ok"
    number.config_detail = ""
    number.last_verified_at = utcnow()


def update_assignment(number, data, actor=None):
    """Change some of a number's fields (assign, reassign, forward target, on/off), audited."""
    fields = clean_assignment_fields(data)
    # Read the row afresh under a lock: concurrent edits of one number queue here, so none is lost and each
    # audit entry's `before` is the previous one's `after`.
    _lock_and_reload(number)
    before = routing_fields(number)
    old_name = number.friendly_name
    for name, value in fields.items():
        setattr(number, name, value)
    db.session.flush()
    _audit_routing_change(number, before, actor)
    if number.friendly_name != old_name:
        record_audit("rename", number, before={"friendly_name": old_name},
                     after={"friendly_name": number.friendly_name}, actor=actor)
    db.session.commit()
    refresh_routing_cache()
    return number


def point_twilio_here(number, actor=None):
    """Check (and fix) Twilio's side of a number that now forwards; None when fine, else what is wrong.

    Called after the assignment is saved: phoneapp routes from its own database, so staff's change
    stands even while Twilio is unreachable; the number then shows the problem until a verify fixes it.
    """
    if not (number.is_active and number.target_number):
        return None
    if number.config_state == "ok" and number.webhook_url == expected_webhooks()["voice_url"]:
        return None
    verify_number(number, twilio(), fix=True, actor=actor)
    db.session.commit()
    if number.config_state == "ok":
        return None
    return number.config_detail or "Twilio's configuration could not be checked"


def release_assignment(number, actor=None):
    """Unassign and deactivate; the number's call history stays."""
    return update_assignment(number, {"client_id": None, "forward_to_number": None, "is_active": False}, actor)


def sync_numbers(page_size=1000):
    """Mirror the Twilio account's numbers (every page); returns counts of added, updated, missing."""
    try:
        configs = twilio().list_numbers(page_size=page_size)
    except TwilioError as exc:
        raise UpstreamError(f"could not list the Twilio account's numbers: {exc.message}") from None
    by_sid = {config.sid: config for config in configs}
    known = {number.twilio_sid: number for number in db.session.scalars(sa.select(PhoneAssignment))}
    added = updated = missing = 0
    for sid, config in by_sid.items():
        number = known.get(sid)
        if number is None:
            db.session.add(PhoneAssignment(twilio_sid=sid, phone_number=config.phone_number,
                                           friendly_name=config.friendly_name or "", webhook_url=config.voice_url,
                                           config_state="unverified"))
            added += 1
            continue
        changed = False
        # The friendly name is staff's label once the number is here; a sync must not revert their edits.
        for name, value in (("phone_number", config.phone_number), ("webhook_url", config.voice_url)):
            if getattr(number, name) != value:
                setattr(number, name, value)
                changed = True
        if number.config_state == "missing":
            number.config_state, number.config_detail, changed = "unverified", "", True
            resolve_alerts("number_missing", f"number:{number.id}")
        updated += changed
    for sid, number in known.items():
        if sid not in by_sid and number.config_state != "missing":
            number.config_state = "missing"
            number.config_detail = "Number is gone from the Twilio account"
            raise_alert("number_missing", f"number:{number.id}",
                        f"{number.phone_number} is no longer in the Twilio account",
                        severity="error", phone_assignment_id=number.id)
            missing += 1
    db.session.commit()
    refresh_routing_cache()
    return {"added": added, "updated": updated, "missing": missing, "total": len(by_sid)}
