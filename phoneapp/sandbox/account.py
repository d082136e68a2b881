"""A simulated Twilio account whose whole state lives in one JSON file."""
from __future__ import annotations

import copy
import fcntl
import json
import os
import secrets
import tempfile
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlencode

# How a forwarded phone takes the call: "answered" is a person (who presses 1 when asked), "voicemail" the phone's
# own voicemail picking up (it presses nothing), "canceled" the caller hanging up while it rings.
OUTCOMES = ("answered", "voicemail", "busy", "no-answer", "failed", "canceled")
DEFAULT_NUMBERS = ("+14155550101", "+14155550102", "+14155550103", "+14155550104")
# Bounded so a sandbox left running for months keeps a small state file.
MAX_CALLS = 1000
MAX_ALERTS = 1000

# Webhook settings an update may change, keyed by their snake_case field name.
NUMBER_FIELDS = (
    "friendly_name", "voice_url", "voice_method", "voice_fallback_url", "voice_fallback_method",
    "status_callback", "status_callback_method", "voice_application_sid", "trunk_sid",
    "voice_caller_id_lookup", "sms_url", "sms_method", "sms_fallback_url", "sms_fallback_method",
    "sms_application_sid", "voice_receive_mode",
)


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two-letter prefix and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(moment: datetime | None = None) -> str:
    """A timestamp the way the 2010-04-01 API writes it."""
    return format_datetime(moment or datetime.now(UTC))


