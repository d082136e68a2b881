"""The block list (SPEC §3a.1): callers turned away, account-wide or for one client. Plain values, no Flask."""
from __future__ import annotations

import re
from dataclasses import dataclass

from phoneapp.domain.phones import InvalidPhoneNumber, parse_phone

# A prefix: "+" and 1 to 14 digits, then "*" (e.g. +1900*): every number starting so.
_PREFIX = re.compile(r"^\+\d{1,14}\*$")


@dataclass(frozen=True)
class BlockEntry:
    """`number`: E.164, or a prefix ending in "*"; `client_id` None blocks the caller for every client."""

    number: str
    client_id: int | None = None


def parse_block_pattern(value, region="US"):
    """(pattern, None) or (None, why not): an E.164 number (national formats read in `region`) or a prefix."""
    if not isinstance(value, str) or not value.strip():
        return None, "must be a phone number, or a prefix ending in * such as +1900*"
    text = re.sub(r"[\s().-]", "", value.strip())
    if text.endswith("*"):
        if _PREFIX.match(text):
            return text, None
        return None, f"{value.strip()[:40]!r} is not a prefix: write + and the country code, then digits, then *"
    try:
        return parse_phone(value, region), None
    except InvalidPhoneNumber as invalid:
        return None, invalid.reason


def blocks(entry: BlockEntry, caller: str) -> bool:
    if entry.number.endswith("*"):
        return caller.startswith(entry.number[:-1])
    return caller == entry.number


def blocking_entry(caller, client_id, entries):
    """The entry that turns `caller` away from a call to `client_id`'s number, or None.

    The client's own entries and the account-wide ones both apply; a client's entry never reaches another
    client's numbers.
    """
    if not caller:
        return None
    for entry in entries:
        if (entry.client_id is None or entry.client_id == client_id) and blocks(entry, caller):
            return entry
    return None
