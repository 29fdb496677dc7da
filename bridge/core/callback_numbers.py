"""Which numbers a waiting caller may be called back at: their line's country, or the allowed prefixes (pure).

A caller keys their number on the phone's keypad; the bridge will dial it from the line's number. So that it
can never be made to call premium-rate or foreign numbers, a number is accepted only when it is a valid
number of a regular type (fixed line or mobile) in the country of the line's own number, or under one of
CALLBACK_ALLOWED_PREFIXES (E.164 prefixes such as +44).
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

from bridge.core.phones import is_anonymous, is_device

# Numbers a person answers; premium rate, shared cost, personal numbers, pagers and the like are never called.
_CALLABLE = frozenset(
    {PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.VOIP}
)


def region_of(line_number: str | None) -> str | None:
    """Return the two-letter region of the line's own number (None: unknown)."""
    if not line_number:
        return None
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(line_number))
    except phonenumbers.NumberParseException:
        return None


def accepted(raw: str | None, line_number: str | None, allowed: tuple[str, ...] = ()) -> str | None:
    """Return the number in E.164 when the bridge may call it back, else None.

    `raw` is a caller's From (E.164) or what they keyed: digits in the line's national format, or a full
    international number (00 or + first; the keypad's * stands for +).
    """
    if raw is None or is_device(raw) or is_anonymous(raw):
        return None
    text = raw.strip().replace("*", "+")
    if text.startswith("00"):
        text = "+" + text[2:]
    region = region_of(line_number)
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed) or phonenumbers.number_type(parsed) not in _CALLABLE:
        return None
    number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    home = region is not None and phonenumbers.region_code_for_number(parsed) == region
    return number if home or any(number.startswith(prefix) for prefix in allowed) else None


def spoken(number: str) -> str:
    """Return a number's last four digits spaced for <Say> ("ending in 0 1 2 3")."""
    return " ".join(number[-4:])