def iso8601(moment: datetime | None = None) -> str:
    """A timestamp the way the v1 APIs (Monitor) write it."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_number(account_sid: str, phone_number: str, friendly_name: str = "", **fields) -> dict:
    now = rfc2822()
    number = {
        "sid": new_sid("PN"),
        "account_sid": account_sid,
        "phone_number": phone_number,
        "friendly_name": friendly_name or phone_number,
        # Unset values mirror what Twilio returns for a freshly bought number.
        "voice_url": None,
        "voice_method": "POST",
        "voice_fallback_url": None,
        "voice_fallback_method": "POST",
        "status_callback": "",
        "status_callback_method": "POST",
        "voice_application_sid": "",
        "trunk_sid": None,
        "voice_caller_id_lookup": False,
        "voice_receive_mode": "voice",
        "sms_url": "",
        "sms_method": "POST",
        "sms_fallback_url": "",
        "sms_fallback_method": "POST",
        "sms_application_sid": "",
        "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
        "address_requirements": "none",
        "address_sid": None,
        "identity_sid": None,
        "bundle_sid": None,
        "emergency_status": "Inactive",
        "emergency_address_sid": None,
        "emergency_address_status": "unregistered",
        "api_version": "2010-04-01",
        "beta": False,
        "origin": "twilio",
        "status": "in-use",
        "type": "local",
        "date_created": now,
        "date_updated": now,
    }
    unknown = set(fields) - set(NUMBER_FIELDS)
    if unknown:
        raise ValueError(f"unknown number field(s): {', '.join(sorted(unknown))}")
    number.update(fields)
    return number


class SandboxAccount:
    """One simulated Twilio account; every method reads or rewrites the state file under a lock."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        identity = self._read()
        self.account_sid: str = identity["account_sid"]
        self.auth_token: str = identity["auth_token"]

    @classmethod
    def open(cls, path) -> SandboxAccount:
        """Open the account stored at `path`, creating it with four numbers on first use."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(path.with_name(path.name + ".lock")):
            if not path.exists():
                _write_atomically(path, _initial_state())
        return cls(path)

    # -- locking and storage -------------------------------------------------

    def _read(self) -> dict:
        with open(self.path, encoding="utf-8") as handle:
            return json.load(handle)

    @contextmanager
    def _modify(self):
        with _file_lock(self._lock_path):
            state = self._read()
            yield state
            _write_atomically(self.path, state)

    def state(self) -> dict:
        """A snapshot of the whole account state."""
        return self._read()

    # -- account -------------------------------------------------------------

    @property
    def friendly_name(self) -> str:
        """The account's display name."""
        return self._read()["friendly_name"]

    def account_resource(self) -> dict:
        """The account as the Accounts resource describes it."""
        state = self._read()
        return {key: state[key] for key in ("account_sid", "friendly_name", "status", "date_created", "date_updated")}

    # -- numbers -------------------------------------------------------------

    def numbers(self) -> list[dict]:
        """Every number in the account, oldest first."""
        return self._read()["numbers"]

    def get_number(self, sid: str) -> dict | None:
        """The number with this PN sid, or None."""
        return next((n for n in self.numbers() if n["sid"] == sid), None)

    def find_number(self, phone_number: str) -> dict | None:
        """The number with this E.164 phone number, or None."""
        return next((n for n in self.numbers() if n["phone_number"] == phone_number), None)

    def add_number(self, phone_number: str, friendly_name: str = "", voice_url=None, **fields) -> dict:
        """Add one number (fields by Twilio's snake_case names) and return it."""
        return self.add_numbers([dict(fields, phone_number=phone_number, friendly_name=friendly_name,
                                      voice_url=voice_url)])[0]

    def add_numbers(self, numbers: list) -> list[dict]:
        """Add many numbers in one write; items are E.164 strings or dicts with phone_number."""
        specs = [{"phone_number": n} if isinstance(n, str) else dict(n) for n in numbers]
        with self._modify() as state:
            taken = {n["phone_number"] for n in state["numbers"]}
            added = []
            for spec in specs:
                phone_number = spec.pop("phone_number")
                if phone_number in taken:
                    raise ValueError(f"{phone_number} is already in the sandbox account")
                taken.add(phone_number)
                added.append(_new_number(state["account_sid"], phone_number, **spec))
            state["numbers"].extend(added)
        return added

    def update_number(self, sid: str, **fields) -> dict:
        """Change a number's settings; KeyError if the sid is unknown."""
        unknown = set(fields) - set(NUMBER_FIELDS)
        if unknown:
            raise ValueError(f"unknown number field(s): {', '.join(sorted(unknown))}")
        with self._modify() as state:
            for number in state["numbers"]:
                if number["sid"] == sid:
                    number.update(fields)
                    number["date_updated"] = rfc2822()
                    return copy.deepcopy(number)
        raise KeyError(sid)

    def remove_number(self, sid: str) -> bool:
        """Release a number from the account; False if it was not there."""
        with self._modify() as state:
            before = len(state["numbers"])
            state["numbers"] = [n for n in state["numbers"] if n["sid"] != sid]
            return len(state["numbers"]) < before

    # -- calls ---------------------------------------------------------------

    def record_call(self, call: dict) -> dict:
        """Store a call resource (created via REST or simulated); a sid is made if it has none."""
        call = dict(call)
        call.setdefault("sid", new_sid("CA"))
        now = rfc2822()
        call.setdefault("date_created", now)
        call.setdefault("date_updated", now)
        call.setdefault("account_sid", self.account_sid)
        with self._modify() as state:
            state["calls"] = [c for c in state["calls"] if c["sid"] != call["sid"]]
            state["calls"].append(call)
            del state["calls"][:-MAX_CALLS]
        return call

    def update_call(self, sid: str, **fields) -> dict:
        """Change a stored call; KeyError if the sid is unknown."""
        with self._modify() as state:
            for call in state["calls"]:
                if call["sid"] == sid:
                    call.update(fields)
                    call["date_updated"] = rfc2822()
                    return copy.deepcopy(call)
        raise KeyError(sid)

    def calls(self) -> list[dict]:
        """Stored calls, oldest first."""
        return self._read()["calls"]

    def get_call(self, sid: str) -> dict | None:
        """The stored call with this CA sid, or None."""
        return next((c for c in self.calls() if c["sid"] == sid), None)

    # -- messages ------------------------------------------------------------

    def record_message(self, message: dict) -> dict:
        """Store a sent text message (Messages resource fields) and return it."""
        now = rfc2822()
        message = {"sid": new_sid("SM"), "account_sid": self.account_sid, "status": "sent",
                   "direction": "outbound-api", "num_segments": "1", "date_created": now, "date_updated": now,
                   "date_sent": now, "api_version": "2010-04-01", "price": None, "price_unit": "USD",
                   "error_code": None, "error_message": None, "messaging_service_sid": None, **message}
        with self._modify() as state:
            messages = state.setdefault("messages", [])
            messages.append(message)
            del messages[:-MAX_CALLS]
        return message

    def messages(self) -> list[dict]:
        """Sent text messages, oldest first."""
        return self._read().get("messages", [])

    # -- Monitor alerts ------------------------------------------------------

    def add_alert(self, error_code, *, request_url: str = "", resource_sid: str | None = None,
                  log_level: str = "error", request_method: str = "POST", message: str = "",
                  http_response: int | None = None, service_sid: str | None = None) -> dict:
        """Record a Monitor alert such as 11200 (webhook could not be retrieved) and return it."""
        error_code = str(error_code)
        now = iso8601()
        text = {"Msg": message or f"Error {error_code} for {request_url}", "sourceComponent": "14100"}
        if http_response is not None:
            text["httpResponse"] = str(http_response)
        # Twilio's alert_text is a URL-encoded key/value string; parsers of real alerts expect that.
        text.update({"url": request_url, "ErrorCode": error_code, "LogLevel": log_level.upper()})
        alert = {
            "sid": new_sid("NO"),
            "account_sid": self.account_sid,
            "alert_text": urlencode(text),
            "api_version": "2010-04-01",
            "date_created": now,
            "date_generated": now,
            "date_updated": now,
            "error_code": error_code,
            "log_level": log_level,
            "more_info": f"https://www.twilio.com/docs/errors/{error_code}",
            "request_method": request_method,
            "request_url": request_url,
            "resource_sid": resource_sid,
            "service_sid": service_sid,
        }
        with self._modify() as state:
            state["alerts"].append(alert)
            del state["alerts"][:-MAX_ALERTS]
        return alert

    def alerts(self) -> list[dict]:
        """Monitor alerts, newest first (the order Twilio lists them)."""
        return list(reversed(self._read()["alerts"]))

    # -- how forwarded-to phones behave ---------------------------------------

    def set_target_behaviour(self, number: str, outcome: str | None) -> None:
        """Make calls to `number` end as `outcome` (one of OUTCOMES); None resets."""
        if outcome is not None and outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        with self._modify() as state:
            if outcome is None or outcome == "answered":
                state["target_behaviour"].pop(number, None)
            else:
                state["target_behaviour"][number] = outcome

    def target_behaviour(self, number: str) -> str:
        """How a call forwarded to `number` ends; answered unless set otherwise."""
        return self._read()["target_behaviour"].get(number, "answered")


