"""Phone-number handling: E.164 normalisation, anonymous callers, masking for logs."""

from __future__ import annotations

import functools
import re

import phonenumbers

# Twilio passes these instead of a number when the caller withholds it.
ANONYMOUS_WORDS = frozenset({"anonymous", "restricted", "unavailable", "unknown", "blocked", "private"})
# Twilio's documented stand-ins for withheld caller ids (they spell words on a keypad).
ANONYMOUS_NUMBERS = frozenset({"+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253"})

# A number in text is `+` and digits (E.164, or spaced/dashed), or a bare run of 10-15 digits;
# never digits inside a word such as a CallSid, nor dates and times.
_NUMBER_IN_TEXT = re.compile(r"(?<![\w+])\+\d[\d\s().-]{5,}\d(?!\w)|(?<![\w.:+-])\d{10,15}(?!\w|\.\d)")


def is_client(identity: str | None) -> bool:
    """Tell whether an identity is a Twilio Voice SDK client (`client:NAME`)."""
    return bool(identity) and str(identity).startswith("client:")


def is_sip(identity: str | None) -> bool:
    """Tell whether an identity is a SIP address (`sip:alice@acme.sip.twilio.com`, a desk phone)."""
    return bool(identity) and str(identity).lower().startswith("sip:")


def is_device(identity: str | None) -> bool:
    """Tell whether an identity is an agent's own device (browser or desk phone), not a phone number."""
    return is_client(identity) or is_sip(identity)


def is_phone_number(identity: str | None) -> bool:
    """Tell whether an identity is a phone number (`+1…`), as a <Number> leg's `To` is."""
    return bool(identity) and str(identity).startswith("+")


def sip_user(uri: str) -> str:
    """Return the user part of a SIP URI: `sip:+14155550199@acme.sip.twilio.com;transport=udp` -> `+14155550199`."""
    return uri.split(":", 1)[-1].split("@", 1)[0].split(";", 1)[0]


def is_anonymous(raw: str | None) -> bool:
    """Tell whether a From value is a withheld or missing caller id."""
    if raw is None:
        return True
    value = raw.strip()
    if not value or value.lower() in ANONYMOUS_WORDS or value in ANONYMOUS_NUMBERS:
        return True
    return not any(ch.isdigit() for ch in value)


@functools.lru_cache(maxsize=4096)  # every webhook of a call asks again; phonenumbers parsing is slow
def to_e164(raw: str | None, default_region: str | None = None) -> str | None:
    """Return the number in E.164, or None when it is anonymous, a client, or not a valid number."""
    if raw is None or is_device(raw) or is_anonymous(raw):
        return None
    try:
        parsed = phonenumbers.parse(raw.strip(), default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@functools.lru_cache(maxsize=1024)
def is_e164(raw: str) -> bool:
    """Tell whether a string is already a valid E.164 number."""
    if not raw.startswith("+"):
        return False
    return to_e164(raw) == raw and phonenumbers.is_valid_number(phonenumbers.parse(raw))


def digits(number: str) -> str:
    """Strip everything but digits, as Zendesk's phone search wants."""
    return "".join(ch for ch in number if ch.isdigit())


def mask(value: str | None) -> str:
    """Mask a phone number to its last four digits for logs; client identities pass unchanged."""
    if value is None:
        return "-"
    if is_client(value) or not any(ch.isdigit() for ch in value):
        return value
    if is_sip(value):
        return "sip:" + mask(sip_user(value)) + ("@" + value.split("@", 1)[1] if "@" in value else "")
    only = digits(value)
    return "…" + only[-4:] if len(only) > 4 else "…" + only


def mask_text(text: str) -> str:
    """Mask every phone number inside free text."""
    return _NUMBER_IN_TEXT.sub(lambda m: mask(m.group(0)), text)


def national_digits(e164: str) -> str:
    """Return the national significant number of an E.164 number (what Zendesk's `phone:*` search needs).

    Zendesk's search matches stored digits, and `phone:*DIGITS` matches numbers ending in them; the country
    code would miss a number stored in national format such as "(503) 555-0147".
    """
    try:
        return str(phonenumbers.parse(e164).national_number)
    except phonenumbers.NumberParseException:
        return digits(e164)


def same_number(stored: str | None, e164: str) -> bool:
    """Tell whether a number as a person typed it into Zendesk is this E.164 number.

    A stored number without a country code is read in the caller's own region, as whoever typed it would.
    """
    if not stored or not any(ch.isdigit() for ch in stored):
        return False
    try:
        caller = phonenumbers.parse(e164)
        region = phonenumbers.region_code_for_number(caller)
        parsed = phonenumbers.parse(stored, region if region != "ZZ" else None)
    except phonenumbers.NumberParseException:
        return False
    return parsed.country_code == caller.country_code and parsed.national_number == caller.national_number
