"""Phone numbers: parsed and stored as E.164, shown in national format."""
from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat


class InvalidPhoneNumber(ValueError):
    """A value that is not a dialable phone number; `reason` says why in words."""

    def __init__(self, value, reason):
        super().__init__(reason)
        self.value = value
        self.reason = reason


_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code (start with + and the country code)",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


def parse_phone(value, region="US"):
    """Return `value` as E.164, or raise InvalidPhoneNumber saying why it is not one."""
    if value is None or not str(value).strip():
        raise InvalidPhoneNumber(value, "a phone number is required")
    text = str(value).strip()
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise InvalidPhoneNumber(value, _PARSE_REASONS.get(exc.error_type, "not a phone number")) from None
    if not phonenumbers.is_possible_number(number):
        reason = phonenumbers.is_possible_number_with_reason(number)
        words = {
            phonenumbers.ValidationResult.TOO_SHORT: "too short",
            phonenumbers.ValidationResult.TOO_LONG: "too long",
            phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
        }.get(reason, "wrong length for its country")
        raise InvalidPhoneNumber(value, words)
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(value, "not a valid number for its country or area code")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


# A page of a thousand numbers formats the same few hundred phones over and over; parsing is the cost.
@lru_cache(maxsize=8192)
def display_phone(e164, region="US"):
    """National format for numbers of the home region, international otherwise; raw text if unparsable."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, region)
    except NumberParseException:
        return e164
    if not phonenumbers.is_valid_number(number):
        return e164
    if phonenumbers.region_code_for_number(number) == region:
        return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


@lru_cache(maxsize=8192)
def is_dialable(value):
    """True for a valid E.164 number (Twilio refuses anything else as a callerId)."""
    if not value or not str(value).startswith("+"):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(value, None))
    except NumberParseException:
        return False
