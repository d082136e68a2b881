"""Making what Twilio sends fit the columns it is kept in: a bad field is dropped or cut, never the whole event.

Each function takes the raw form value and returns a `Fitted`: the value to store, and when it is not what
Twilio sent, why (for the warning the caller logs). A missing or empty value is no problem, just nothing.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# The largest value of an INTEGER column on PostgreSQL (int4); SQLite takes up to 2**63 - 1.
INT4_MAX = 2**31 - 1
# Twilio's SIDs are two letters and 32 hex digits; their columns are String(34).
SID_LENGTH = 34


@dataclass(frozen=True)
class Fitted:
    value: object
    problem: str | None = None  # what was done to the value Twilio sent, None when it is stored as sent


def _unstorable(ch, keep_newlines):
    # Cc: NUL (which PostgreSQL refuses in text) and the other C0/C1 controls; Cs: lone surrogates, no encoding
    # can store them.
    if keep_newlines and ch in "\t\n":
        return False
    return unicodedata.category(ch) in ("Cc", "Cs")


def fit_count(raw, maximum=INT4_MAX) -> Fitted:
    """A whole number in 0..maximum (seconds, a sequence number), or None: a count is never negative, and one
    past the column's range means nothing that clamping it would keep."""
    if raw is None or raw == "":
        return Fitted(None)
    try:
        number = int(raw)
    except (TypeError, ValueError):
        return Fitted(None, "not a whole number; dropped")
    if not 0 <= number <= maximum:
        return Fitted(None, f"outside 0..{maximum}; dropped")
    return Fitted(number)


def fit_text(raw, length, *, keep_newlines=False) -> Fitted:
    """`raw` without control characters (tab and newline kept only if asked) and cut to `length` characters."""
    if raw is None:
        return Fitted(None)
    text = raw if isinstance(raw, str) else str(raw)
    # A printable text has no control character (nor lone surrogate): nearly all of what Twilio sends is.
    cleaned = text if text.isprintable() else "".join(ch for ch in text if not _unstorable(ch, keep_newlines))
    problems = []
    if cleaned != text:
        problems.append("control characters removed")
    if len(cleaned) > length:
        cleaned = cleaned[:length]
        problems.append(f"cut to {length} characters")
    return Fitted(cleaned, "; ".join(problems) or None)


def fit_sid(raw, length=SID_LENGTH) -> Fitted:
    """A SID as sent, or None when it cannot be one: longer than its column, or holding spaces or control
    characters. A SID is a key, so it is never cut or cleaned: a changed SID would name another call."""
    if raw is None or raw == "":
        return Fitted(None)
    # Printable leaves the ASCII space the only white space a text can hold.
    if not isinstance(raw, str) or len(raw) > length or not raw.isprintable() or " " in raw:
        return Fitted(None, "not a usable SID; dropped")
    return Fitted(raw)
