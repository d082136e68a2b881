"""Call status ordering: Twilio delivers callbacks late, twice and out of order."""
from __future__ import annotations

# Twilio's own values are hyphenated; anything else is a bug in the caller, not a new status.
TERMINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
LIVE_STATUSES = ("queued", "initiated", "ringing", "in-progress")
KNOWN_STATUSES = frozenset(LIVE_STATUSES) | TERMINAL_STATUSES
FAILED_DIAL_STATUSES = frozenset({"busy", "no-answer", "failed"})
# DialCallStatus "answered" is the conference flavour of "completed".
ANSWERED_DIAL_STATUSES = frozenset({"completed", "answered"})
ANSWERED_LEG_STATUSES = frozenset({"in-progress", "completed"})
# The outcome words staff see on calls, filter on and count (SPEC §3a), in the order menus list them.
OUTCOMES = ("answered", "voicemail", "missed", "blocked", "unrouted", "in progress")
# A failed forward: nobody took the call. Every figure of failed forwards counts exactly these.
FAILED_OUTCOMES = ("voicemail", "missed")

_RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3}
_TERMINAL_RANK = 4


def status_rank(status):
    """Position in a call's life; unknown values rank lowest so they never win."""
    if status in TERMINAL_STATUSES:
        return _TERMINAL_RANK
    return _RANK.get(status, -1)


def advance_status(current, reported):
    """The status a call has after `reported` arrives: never backwards, never past an end."""
    if reported not in KNOWN_STATUSES:
        return current
    if current is None:
        return reported
    if current in TERMINAL_STATUSES:
        return current
    return reported if status_rank(reported) > status_rank(current) else current


def dial_result_status(dial_status, bridged):
    """The <Dial> result as phoneapp counts it: a leg that was picked up but never connected to the caller (its
    person did not press 1, or a voicemail took it) is no answer, whatever Twilio's DialCallStatus says."""
    if bridged == "false" and dial_status in ANSWERED_DIAL_STATUSES:
        return "no-answer"
    return dial_status


def is_failed_forward(dial_status):
    """A forwarded leg that nobody answered: it feeds voicemail and the failed-calls alert."""
    return dial_status in FAILED_DIAL_STATUSES


def offers_voicemail(dial_status, call_status):
    """Voicemail after a forward nobody took, unless the caller has hung up already: nobody would hear it."""
    return is_failed_forward(dial_status) and call_status not in TERMINAL_STATUSES


def caller_left_first(dial_status, call_status):
    """The <Dial action> says the caller hung up before anybody answered (the forward was still ringing)."""
    return dial_status == "canceled" or (call_status in TERMINAL_STATUSES
                                         and dial_status not in ANSWERED_DIAL_STATUSES)


def forward_verdict(dial_status, dial_leg_status, caller_hung_up, person_unconfirmed=False, accepted=False):
    """How the target did on one forward: "answered", "failed", or None when the call says nothing of it.

    A caller who hung up while it rang says nothing of the target: it neither counts against it nor clears
    its failures. Without the <Dial> result, the forwarded leg's own callbacks decide, unless acceptance was
    required and nobody is known to have pressed 1 (`person_unconfirmed`): a leg picked up says nothing then. A
    person who pressed 1 (`accepted`) took the call, whatever an earlier target did.
    """
    if dial_status in ANSWERED_DIAL_STATUSES or accepted:
        return "answered"
    if caller_hung_up:
        return None
    if dial_status in FAILED_DIAL_STATUSES:
        return "failed"
    if dial_status is None:
        if dial_leg_status in ANSWERED_LEG_STATUSES:
            return None if person_unconfirmed else "answered"
        if dial_leg_status in FAILED_DIAL_STATUSES:
            return "failed"
    return None


def call_outcome(status, dial_status, routed_by, has_voicemail, dial_leg_status=None, person_unconfirmed=False,
                 accepted=False):
    """One word for staff: how the call ended up, as shown in lists, filters, figures and the API.

    `person_unconfirmed`: the client requires acceptance and nobody is known to have pressed 1, so a leg that was
    picked up is no answer (a personal voicemail picks up too); `accepted`: somebody pressed 1, which is an answer
    whatever an earlier target's result said. A live call nobody has taken yet is in progress: a failover target
    may still take it, or the caller may still be leaving a message.
    """
    if routed_by == "blocked":
        return "blocked"
    if dial_status in ANSWERED_DIAL_STATUSES:
        return "answered"
    if routed_by == "message":
        return "unrouted"
    if status not in TERMINAL_STATUSES:
        # A message is left only once nobody took the call, and the call ends with it.
        return "voicemail" if has_voicemail else "in progress"
    if accepted:
        return "answered"
    if dial_status in FAILED_DIAL_STATUSES:
        return "voicemail" if has_voicemail else "missed"
    # Over, with no <Dial> result (a hang-up while it rang, or its request lost): the forwarded
    # leg's own callbacks say whether anybody picked up; without them, nobody is known to have.
    if dial_status != "canceled" and dial_leg_status in ANSWERED_LEG_STATUSES and not person_unconfirmed:
        return "answered"
    return "voicemail" if has_voicemail else "missed"


def outcome_words(value):
    """The outcome words in `value` ("voicemail,missed"), in OUTCOMES order; None if any is not one."""
    words = {word.strip() for word in (value or "").split(",") if word.strip()}
    if not words or not words <= set(OUTCOMES):
        return None
    return tuple(word for word in OUTCOMES if word in words)


def outcome_of(call):
    """call_outcome of anything with a call record's fields: a CallRecord or a row of its columns."""
    accepted = bool(call.requires_accept) and call.accepted_by is not None
    return call_outcome(call.status, call.dial_status, call.routed_by, bool(call.voicemail_url),
                        call.dial_leg_status, person_unconfirmed=bool(call.requires_accept) and not accepted,
                        accepted=accepted)


# The outcomes nothing more can change: a message left, a caller turned away, a call nobody could take.
_FINAL_AT_ONCE = frozenset({"voicemail", "blocked", "unrouted"})


def outcome_is_final(outcome, status, *, recording_expected, has_recording, waited_enough):
    """Whether a call's outcome can be told (notices, webhooks): nothing Twilio may still send would change it.

    A call over and missed may yet get its voicemail, and one answered its recording: Twilio's recording
    callback comes after the call's own end, so such a call waits (`waited_enough` says the wait is over).
    """
    if status not in TERMINAL_STATUSES or outcome == "in progress":
        return False
    if outcome in _FINAL_AT_ONCE or waited_enough:
        return True
    if outcome == "answered":
        return has_recording or not recording_expected
    return False
