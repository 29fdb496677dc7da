"""The Talk Partner Edition Calls API: call records created, updated, shown and commented on tickets."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bridge.devtools.sandbox.comments import INBOUND_VIA_ID, OUTBOUND_VIA_ID, Comments
from bridge.devtools.sandbox.errors import check_optional_str, is_int, label, not_found, record_invalid
from bridge.devtools.sandbox.seed import INTEGRATION_USER_ID, SANDBOX_ACCOUNT_ID
from bridge.devtools.sandbox.state import State, now_iso
from bridge.devtools.sandbox.tickets import Tickets, check_commentable
from bridge.devtools.sandbox.users import Users
from schemas.zendesk import COMPLETION_STATUSES

# Zendesk docs: "Talk Partner Edition API, Calls".
# Every key of a recorded `POST /api/v2/calls` answer, in its order (zenpy cassette
# TestCallPE.test_create_update_get): the sandbox answers with all of them, nulls included.
CALL_RESPONSE_KEYS = (
    "id", "account_id", "ticket_id", "end_user_id", "organization_id", "brand_id", "app_id", "agent_id",
    "from_line", "from_line_nickname", "to_line", "to_line_nickname", "call_started_at", "call_ended_at",
    "direction", "duration", "dnis", "phone_name", "call_type", "end_user_location", "callback",
    "callback_source", "callback_number", "wait_time", "time_to_answer", "queue_time", "exceeded_queue_time",
    "queue_name", "ivr_time_spent", "ivr_hops", "ivr_action", "ivr_routed_to", "ivr_destination_group_name",
    "talk_time", "hold_time", "consultation_time", "wrap_up_time", "completion_status", "call_abandoned_position",
    "customer_requested_voicemail", "voicemail", "outside_business_hours", "overflowed", "overflowed_to",
    "call_disposition", "recording_url", "recording_time", "not_recording_time", "call_recording_consent_action",
    "recording_control_interactions", "created_at", "updated_at", "transcript", "external_id",
)  # fmt: skip
# Set by Zendesk, never by the client: id, account_id and the timestamps (cassette), organization_id (taken
# from the end user), app_id (docs: "Read-only: true", yet mandatory on create).
CALL_SERVER_KEYS = frozenset({"id", "account_id", "organization_id", "created_at", "updated_at"})
CALL_MANDATORY = ("app_id", "from_line", "to_line", "call_started_at", "direction")  # docs, "Mandatory: true"
CALL_TIMESTAMPS = frozenset({"call_started_at", "call_ended_at"})  # docs: "in ISO 8601 format"
CALL_DURATIONS = frozenset(
    {
        "duration", "wait_time", "time_to_answer", "queue_time", "ivr_time_spent", "ivr_hops", "talk_time",
        "hold_time", "consultation_time", "wrap_up_time", "recording_time", "not_recording_time",
        "recording_control_interactions", "call_abandoned_position",
    }
)  # fmt: skip
CALL_FLAGS = frozenset(
    {"callback", "exceeded_queue_time", "customer_requested_voicemail", "voicemail", "outside_business_hours",
     "overflowed"}
)  # fmt: skip
CALL_TEXTS = frozenset(
    {
        "from_line", "to_line", "from_line_nickname", "to_line_nickname", "dnis", "phone_name", "call_type",
        "end_user_location", "callback_number", "queue_name", "ivr_action", "ivr_routed_to",
        "ivr_destination_group_name", "overflowed_to", "call_disposition", "recording_url",
        "call_recording_consent_action", "transcript", "external_id",
    }
)  # fmt: skip
# Enumerations, each with its "Allowed values are ..." from the docs' field table. completion_status lists
# only the values the docs name first: the bridge must use no other (stricter than Zendesk if it has more).
CALL_ENUMS: dict[str, frozenset[str]] = {
    "direction": frozenset({"inbound", "outbound"}),
    "completion_status": COMPLETION_STATUSES,
    "call_recording_consent": frozenset({"always", "opt_in", "opt_out", "never"}),
    "callback_source": frozenset({"queue", "web widget"}),
}
CALL_REFERENCES = frozenset({"app_id", "agent_id", "end_user_id", "brand_id", "ticket_id"})
CALL_KEYS = CALL_SERVER_KEYS | CALL_DURATIONS | CALL_FLAGS | CALL_TEXTS | set(CALL_ENUMS) | CALL_TIMESTAMPS
CALL_KEYS |= CALL_REFERENCES
# The comment section of a create, and the body of `POST /api/v2/calls/{id}/comments` (zenpy's spec of the
# TPE voice comment, and the cassettes TestCallPE.test_create_with_comment- and TestCallPE.test_add_comment).
CALL_COMMENT_KEYS = frozenset({"call_fields", "title", "subject", "author_id", "end_user_id", "display_to_agent"})


def _utc_timestamp(value: Any) -> str | None:
    """Normalise an ISO 8601 date-time with an offset to UTC `Z`, as the recorded answers show; None if invalid."""
    # The cassettes send "2022-01-27T15:31:40+01" and get "2022-01-27T14:31:40Z" back. A time without an
    # offset is refused (stricter than documented: its zone would be a guess).
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", value):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _public_call(record: dict[str, Any]) -> dict[str, Any]:
    return {key: copy.deepcopy(record.get(key)) for key in CALL_RESPONSE_KEYS}


def strip_unknown_call_keys(body: dict[str, Any]) -> list[str]:
    """Remove the keys a create does not take, at the top and in `call` and `comment`; return them."""
    # Zendesk drops what its whitelist does not name and warns, it does not refuse (X-Zendesk-API-Warn
    # "Removed restricted keys", zenpy cassette TestCallPE.test_add_comment).
    dropped = [key for key in list(body) if key not in ("call", "comment")]
    for key in dropped:
        del body[key]
    for section, known in (("call", CALL_KEYS), ("comment", CALL_COMMENT_KEYS)):
        src = body.get(section)
        if isinstance(src, dict):
            unknown = [key for key in src if key not in known]
            for key in unknown:
                del src[key]
            dropped += unknown
    return dropped


def strip_unknown_comment_keys(body: dict[str, Any]) -> list[str]:
    """Remove the keys the comments endpoint does not take from its flat body; return them, `comment` first."""
    # Recorded: a flat body still answers "Removed restricted keys [\"comment\"]" (the framework wraps the
    # parameters in `comment`, then drops the wrapper). A wrapped body loses its comment to the same rule.
    unknown = [key for key in body if key not in CALL_COMMENT_KEYS]
    for key in unknown:
        del body[key]
    return ["comment", *[key for key in unknown if key != "comment"]]


class Calls:
    """Apply the TPE Calls API operations to the account's call records and their tickets."""

    def __init__(self, state: State, users: Users, tickets: Tickets, comments: Comments) -> None:
        self._state = state
        self._users = users
        self._tickets = tickets
        self._comments = comments

    def installed_apps(self) -> list[int]:
        """Return the ids of the apps installed in the account (the softphone app among them)."""
        return [app_id for app_id, _ in self._state.config.app_public_keys]

    def get(self, call_id: int) -> dict[str, Any]:
        """Return a call record as `GET /api/v2/calls/{id}` shows it, or raise 404."""
        if call_id not in self._state.calls:
            raise not_found()
        return _public_call(self._state.calls[call_id])

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a call record as `POST /api/v2/calls` does; with a comment section, its ticket and voice comment."""
        src = body.get("call")
        if not isinstance(src, dict):
            raise record_invalid({"call": "Call: is required"})
        errors: dict[str, str] = {}
        for key in sorted(CALL_SERVER_KEYS & set(src)):
            errors[key] = f"{label(key)}: is read-only"  # docs: "Read-only: true"; Zendesk sets these
        for key in CALL_MANDATORY:
            if src.get(key) is None or src.get(key) == "":
                errors[key] = f"{label(key)}: cannot be blank"
        fields = self._check_fields(src, errors)
        comment = body.get("comment")
        ticket_id = src.get("ticket_id")
        if comment is not None:
            self._check_comment(comment, errors)
            if is_int(ticket_id) and ticket_id in self._state.tickets:
                check_commentable(self._state.tickets[ticket_id], errors)
        if errors:
            raise record_invalid(errors)
        now = now_iso()
        record: dict[str, Any] = {key: None for key in CALL_RESPONSE_KEYS}
        record.update(fields)
        record.update(id=next(self._state.call_ids), account_id=SANDBOX_ACCOUNT_ID, created_at=now, updated_at=now)
        record["call_recording_consent"] = fields.get("call_recording_consent")  # documented, not in the answer
        self._state.calls[record["id"]] = record
        if comment is not None:
            self._add_comment(record, comment, now)
        return _public_call(record)

    def update(self, call_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a `PATCH /api/v2/calls/{id}` body: the fields present, validated as on create."""
        if call_id not in self._state.calls:
            raise not_found()
        record = self._state.calls[call_id]
        src = body.get("call")
        if not isinstance(src, dict):
            raise record_invalid({"call": "Call: is required"})
        errors: dict[str, str] = {}
        for key in sorted((CALL_SERVER_KEYS | {"app_id"}) & set(src)):
            # The cassette's PATCH repeats the call's own id and is accepted; changing a read-only field is not.
            if src[key] != record[key]:
                errors[key] = f"{label(key)}: is read-only"
        for key in CALL_MANDATORY:
            if key in src and (src[key] is None or src[key] == ""):
                errors[key] = f"{label(key)}: cannot be blank"
        fields = self._check_fields({k: v for k, v in src.items() if k not in CALL_SERVER_KEYS}, errors)
        if errors:
            raise record_invalid(errors)
        record.update(fields)
        record["updated_at"] = now_iso()
        return _public_call(record)

    def add_comment(self, call_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Add a TPE voice comment as `POST /api/v2/calls/{id}/comments` does, and return it as rendered."""
        if call_id not in self._state.calls:
            raise not_found()
        record = self._state.calls[call_id]
        errors: dict[str, str] = {}
        self._check_comment(body, errors)
        ticket_id = record["ticket_id"]
        if ticket_id is not None and ticket_id not in self._state.tickets:
            raise not_found()  # the call's ticket was deleted: as for any ticket update, 404
        if ticket_id is not None:
            check_commentable(self._state.tickets[ticket_id], errors)
        if errors:
            raise record_invalid(errors)
        now = now_iso()
        record["updated_at"] = now
        return self._add_comment(record, body, now)

    def _check_fields(self, src: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
        """Validate the call fields present (null clears an optional one); return them normalised."""
        fields: dict[str, Any] = {}
        for key, value in src.items():
            if value is None or key in errors:
                fields[key] = None
                continue
            text = self._field_error(key, value)
            if text is not None:
                errors[key] = f"{label(key)}: {text}"
            elif key in CALL_TIMESTAMPS:
                fields[key] = _utc_timestamp(value)
            else:
                fields[key] = value
        return fields

    def _field_error(self, key: str, value: Any) -> str | None:
        """Say what is wrong with one call field's value, or None."""
        if key in CALL_TIMESTAMPS:
            return None if _utc_timestamp(value) else f"{value!r} is not an ISO 8601 date-time with an offset"
        if key in CALL_DURATIONS:
            return None if is_int(value) and value >= 0 else f"{value!r} is not a whole number of seconds"
        if key in CALL_FLAGS:
            return None if isinstance(value, bool) else "must be true or false"
        if key in CALL_ENUMS:
            allowed = sorted(CALL_ENUMS[key])
            return None if value in CALL_ENUMS[key] else f"{value!r} is not one of {allowed}"
        if key in CALL_TEXTS:
            return None if isinstance(value, str) else "must be a string"
        checks: dict[str, tuple[Callable[[Any], bool], str]] = {
            "app_id": (lambda v: v in self.installed_apps(), "is not an app installed in this account"),
            "agent_id": (self._users.is_agent, "is not an agent"),
            "end_user_id": (lambda v: v in self._state.users, "does not exist"),
            "brand_id": (lambda v: v in self._state.brands, "does not exist"),
            "ticket_id": (lambda v: v in self._state.tickets, "does not exist"),
        }
        valid, text = checks[key]
        return None if is_int(value) and valid(value) else f"{value!r} {text}"

    def _check_comment(self, comment: Any, errors: dict[str, str]) -> None:
        """Validate a comment section (create) or a comment body (comments endpoint)."""
        if not isinstance(comment, dict):
            errors["comment"] = "Comment: must be an object"
            return
        title = comment.get("title")
        if not isinstance(title, str) or not title.strip():
            errors["title"] = "Title: cannot be blank"  # stricter than documented: every recorded comment has one
        call_fields = comment.get("call_fields", [])
        if not isinstance(call_fields, list) or not all(isinstance(f, str) and f in CALL_KEYS for f in call_fields):
            errors["call_fields"] = "Call fields: must be a list of call field names"
        check_optional_str(comment, "subject", errors)
        for key in ("author_id", "end_user_id"):
            value = comment.get(key)
            if value is not None and not (is_int(value) and value in self._state.users):
                errors[key] = f"{label(key)}: {value!r} does not exist"
        display_to = comment.get("display_to_agent")
        # As for Create Ticket's display_to_agent: validated first, and nothing is created when it fails.
        if display_to is not None and not self._users.can_pop(display_to):
            errors["display_to_agent"] = f"display_to_agent: {display_to!r} is not a valid agent id"

    def _add_comment(self, record: dict[str, Any], comment: dict[str, Any], now: str) -> dict[str, Any]:
        """Put a TpeVoiceComment on the call's ticket, creating the ticket first when the call has none."""
        if record["ticket_id"] is None:
            # Docs, "Creating a call record in Zendesk": omit ticket_id and include a comment section, and
            # Zendesk makes the ticket. The cassette TestCallPE.test_add_comment adds a comment to a call
            # without a ticket and gets 201: the comments endpoint makes one as well.
            record["ticket_id"] = self._call_ticket(record, comment, now)
        ticket = self._state.tickets[record["ticket_id"]]
        rendered = self._comments.add_tpe_voice_comment(ticket, record["id"], comment, now)
        display_to = comment.get("display_to_agent")
        if display_to is not None:
            self._state.displays.append({"agent_id": display_to, "kind": "ticket", "id": ticket["id"]})
        return rendered

    def _call_ticket(self, record: dict[str, Any], comment: dict[str, Any], now: str) -> int:
        """Create the ticket a call's comment goes into: via 45/46 by direction, the brand of the call."""
        inbound = record["direction"] == "inbound"
        line = record["from_line"] if inbound else record["to_line"]
        fields = {
            "via_id": INBOUND_VIA_ID if inbound else OUTBOUND_VIA_ID,
            "via": {"channel": "voice"},
            "subject": comment.get("subject") or f"{'Call from' if inbound else 'Call to'} {line}",
            "status": "new",
            "requester_id": comment.get("end_user_id") or record["end_user_id"] or INTEGRATION_USER_ID,
            "assignee_id": None,
            "group_id": None,
            "brand_id": record["brand_id"],
            "via_followup_source_id": None,
            "external_id": None,
            "tags": [],
        }
        return int(self._tickets.insert(fields, now)["id"])
