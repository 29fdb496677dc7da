"""SandboxError, Zendesk's error bodies, and the field checks that fill a 422's details."""

from __future__ import annotations

from typing import Any

FORBIDDEN = {
    "error": "Forbidden",
    "description": "You do not have access to this page. "
    "Please contact the account owner of this help desk for further help.",
}
_NOT_FOUND = {"error": "RecordNotFound", "description": "Not found"}


class SandboxError(Exception):
    """Carry a Zendesk-style error status and JSON body out of a sandbox operation."""

    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(status, payload)
        self.status = status
        self.payload = payload


def not_found() -> SandboxError:
    """Return Zendesk's 404 RecordNotFound."""
    return SandboxError(404, dict(_NOT_FOUND))


def forbidden() -> SandboxError:
    """Return Zendesk's 403 for an endpoint the token's role may not call."""
    return SandboxError(403, dict(FORBIDDEN))


def record_invalid(errors: dict[str, str]) -> SandboxError:
    """Return Zendesk's 422 RecordInvalid, its `details` keyed by field (Zendesk docs, Errors)."""
    details = {name: [{"description": text, "error": "InvalidValue"}] for name, text in errors.items()}
    return SandboxError(422, {"error": "RecordInvalid", "description": "Record validation errors", "details": details})


def is_int(value: Any) -> bool:
    """Tell whether a JSON value is an id: an int, never a bool."""
    # JSON true/false decode to bool, which is an int subclass; Zendesk ids never are booleans.
    return isinstance(value, int) and not isinstance(value, bool)


def check_optional_str(src: dict[str, Any], key: str, errors: dict[str, str]) -> None:
    """Note an error when `src[key]` is present and not a string."""
    value = src.get(key)
    if value is not None and not isinstance(value, str):
        errors[key] = f"{key}: must be a string"


def label(field: str) -> str:
    """Return a field's name as Zendesk's messages show it ("call_started_at" -> "Call started at")."""
    return field.replace("_", " ").capitalize()
