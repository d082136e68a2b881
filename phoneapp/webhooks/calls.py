"""Twilio → phoneapp webhooks (SPEC §5): signed, idempotent by CallSid, TwiML via VoiceResponse.

Every route answers whether or not the database is up: what it has to write goes to the webhook log on disk
first, and from there into the database (services.webhook_events).
"""
from functools import wraps

from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy.exc import SQLAlchemyError

from phoneapp.domain.call_status import offers_voicemail
from phoneapp.domain.fitting import fit_text
from phoneapp.domain.phones import is_dialable
from phoneapp.domain.routing import route_call, unroutable_reason
from phoneapp.services.routing_table import is_tracking_number, load_client_route, load_route, routing_cache
from phoneapp.services.webhook_events import (
    database_outage,
    inbound_call_event,
    note_database_failure,
    record_webhook,
    rollback_quietly,
    start_writer,
    webhook_event,
)
from phoneapp.twilio.public_urls import public_url
from phoneapp.twilio.signatures import require_twilio_signature
from phoneapp.twilio.twiml import empty_twiml, forward_twiml, hangup_twiml, message_twiml, voicemail_twiml

bp = Blueprint("webhooks", __name__, url_prefix="/twilio")

# A call's numbers as its record keeps them (services.calls): control characters removed, at most 32 characters.
NUMBER_LENGTH = 32


@bp.before_request
def keep_writing_logged_webhooks():
    # A server that imported the app before forking (or `flask run`) starts its writer on its first webhook.
    if not current_app.config["WEBHOOK_WRITES_INLINE"]:
        start_writer(current_app._get_current_object())


def twiml_response(xml):
    return Response(xml, mimetype="text/xml")


def form_number(field):
    """`To` or `From` as the call's record keeps it, so the route is looked up by what is recorded.

    A NUL in it would make PostgreSQL refuse the lookup (and the call be routed from the cache), and any
    control character would keep it from matching the number on SQLite or in the cache.
    """
    return fit_text(request.form.get(field) or "", NUMBER_LENGTH).value


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
    entry = routing_cache().lookup(form_number("To"))
    decision = route_call(entry, current_app.config["DEFAULT_FORWARD_NUMBER"])
    _record_call(decision, entry, from_cache=True)
    return twiml_response(_twiml_for(decision))


def answer_call(path_client_id=None):
    """Decide where the call in this request goes, record it, and return the TwiML."""
    entry, from_cache = _route_entry(form_number("To"), path_client_id)
    decision = route_call(entry, current_app.config["DEFAULT_FORWARD_NUMBER"],
                          default_is_tracking=not from_cache and _default_loops(entry))
    _record_call(decision, entry, from_cache=from_cache)
    return _twiml_for(decision)


def _route_entry(to_number, path_client_id):
    """(route, came from the cache): from the database, or from the routing cache while it is down."""
    if not database_outage().database_skipped():
        try:
            entry = load_route(to_number)
            if entry is None and path_client_id is not None:
                entry = load_client_route(to_number, path_client_id)
            return entry, False
        except SQLAlchemyError as error:
            rollback_quietly()
            note_database_failure(error, f"routing a call to {to_number}")
    return routing_cache().lookup(to_number), True


def _default_loops(entry):
    """Whether the default number, about to be used for this call, is one of our tracking numbers."""
    default = current_app.config["DEFAULT_FORWARD_NUMBER"]
    if not default or unroutable_reason(entry) is None:
        return False
    try:
        return is_tracking_number(default)
    except SQLAlchemyError as error:
        rollback_quietly()
        note_database_failure(error, "checking the default number")
        return False


def _record_call(decision, entry, *, from_cache):
    if request.form.get("CallSid"):
        record_webhook(inbound_call_event(request.form, decision, entry, from_cache=from_cache))


def _twiml_for(decision):
    if not decision.forwards:
        return message_twiml()
    caller = form_number("From")
    # Twilio rejects a callerId that is not a number (13214): withheld callers show the tracking number.
    called = form_number("To")
    caller_id = caller if is_dialable(caller) else called if is_dialable(called) else None
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
    record_webhook(webhook_event("call_status", request.form))
    return twiml_response(empty_twiml())


@bp.post("/dial-status")
@require_twilio_signature
@require_call_sid
def dial_status():
    """The <Dial action>: the forwarded leg's result; voicemail when nobody answered and the caller is still on."""
    record_webhook(webhook_event("dial_result", request.form))
    if offers_voicemail(request.form.get("DialCallStatus"), request.form.get("CallStatus")):
        return twiml_response(voicemail_twiml(recording_url=public_url("webhooks.recording", kind="voicemail")))
    return twiml_response(hangup_twiml())


@bp.post("/dial-events")
@require_twilio_signature
def dial_events():
    """Status callbacks of the forwarded leg: ringing, answered, completed."""
    record_webhook(webhook_event("dial_event", request.form))
    return twiml_response(empty_twiml())


@bp.post("/test-call-status")
@require_twilio_signature
@require_call_sid
def test_call_status():
    """Status callbacks of the test phone's own call, placed by a test call (SPEC §7)."""
    test_call_id = request.args.get("test_call", type=int)
    if test_call_id is not None:
        record_webhook(webhook_event("test_caller_status", request.form, test_call_id=test_call_id))
    return twiml_response(empty_twiml())


@bp.post("/recording")
@require_twilio_signature
@require_call_sid
def recording():
    """Recording callbacks, and the <Record action> of a voicemail (hence the hangup)."""
    kind = "voicemail" if request.args.get("kind") == "voicemail" else "call"
    record_webhook(webhook_event("recording", request.form, recording_kind=kind))
    return twiml_response(hangup_twiml())