# Each use opens the lock file anew: flock then excludes threads of this process as well as
# other processes. A forked child (RQ forks a work horse per job) inherits the descriptors of
# locks other threads hold or wait for and would keep them locked for good, so it closes them.
_registry_lock = threading.Lock()
_lock_files: set = set()


@contextmanager
def _file_lock(lock_path):
    with _registry_lock:
        handle = open(lock_path, "a")
        _lock_files.add(handle)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        with _registry_lock:
            _lock_files.discard(handle)
            handle.close()


def _close_inherited_lock_files():
    global _registry_lock
    for handle in _lock_files:
        try:
            handle.close()
        except OSError:
            pass
    _lock_files.clear()
    _registry_lock = threading.Lock()


os.register_at_fork(before=lambda: _registry_lock.acquire(), after_in_parent=lambda: _registry_lock.release(),
                    after_in_child=_close_inherited_lock_files)


def _initial_state() -> dict:
    account_sid = new_sid("AC")
    now = rfc2822()
    numbers = [_new_number(account_sid, phone, f"Sandbox line {i}") for i, phone in enumerate(DEFAULT_NUMBERS, 1)]
    return {
        "version": 1,
        "account_sid": account_sid,
        "auth_token": secrets.token_hex(16),
        "friendly_name": "phoneapp sandbox",
        "status": "active",
        "date_created": now,
        "date_updated": now,
        "numbers": numbers,
        "calls": [],
        "alerts": [],
        "messages": [],
        "target_behaviour": {},
    }


def _write_atomically(path: Path, state: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        # The auth token is in here; keep it private to the app's user.
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
