"""Check the X-Twilio-Signature of a webhook request (Twilio docs: Webhooks security)."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from multidict import MultiDict
from twilio.request_validator import RequestValidator, get_signature_algorithm

KNOWN_ALGORITHMS = frozenset({"HMAC_SHA1", "HMAC_SHA256"})


def validator_for(auth_token: str) -> RequestValidator:
    """Return the validator of requests signed with our auth token."""
    return RequestValidator(auth_token)


def parse_form(body: bytes) -> MultiDict[str]:
    """Parse a form body; Twilio sends UTF-8."""
    return MultiDict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


def signed_params(body: bytes, is_form: bool) -> MultiDict[str] | str:
    """Return what Twilio signed besides the URL: a form's parameters, or any other body as text."""
    try:
        return parse_form(body) if is_form else body.decode("utf-8")
    except UnicodeDecodeError:
        return MultiDict()  # not UTF-8, so not from Twilio: check the URL alone, which then fails


def is_signed(
    validator: RequestValidator, url: str, params: MultiDict[str] | str, signature: str, settings: str | None
) -> bool:
    """Tell whether `signature` is Twilio's for this URL and these parameters.

    `settings` is the X-Twilio-Webhooks-Signature-Settings header, which names the algorithm.
    """
    algorithm = get_signature_algorithm(settings)
    return bool(signature) and signed(validator, url, params, signature, algorithm)


def signed(validator: RequestValidator, url: str, params: MultiDict[str] | str, signature: str, algorithm: str) -> bool:
    """Check the signature against the URL as configured first: one HMAC instead of the library's two.

    The library also tries the URL with and without the default port (Twilio's back end is not
    consistent about it); that fallback runs only when the plain URL does not match.
    """
    if algorithm.upper() not in KNOWN_ALGORITHMS:
        return False  # an algorithm the library cannot compute is a forgery, not a server error
    if isinstance(params, str) and "bodySHA256" not in url:
        params = MultiDict()  # a non-form body without a body hash: only the URL can have been signed
    if isinstance(params, MultiDict):
        expected = validator.compute_signature(url, params, algorithm)
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return True
    return bool(validator.validate(url, params, signature, algorithm))
