"""Twilio → phoneapp webhooks (SPEC §5): signed, idempotent by CallSid, TwiML via VoiceResponse.

Every route answers whether or not the database is up: what it has to write goes to the webhook log on disk
first, and from there into the database (services.webhook_events).
"""
from functools import wraps

from flask import Blueprint, Response, abort, current_app, request

from phoneapp.domain.call_plan import MAX_FAILOVER_NUMBERS, decision_of, targets_to_ring
from phoneapp.domain.call_status import dial_result_status, offers_voicemail
from phoneapp.domain.fitting import fit_text
from phoneapp.domain.phones import display_phone, is_dialable
from phoneapp.services.call_context import plan_for
from phoneapp.services.webhook_events import (
    inbound_call_event,
    record_webhook,
    start_writer,
    webhook_event,
)
from phoneapp.twilio.public_urls import public_url
from phoneapp.twilio.signatures import require_twilio_signature
from phoneapp.twilio.twiml import (
    accept_twiml,
    dial_twiml,
    empty_twiml,
    hangup_twiml,
    message_twiml,
    reject_twiml,
    voicemail_twiml,
    whisper_twiml,
)

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


@bp.post("/client-webhook/<client_id>")
@require_twilio_signature
def client_webhook(client_id):
    """Older per-client voice URL: route by `To` first, then by the client in the path (its old id from
    `numbers import`, or its id)."""
    return twiml_response(answer_call(path_client_id=client_id))


@bp.record_once
def answer_the_old_api_path(state):
    # The previous front-end served its per-client voice URL under /api, and numbers it set up still call there.
    state.app.add_url_rule("/api/twilio/client-webhook/<client_id>", endpoint=f"{bp.name}.api_client_webhook",
                           view_func=client_webhook, methods=["POST"])


@bp.post("/fallback")
@require_twilio_signature
def fallback():
    """Twilio's fallback when the voice URL failed: answer from the routing cache alone."""
    return twiml_response(answer_call(from_cache_only=True))


def answer_call(path_client_id=None, from_cache_only=False):
    """Plan the call in this request (SPEC §3a), record it, and return the TwiML."""
    to_number, caller = form_number("To"), form_number("From")
    plan, context = plan_for(to_number, caller, path_client_id, from_cache_only=from_cache_only)
    if request.form.get("CallSid"):
        record_webhook(inbound_call_event(request.form, decision_of(plan), context.entry,
                                          from_cache=context.from_cache))
    name = context.entry.friendly_name if context.entry is not None else None
    return _twiml_for(plan, caller, to_number, name)


def _twiml_for(plan, caller, called, name):
    if plan.action == "reject":
        return reject_twiml()
    if plan.action == "message":
        return message_twiml()
    if plan.action == "voicemail":
        return _voicemail(plan.greeting)
    return _dial(plan, 0, caller, called, name)


def _voicemail(greeting):
    return voicemail_twiml(recording_url=public_url("webhooks.recording", kind="voicemail"), greeting=greeting)


def _dial(plan, attempt, caller, called, name):
    """Ring the targets of `attempt` (0 first); a sequential plan's <Dial action> names the attempt and its target,
    so the action can ring the next one and the record can tell whose result it is.

    `name`: the tracking number's friendly name, which a whisper announces (else the number itself).
    """
    targets = targets_to_ring(plan, attempt)
    in_turn = plan.ring_mode == "sequential" and len(plan.targets) > 1
    action = (public_url("webhooks.dial_status", attempt=attempt, target=targets[0]) if in_turn
              else public_url("webhooks.dial_status"))
    whisper_url_for = None
    if plan.whisper or plan.require_accept:
        # Everything the whisper says is in its URL (signed by Twilio with it), so it is answered without a lookup.
        words = {"name": name or display_phone(called)} if plan.whisper else {}
        accept = {"accept": 1} if plan.require_accept else {}
        # Which ring of a plan in turn this is: the person who presses 1 took the call by that ring's rule.
        ring = {"attempt": attempt} if in_turn else {}

        def whisper_url_for(target):
            return public_url("webhooks.whisper", target=target, **ring, **words, **accept)
    # Twilio rejects a callerId that is not a number (13214): withheld callers show the tracking number.
    caller_id = caller if is_dialable(caller) else called if is_dialable(called) else None
    return dial_twiml(
        targets,
        caller_id=caller_id,
        action_url=action,
        events_url=public_url("webhooks.dial_events"),
        timeout=plan.ring_seconds,
        record=current_app.config["RECORD_CALLS"],
        recording_url=public_url("webhooks.recording", kind="call"),
        whisper_url_for=whisper_url_for,
    )


@bp.post("/status")
@require_twilio_signature
@require_call_sid
def call_status():
    """Status callback of the inbound call."""
    record_webhook(webhook_event("call_status", request.form))
    return twiml_response(empty_twiml())


def _target_named():
    """The target phoneapp's own URL names (the number that ring rang), as a call's record keeps numbers."""
    return fit_text(request.args.get("target") or "", NUMBER_LENGTH).value or None


def _attempt_named():
    """The ring of a plan in turn that phoneapp's own URL names (0 first), or None."""
    attempt = request.args.get("attempt", type=int)
    # Only phoneapp's own URLs name an attempt, and a plan rings at most its first target and 5 more.
    return attempt if attempt is not None and 0 <= attempt <= MAX_FAILOVER_NUMBERS else None


@bp.post("/dial-status")
@require_twilio_signature
@require_call_sid
def dial_status():
    """The <Dial action>: the forwarded leg's result; the next target in turn, or voicemail, when nobody answered
    and the caller is still on."""
    attempt = _attempt_named()
    target = _target_named()
    record_webhook(webhook_event("dial_result", request.form, attempt=attempt or 0, target=target))
    dial_status = dial_result_status(request.form.get("DialCallStatus"), request.form.get("DialBridged"))
    if not offers_voicemail(dial_status, request.form.get("CallStatus")):
        return twiml_response(hangup_twiml())
    to_number, caller = form_number("To"), form_number("From")
    plan, context = plan_for(to_number, caller)
    # Rung at once, the others were hung up as the first picked up: a pickup that did not accept ends the ringing.
    if attempt is not None and 0 <= attempt < len(plan.targets) - 1 and plan.ring_mode == "sequential":
        name = context.entry.friendly_name if context.entry is not None else None
        return twiml_response(_dial(plan, attempt + 1, caller, to_number, name))
    return twiml_response(_voicemail(plan.greeting))


@bp.post("/whisper")
@require_twilio_signature
@require_call_sid
def whisper():
    """The <Number url> of a screened forward, on the leg of whoever picked up, before the caller is put through:
    who is calling, and press 1 when the client requires acceptance. Answered from its URL alone."""
    target = _target_named()
    record_webhook(webhook_event("whisper", request.form, target=target))
    name = fit_text(request.args.get("name") or "", 100).value
    attempt = _attempt_named()
    ring = {"attempt": attempt} if attempt is not None else {}
    accept_url = public_url("webhooks.accept", target=target, **ring) if request.args.get("accept") == "1" else None
    return twiml_response(whisper_twiml(f"Call from {name}" if name else None, accept_url=accept_url))


@bp.post("/accept")
@require_twilio_signature
@require_call_sid
def accept():
    """The key the person who picked up pressed on the whisper: 1 takes the call, anything else hangs their leg up
    (and the caller's <Dial> moves on)."""
    target = _target_named()
    digits = request.form.get("Digits")
    record_webhook(webhook_event("accept", request.form, target=target, attempt=_attempt_named() or 0,
                                 accepted=digits == "1"))
    return twiml_response(accept_twiml(digits))


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
