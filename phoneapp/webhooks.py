"""Twilio → phoneapp webhooks (SPEC §5): signed, idempotent by CallSid, TwiML via VoiceResponse."""
import logging
from functools import wraps

from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy.exc import SQLAlchemyError

from phoneapp.call_status import is_failed_forward
from phoneapp.extensions import db
from phoneapp.models import Client
from phoneapp.phones import display_phone, is_dialable
from phoneapp.public_urls import public_url
from phoneapp.routing import RouteEntry, route_call
from phoneapp.services import calls, test_calls
from phoneapp.services.alerts import raise_alert
from phoneapp.services.routes import load_route, routing_cache
from phoneapp.signatures import require_twilio_signature
from phoneapp.twiml import empty_twiml, forward_twiml, hangup_twiml, message_twiml, voicemail_twiml

bp = Blueprint("webhooks", __name__, url_prefix="/twilio")
log = logging.getLogger(__name__)


def twiml_response(xml):
    return Response(xml, mimetype="text/xml")


def require_call_sid(view):
    """A callback that names no call cannot be tied to anything: say so instead of failing."""

    @wraps(view)
    def checked(*args, **kwargs):
        if not request.form.get("CallSid"):
            abort(400, description="CallSid is required")
        return view(*args, **kwargs)

    return checked


@bp.post("/voice")
@require_twilio_signature
def voice():
    """The voice URL of every tracking number: forward the call by its `To`."""
    return twiml_response(answer_call())


@bp.post("/client-webhook/<int:client_id>")
@require_twilio_signature
def client_webhook(client_id):
    """Older per-client voice URL: route by `To` first, then by the client in the path."""
    return twiml_response(answer_call(path_client_id=client_id))


@bp.post("/fallback")
@require_twilio_signature
def fallback():
    """Twilio's fallback when the voice URL failed: answer from the routing cache alone."""
    entry = routing_cache().lookup(request.form.get("To", ""))
    decision = route_call(entry, current_app.config["DEFAULT_FORWARD_NUMBER"])
    _record_call(decision, entry)
    return twiml_response(_twiml_for(decision))


def answer_call(path_client_id=None):
    """Decide where the call in this request goes, record it, and return the TwiML."""
    to_number = request.form.get("To", "")
    try:
        entry, _ = load_route(to_number)
        if entry is None and path_client_id is not None:
            entry = _client_route(to_number, path_client_id)
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("database unavailable; routing %s from the cache", to_number)
        entry = routing_cache().lookup(to_number)
    decision = route_call(entry, current_app.config["DEFAULT_FORWARD_NUMBER"])
    _record_call(decision, entry)
    return _twiml_for(decision)


def _client_route(to_number, client_id):
    client = db.session.get(Client, client_id)
    if client is None:
        return None
    return RouteEntry(phone_number=to_number, assignment_id=None, client_id=client.id,
                      is_active=client.is_active, target=client.phone)


def _record_call(decision, entry):
    if not request.form.get("CallSid"):
        return
    assignment_id = entry.assignment_id if entry is not None else None
    try:
        calls.record_inbound_call(request.form, decision, entry)
        if decision.reason is not None:
            _alert_unrouted(decision, assignment_id)
    except SQLAlchemyError:
        # The caller is answered regardless; holding the record until the database returns is §8's job.
        db.session.rollback()
        log.exception("could not record call %s", request.form.get("CallSid"))


def _alert_unrouted(decision, assignment_id):
    to_number = request.form.get("To", "")
    shown = display_phone(to_number, current_app.config["PHONE_REGION"])
    if decision.forwards:
        message = f"Calls to {shown} go to the default number: {decision.reason}"
        severity = "warning"
    else:
        message = f"Calls to {shown} reach nobody, the caller hears a message: {decision.reason}"
        severity = "error"
    raise_alert("unrouted_call", to_number, message, severity=severity, phone_assignment_id=assignment_id)
    db.session.commit()


def _twiml_for(decision):
    if not decision.forwards:
        return message_twiml()
    caller = request.form.get("From", "")
    # Twilio rejects a callerId that is not a number (13214): withheld callers show the tracking number.
    caller_id = caller if is_dialable(caller) else request.form.get("To") or None
    return forward_twiml(
        decision.target,
        caller_id=caller_id,
        action_url=public_url("webhooks.dial_status"),
        events_url=public_url("webhooks.dial_events"),
        timeout=current_app.config["DIAL_TIMEOUT"],
        record=current_app.config["RECORD_CALLS"],
        recording_url=public_url("webhooks.recording", kind="call"),
    )


@bp.post("/status")
@require_twilio_signature
@require_call_sid
def call_status():
    """Status callback of the inbound call."""
    calls.record_call_status(request.form)
    return twiml_response(empty_twiml())


@bp.post("/dial-status")
@require_twilio_signature
@require_call_sid
def dial_status():
    """The <Dial action>: the forwarded leg's result; voicemail when nobody answered."""
    calls.record_dial_result(request.form)
    if is_failed_forward(request.form.get("DialCallStatus")):
        return twiml_response(voicemail_twiml(recording_url=public_url("webhooks.recording", kind="voicemail")))
    return twiml_response(hangup_twiml())


@bp.post("/dial-events")
@require_twilio_signature
def dial_events():
    """Status callbacks of the forwarded leg: ringing, answered, completed."""
    calls.record_dial_event(request.form)
    return twiml_response(empty_twiml())


@bp.post("/test-call-status")
@require_twilio_signature
@require_call_sid
def test_call_status():
    """Status callbacks of the test phone's own call, placed by a test call (SPEC §7)."""
    test_call_id = request.args.get("test_call", type=int)
    if test_call_id is not None:
        test_calls.record_test_caller_status(test_call_id, request.form)
    return twiml_response(empty_twiml())


@bp.post("/recording")
@require_twilio_signature
@require_call_sid
def recording():
    """Recording callbacks, and the <Record action> of a voicemail (hence the hangup)."""
    kind = "voicemail" if request.args.get("kind") == "voicemail" else "call"
    calls.record_recording(request.form, kind)
    return twiml_response(hangup_twiml())
