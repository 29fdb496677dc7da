"""Emulate, over real HTTP, the Zendesk Support and Talk Partner Edition endpoints the bridge calls.

Where the sandbox and real Zendesk could differ, it models the stricter one. Each behaviour and its source:

- Roles. The token acts as user 1000, an *agent* by default (`SandboxConfig.token_role`), as the README
  tells admins to set up. `GET /api/v2/tickets` (also `?external_id=`) answers 403 to an agent: Zendesk
  docs, Tickets, "Listing Tickets: Allowed for Admins", which names what agents may call
  instead, among them `GET /api/v2/users/{user_id}/tickets/requested` and `.../assigned` (served here,
  newest first).
- Search lags writes. New users and tickets stay out of `/api/v2/search` for `search_index_delay` seconds
  (default 3): Zendesk docs, Search API, "it can take up to a few minutes for new tickets, users, and
  other resources to be indexed". Look-ups by id and `/api/v2/users/search?external_id=` are immediate.
- Phone search. `phone:*DIGITS` matches a stored number (primary phone or phone identity) whose digits end
  with DIGITS; `phone:DIGITS` matches all digits: Zendesk TPE guide, "Retrieving the Zendesk user id of a
  caller" (it searches `phone:*5135557611` to find "(513) 555-7611"). The seed holds national-format,
  dashed and identity-only phones, numbers shared by several users (`shared_phone_number`, Zendesk docs,
  Users JSON format) and a foreign number whose digits end like a US one.
- Identities. `GET /api/v2/users/{id}/identities` lists phone identities: Zendesk docs, User Identities.
- external_id of users is unique: 422 "External: … has already been taken" (Zendesk docs, Users).
- Closed tickets refuse updates: 422 RecordInvalid, details `status` "Status: closed prevents ticket
  update" (the answer integrators handle in public code; reference notes, second pass). Merging
  (`POST /api/v2/tickets/{id}/merge`, Zendesk docs, Tickets, "Merge Tickets into Target Ticket") closes
  each source ticket, tags it `closed_by_merge` and adds the comment "This request was closed and merged
  into request #TARGET". A deleted ticket answers 404 RecordNotFound.
- Follow-ups. `via_followup_source_id` names a closed ticket a new ticket follows up (Zendesk docs,
  Tickets, "Creating a follow-up ticket"); any other source is 422.
- Validation (422 RecordInvalid with `details` keyed by field, Zendesk docs, Errors): an assignee that is
  not an agent or is suspended, a missing or suspended requester, a `display_to_agent` that is not an
  agent with a Talk Partner Edition seat (Zendesk Talk Partner Edition API, "Create Ticket": "validated
  before creating the ticket, returning a 422"), an unknown group or brand, and empty strings in
  `voice_comment` fields (stricter than documented: the bridge must omit empty optional fields).
- Unknown keys are dropped, not refused: the answer is still 200/201 with `X-Zendesk-API-Warn: Removed
  restricted keys [...] from parameters` (recorded in zenpy's cassette TestCallPE.test_add_comment).
  `SandboxConfig.dropped_ticket_keys` drops accepted keys too (an account where `voice_comment` is not
  taken).
- JSON bodies. POST and PUT must say `Content-Type: application/json` (Zendesk docs, API introduction,
  "Request format"), or get 415; except `POST /api/v2/uploads`, whose body is the file.
- Rate limits. Every answer carries `X-Rate-Limit`, `X-Rate-Limit-Remaining` and `ratelimit-reset`, and
  a 429 carries `Retry-After` with a text/plain body: Zendesk docs, Rate limits; `x-rate-limit: 700` as
  in the recorded TPE cassettes (zenpy TestCallPE.*).
- Talk Partner Edition Calls (Zendesk docs, "Talk Partner Edition API, Calls", and the guides "Creating a
  call record in Zendesk" and "Creating a voice comment in a ticket"; answers shaped as zenpy's recorded
  cassettes TestCallPE.*). `POST /api/v2/calls` validates the mandatory fields (app_id of an installed app,
  from_line, to_line, call_started_at, direction), types and the documented enumerations, answers 201 with
  every recorded key (nulls included) and timestamps in UTC `Z`; a `comment` section makes the ticket (via 45
  or 46) when there is no ticket_id, adds a `TpeVoiceComment` and may pop it (`display_to_agent`). `PATCH`
  and `GET /api/v2/calls/{id}` update and show a record; read-only fields cannot change. `POST
  /api/v2/calls/{id}/comments` takes a flat body, answers the comment unwrapped and always warns about
  `comment` (as recorded); on a call without a ticket it makes one, as the cassette's 201 shows. A voice
  comment's `data` is rendered from the call record as it is now ("data is directly retrieved from the call
  record"). Closed tickets refuse these comments as they refuse updates. No list or search endpoint: none is
  documented. Allowed for agents, like every Talk Partner Edition endpoint the docs show.
- Faults (`FaultRule`): 500/503/429, a hang, a dropped connection before or after the write, `409`
  DatabaseConflict (Zendesk docs, Errors: "409 Conflict", retried by clients on ticket updates), and
  `late`: the write commits `late_commit_seconds` after arrival and only then answers, so a client that
  timed out and looks at once does not see it yet (a late read sees the state at arrival and answers
  after the delay, so a write can land between what it saw and when its answer arrives).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import dataclasses
import hmac
import html
import json
import logging
import math
import random
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

__all__ = [
    "FAULT_KINDS",
    "INTEGRATION_USER_ID",
    "SANDBOX",
    "FaultRule",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "create_sandbox_app",
]

_log = logging.getLogger(__name__)

INTEGRATION_USER_ID = 1000
FAULT_KINDS = frozenset({"500", "503", "429", "409", "hang", "drop", "drop_after", "late"})
VOICE_VIA_IDS = frozenset({44, 45, 46})  # voicemail, inbound call, outbound call
AGENT_ROLES = frozenset({"agent", "admin"})
USER_ROLES = frozenset({"end-user", "agent", "admin"})
TICKET_STATUSES = frozenset({"new", "open", "pending", "hold", "solved", "closed"})
MAX_COMMENTS = 5000  # Zendesk rejects comment number 5001 on a ticket with 422
DEFAULT_RATE_LIMIT = 700  # the X-Rate-Limit the recorded TPE cassettes report (Enterprise plan)
RATE_WINDOW_SECONDS = 60.0
HANG_SECONDS = 3600.0
HANG_POLL_SECONDS = 0.05
RATE_LIMIT_TEXT = "Number of allowed API requests per minute exceeded"
SEED_TIMESTAMP = "2024-01-01T00:00:00Z"
FIRST_USER_ID = 3001
GROUPS = {5001: "Support", 5002: "Phones"}
BRANDS = {6001: "Acme", 6002: "Acme Outlet"}
TICKET_KEYS = frozenset(
    {
        "via_id", "subject", "external_id", "requester_id", "assignee_id", "comment", "voice_comment", "tags",
        "additional_tags", "remove_tags", "status", "group_id", "brand_id", "via_followup_source_id",
        "priority", "type",
    }
)  # fmt: skip
CLOSED_TEXT = "Status: closed prevents ticket update"
FORBIDDEN = {
    "error": "Forbidden",
    "description": "You do not have access to this page. "
    "Please contact the account owner of this help desk for further help.",
}
_NOT_FOUND = {"error": "RecordNotFound", "description": "Not found"}

# -- Talk Partner Edition Calls API (Zendesk docs: "Talk Partner Edition API, Calls") ---------------
SANDBOX_ACCOUNT_ID = 850001
FIRST_CALL_ID = 700001
FIRST_AUDIT_ID = 800001
APP_NAME = "Bridge softphone"  # what `data.app_name` shows for an installed app (cassette: "3CX calls")
INBOUND_VIA_ID, OUTBOUND_VIA_ID = 45, 46
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
    "completion_status": frozenset(
        {"completed", "abandoned_in_queue", "abandoned_in_ivr", "abandoned_in_voicemail", "abandoned_on_hold"}
    ),
    "call_recording_consent": frozenset({"always", "opt_in", "opt_out", "never"}),
    "callback_source": frozenset({"queue", "web widget"}),
}
CALL_REFERENCES = frozenset({"app_id", "agent_id", "end_user_id", "brand_id", "ticket_id"})
CALL_KEYS = CALL_SERVER_KEYS | CALL_DURATIONS | CALL_FLAGS | CALL_TEXTS | set(CALL_ENUMS) | CALL_TIMESTAMPS
CALL_KEYS |= CALL_REFERENCES
# The comment section of a create, and the body of `POST /api/v2/calls/{id}/comments` (zenpy's spec of the
# TPE voice comment, and the cassettes TestCallPE.test_create_with_comment- and TestCallPE.test_add_comment).
CALL_COMMENT_KEYS = frozenset({"call_fields", "title", "subject", "author_id", "end_user_id", "display_to_agent"})
_E164 = re.compile(r"^\+(1\d{10}|[2-9]\d{7,14})$")


@dataclass
class SandboxConfig:
    """Credentials and limits the emulated Zendesk account enforces."""

    email: str = "bridge@example.com"
    api_token: str = "sandbox-token"
    oauth_token: str | None = None
    rate_limit_per_minute: int | None = None
    # The limit's window; 60 s like Zendesk. Benchmarks shrink it to see a whole backlog drain in seconds.
    rate_window_seconds: float = RATE_WINDOW_SECONDS
    # Seconds before a new user or ticket shows up in search, as on Zendesk, whose search index lags writes.
    search_index_delay: float = 3.0
    # The role of the token's user: "agent" (least privilege, the default) or "admin".
    token_role: str = "agent"
    # How long after arrival a `late` fault commits the write (and only then answers).
    late_commit_seconds: float = 1.0
    # Ticket keys this account drops with an X-Zendesk-API-Warn instead of applying.
    dropped_ticket_keys: frozenset[str] = frozenset()
    # Agents without a Talk Partner Edition seat: assignable, but screen-pops to them are refused.
    no_tpe_seat: frozenset[int] = frozenset()
    # Installed private apps by id, with the public key (PEM) their signed requests verify with.
    app_public_keys: tuple[tuple[int, str], ...] = ()
    # Seconds each API request takes to answer: the real Zendesk takes 100-500 ms, benchmarks model that.
    latency_seconds: float = 0.0


def installation_id(app_id: int) -> int:
    """Return the sandbox's installation id of an installed app (one installation per app)."""
    return 900000 + app_id


@dataclass
class FaultRule:
    """Describe a fault to inject into matching `/api/v2` requests."""

    method: str | None
    path_prefix: str
    kind: str
    times: int = 1
    retry_after: float = 1.0

    def __post_init__(self) -> None:
        """Reject rules the middleware could not apply."""
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if self.times < 1:
            raise ValueError("times must be at least 1")
        if self.retry_after < 0:
            raise ValueError("retry_after must not be negative")

    def matches(self, method: str, path: str) -> bool:
        """Tell whether this rule applies to a request."""
        method_ok = self.method is None or self.method.upper() == method.upper()
        return method_ok and path.startswith(self.path_prefix)


class SandboxError(Exception):
    """Carry a Zendesk-style error status and JSON body out of a sandbox operation."""

    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(status, payload)
        self.status = status
        self.payload = payload


def _not_found() -> SandboxError:
    return SandboxError(404, dict(_NOT_FOUND))


def _record_invalid(errors: dict[str, str]) -> SandboxError:
    details = {name: [{"description": text, "error": "InvalidValue"}] for name, text in errors.items()}
    return SandboxError(422, {"error": "RecordInvalid", "description": "Record validation errors", "details": details})


def _is_int(value: Any) -> bool:
    # JSON true/false decode to bool, which is an int subclass; Zendesk ids never are booleans.
    return isinstance(value, int) and not isinstance(value, bool)


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _label(field: str) -> str:
    return field.replace("_", " ").capitalize()


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


def _formatted_line(line: Any) -> str:
    # The recorded TpeVoiceComment shows "Unknown" for "+183808333456" (twelve digits after +1: not a number).
    return line if isinstance(line, str) and _E164.match(line) else "Unknown"


def _check_tag_list(src: dict[str, Any], key: str, errors: dict[str, str]) -> list[str]:
    value = src.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        errors[key] = f"{key}: must be a list of strings"
        return []
    return value


def _merge_tags(current: list[str], src: dict[str, Any], errors: dict[str, str]) -> list[str]:
    base = _check_tag_list(src, "tags", errors) if src.get("tags") is not None else current
    extra = _check_tag_list(src, "additional_tags", errors)
    removed = set(_check_tag_list(src, "remove_tags", errors))
    # dict.fromkeys dedupes while keeping first-seen order, as Zendesk does for tag lists.
    return [tag for tag in dict.fromkeys([*base, *extra]) if tag not in removed]


def _check_optional_str(src: dict[str, Any], key: str, errors: dict[str, str]) -> None:
    value = src.get(key)
    if value is not None and not isinstance(value, str):
        errors[key] = f"{key}: must be a string"


def _user(uid: int, name: str, mail: str | None, phone: str | None, role: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": uid,
        "name": name,
        "email": mail,
        "phone": phone,
        "shared_phone_number": extra.get("shared", False),
        "role": role,
        "suspended": extra.get("suspended", False),
        "external_id": None,
        "created_at": SEED_TIMESTAMP,
        "updated_at": extra.get("updated_at", SEED_TIMESTAMP),
    }


def _seed_users(email: str, token_role: str) -> dict[int, dict[str, Any]]:
    users = [
        _user(INTEGRATION_USER_ID, "Bridge Integration", email, None, token_role),
        _user(1001, "Alice Agent", "alice@example.com", None, "agent"),
        _user(1002, "Bob Agent", "bob@example.com", None, "agent"),
        _user(1003, "Carol Agent", "carol@example.com", "+16505550111", "agent"),
        _user(1004, "Sam Suspended", "sam@example.com", None, "agent", suspended=True),
        _user(2001, "Dana Customer", "dana@example.net", "+14155550123", "end-user"),
        _user(2002, "Erin Customer", "erin@example.net", "+14155550199", "end-user"),
        # Real profiles hold numbers in every format (national, dashed, digits only).
        _user(2003, "Frank National", "frank@example.net", "(503) 555-0147", "end-user"),
        _user(2004, "Gwen Dashes", "gwen@example.net", "+1 503-555-0148", "end-user"),
        _user(2005, "Hal Digits", "hal@example.net", "5035550149", "end-user"),
        # Only an extra phone identity holds this number; the primary phone is another one.
        _user(2006, "Iris Identity", "iris@example.net", "+1 503 555 0190", "end-user"),
        # A shared office line (shared_phone_number) and a person whose direct line is the same number.
        _user(2007, "Front Desk", "desk@example.net", "503-555-0170", "end-user", shared=True),
        _user(2008, "Jack Direct", "jack@example.net", "(503) 555-0170", "end-user", updated_at="2023-06-01T00:00:00Z"),
        # Two people on one shared number, nobody with it as a direct line.
        _user(2009, "Kim Shared", "kim@example.net", "+1 (503) 555-0180", "end-user", shared=True),
        _user(2010, "Lee Shared", "lee@example.net", "5035550180", "end-user", shared=True),
        # A foreign number whose digits end with a US caller's ten digits: a suffix match, not the same number.
        _user(2011, "Mia Abroad", "mia@example.net", "+44 15035550147", "end-user"),
        _user(2012, "Ned Suspended", "ned@example.net", "+1 503-555-0199", "end-user", suspended=True),
    ]
    return {user["id"]: user for user in users}


def _seed_identities() -> dict[int, list[str]]:
    return {2006: ["(503) 555-0160"]}


def _check_random(rate: float, kinds: list[str]) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError("rate must be between 0 and 1")
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}")
    if rate > 0 and not kinds:
        raise ValueError("kinds must not be empty when rate > 0")


class Sandbox:
    """Hold the emulated Zendesk account state and apply API operations to it without any I/O."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        """Create the account with its seed data."""
        self.config = config or SandboxConfig()
        # Replaceable so tests can move the rolling rate-limit window without sleeping.
        self.clock: Callable[[], float] = time.monotonic
        self.users: dict[int, dict[str, Any]] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.calls: dict[int, dict[str, Any]] = {}  # TPE call records by id
        self.displays: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.uploads: dict[str, dict[str, Any]] = {}  # by token: the attachment and its bytes
        self._rules: list[FaultRule] = []
        self._random: random.Random | None = None
        self._random_config: dict[str, Any] | None = None
        self._hits: deque[float] = deque()
        self._next_user_id = FIRST_USER_ID
        self._next_ticket_id = 1
        self._next_comment_id = 1
        self._next_call_id = FIRST_CALL_ID
        self._next_audit_id = FIRST_AUDIT_ID
        self._active_hangs = 0
        self.background: set[asyncio.Future[web.StreamResponse]] = set()  # late commits still running
        self._hangs_changed = asyncio.Event()
        self._hangs_released = False
        self.reset()

    # -- lifecycle -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Return to the seed data and drop every fault, request record and rate-limit hit."""
        self.users = _seed_users(self.config.email, self.config.token_role)
        self.identities = _seed_identities()  # extra phone identities by user id
        self._created: dict[int, float] = {}  # when each user was created, for the search-index delay
        self._ticket_created: dict[int, float] = {}  # the same for tickets
        self.tickets = {}
        self.calls = {}
        self.displays = []
        self.requests = []
        self.uploads = {}
        self._hits.clear()
        self._next_user_id = FIRST_USER_ID
        self._next_ticket_id = 1
        self._next_comment_id = 1
        self._next_call_id = FIRST_CALL_ID
        self._next_audit_id = FIRST_AUDIT_ID
        self.clear_faults()

    def snapshot(self) -> dict[str, Any]:
        """Return a deep copy of the state: users and tickets in id order, calls by id, displays and requests."""
        state: dict[str, Any] = copy.deepcopy(
            {
                "users": [self.users[uid] for uid in sorted(self.users)],
                "tickets": [self.tickets[tid] for tid in sorted(self.tickets)],
                "calls": {cid: self.calls[cid] for cid in sorted(self.calls)},
                "displays": self.displays,
                "requests": self.requests,
            }
        )
        for ticket in state["tickets"]:
            self._render_comments(ticket)
        return state

    # -- faults --------------------------------------------------------------------------------

    def add_faults(self, rules: list[FaultRule]) -> None:
        """Queue fault rules; each hits its next `times` matching requests, then is used up."""
        # Copies, because `times` counts down and the caller's objects should stay as given.
        self._rules.extend(dataclasses.replace(rule) for rule in rules)

    def set_random_faults(self, rate: float, kinds: list[str], seed: int) -> None:
        """Fault each `/api/v2` request with probability `rate`, kind drawn uniformly from `kinds`."""
        _check_random(rate, kinds)
        if rate == 0:
            self._random, self._random_config = None, None
            return
        self._random = random.Random(seed)
        self._random_config = {"rate": rate, "kinds": list(kinds), "seed": seed}

    def clear_faults(self) -> None:
        """Drop every fault rule and stop random faults."""
        self._rules = []
        self._random, self._random_config = None, None

    def fault_state(self) -> dict[str, Any]:
        """Describe the pending fault rules and the random-fault setting."""
        return {
            "rules": [dataclasses.asdict(rule) for rule in self._rules],
            "random": copy.deepcopy(self._random_config),
        }

    def next_fault(self, method: str, path: str) -> FaultRule | None:
        """Pick the fault for one `/api/v2` request, consuming it: rules first, then random faults."""
        rule = next((rule for rule in self._rules if rule.matches(method, path)), None)
        if rule is not None:
            rule.times -= 1
            if rule.times == 0:
                self._rules.remove(rule)
            return rule
        settings = self._random_config
        if self._random is not None and settings is not None and self._random.random() < settings["rate"]:
            return FaultRule(method=None, path_prefix="", kind=self._random.choice(settings["kinds"]))
        return None

    # -- hanging requests ----------------------------------------------------------------------

    @property
    def active_hangs(self) -> int:
        """Count requests currently held open by a `hang` fault."""
        return self._active_hangs

    @property
    def hangs_released(self) -> bool:
        """Tell whether hanging requests have been told to finish (the app is shutting down)."""
        return self._hangs_released

    def release_hangs(self) -> None:
        """End every current and future `hang` fault early, so a graceful shutdown does not wait."""
        self._hangs_released = True

    def hang_started(self) -> None:
        """Count one more hanging request."""
        self._change_hangs(1)

    def hang_finished(self) -> None:
        """Count one hanging request as finished."""
        self._change_hangs(-1)

    async def wait_for_hangs(self, count: int) -> None:
        """Wait until exactly `count` requests are hanging."""
        while self._active_hangs != count:
            await self._hangs_changed.wait()

    def _change_hangs(self, delta: int) -> None:
        self._active_hangs += delta
        # Wake every waiter, then give later waiters a fresh event to block on.
        changed, self._hangs_changed = self._hangs_changed, asyncio.Event()
        changed.set()

    # -- auth and rate limiting ----------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> bool:
        """Check an Authorization header against the API token (Basic) or OAuth token (Bearer)."""
        scheme, _, credentials = (authorization or "").partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True)
            except binascii.Error:
                return False
            expected = f"{self.config.email}/token:{self.config.api_token}".encode()
            return hmac.compare_digest(decoded, expected)
        if scheme.lower() == "bearer" and self.config.oauth_token:
            return hmac.compare_digest(credentials.encode(), self.config.oauth_token.encode())
        return False

    @property
    def rate_limit(self) -> int:
        """Return the per-minute limit advertised in `X-Rate-Limit`."""
        limit = self.config.rate_limit_per_minute
        return DEFAULT_RATE_LIMIT if limit is None else limit

    def rate_limit_remaining(self) -> int:
        """Return how many requests the rolling 60 s window still allows."""
        return max(0, self.rate_limit - self._window_hits())

    def rate_limit_reset(self) -> float:
        """Return the seconds until the oldest request counted in the window leaves it (`ratelimit-reset`).

        Zendesk says whole seconds of its minute; a window shrunk for a benchmark keeps that precision in
        proportion (1/60 of the window), or rounding alone would idle up to half of a 2 s window.
        """
        if not self._window_hits():
            return 0
        step = self.config.rate_window_seconds / RATE_WINDOW_SECONDS
        left = max(0.0, self._hits[0] + self.config.rate_window_seconds - self.clock())
        return math.ceil(left / step) * step if step < 1 else math.ceil(left)

    def consume_rate_limit(self) -> int | None:
        """Count one request against the limit, or return the `Retry-After` seconds when over it."""
        used = self._window_hits()
        limit = self.config.rate_limit_per_minute
        if limit is not None and used >= limit:
            oldest = self._hits[0] if self._hits else self.clock()
            return max(1, math.ceil(oldest + self.config.rate_window_seconds - self.clock()))
        self._hits.append(self.clock())
        return None

    def _window_hits(self) -> int:
        horizon = self.clock() - self.config.rate_window_seconds
        while self._hits and self._hits[0] <= horizon:
            self._hits.popleft()
        return len(self._hits)

    # -- request log ---------------------------------------------------------------------------

    def record_request(self, method: str, path: str, query: dict[str, str], body: Any) -> dict[str, Any]:
        """Append a request to the log at arrival and return the entry so its status can be filled."""
        entry: dict[str, Any] = {
            "method": method,
            "path": path,
            "query": query,
            "status": 0,
            "body": body,
            "fault": None,
            "at": time.time(),  # arrival, for benchmarks timing a webhook to its Zendesk request
        }
        self.requests.append(entry)
        return entry

    # -- users ---------------------------------------------------------------------------------

    def get_user(self, user_id: int) -> dict[str, Any]:
        """Return a copy of a user or raise 404."""
        if user_id not in self.users:
            raise _not_found()
        return copy.deepcopy(self.users[user_id])

    def is_agent(self, user_id: Any) -> bool:
        """Tell whether a value is the id of an agent or admin."""
        return _is_int(user_id) and user_id in self.users and self.users[user_id]["role"] in AGENT_ROLES

    def can_pop(self, user_id: Any) -> bool:
        """Tell whether screen-pops may go to this user (an agent with a TPE seat)."""
        return self.is_agent(user_id) and user_id not in self.config.no_tpe_seat

    def search(self, query: str) -> dict[str, Any]:
        """Run the subset of Zendesk search syntax the bridge uses: role:, phone:[*]digits, type:, external_id:."""
        role: str | None = None
        phone: str | None = None
        external_id: str | None = None
        suffix_match = False
        kind = "user"
        terms: list[str] = []
        for token in query.split():
            key, sep, value = token.partition(":")
            key = key.lower()
            if sep and key == "role":
                role = value
            elif sep and key == "phone":
                # A leading * makes Zendesk match every stored format that ends with these digits.
                suffix_match = value.startswith("*")
                phone = _digits(value)
            elif sep and key == "type":
                kind = value.lower()
            elif sep and key == "external_id":
                external_id = value
            else:
                terms.append(token.lower())

        def phone_matches(user: dict[str, Any]) -> bool:
            assert phone is not None
            for stored in [user["phone"] or "", *self.identities.get(user["id"], [])]:
                number = _digits(stored)
                if number and (number.endswith(phone) if suffix_match else number == phone):
                    return True
            return False

        def matches(user: dict[str, Any]) -> bool:
            if role is not None and user["role"] != role:
                return False
            if phone is not None and not phone_matches(user):
                return False
            if external_id is not None and user.get("external_id") != external_id:
                return False
            text = f"{user['name']} {user['email'] or ''}".lower()
            return all(term in text for term in terms)

        # Zendesk's search index lags behind writes: new records stay unsearchable for the delay.
        horizon = time.time() - self.config.search_index_delay
        results: list[dict[str, Any]] = []
        if kind == "user":
            indexed = [uid for uid in sorted(self.users) if self._created.get(uid, 0.0) <= horizon]
            hits = [self.users[uid] for uid in indexed if matches(self.users[uid])]
            hits.sort(key=lambda user: user["updated_at"], reverse=True)  # stable: ties stay in id order
            results = [{**copy.deepcopy(user), "result_type": "user"} for user in hits]
        elif kind == "ticket":
            for tid in sorted(self.tickets):
                ticket = self.tickets[tid]
                if self._ticket_created.get(tid, 0.0) > horizon:
                    continue
                if external_id is None or ticket["external_id"] == external_id:
                    results.append({**self._public_ticket(ticket), "result_type": "ticket"})
        return {"results": results, "count": len(results), "next_page": None}

    def user_identities(self, user_id: int) -> list[dict[str, Any]]:
        """Return a user's phone identities (the primary phone first), or raise 404."""
        user = self.get_user(user_id)
        phones = ([user["phone"]] if user["phone"] else []) + self.identities.get(user_id, [])
        return [
            {"id": user_id * 100 + n, "user_id": user_id, "type": "phone_number", "value": value, "primary": n == 0}
            for n, value in enumerate(phones)
        ]

    def users_by_external_id(self, external_id: str) -> list[dict[str, Any]]:
        """Return users with this external_id: a direct look-up, not the (eventually consistent) search index."""
        return [copy.deepcopy(u) for u in self.users.values() if u.get("external_id") == external_id]

    def create_user(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a user from a `{"user": {...}}` body, end-user by default."""
        src = body.get("user")
        if not isinstance(src, dict):
            raise _record_invalid({"user": "User: is required"})
        errors: dict[str, str] = {}
        name = src.get("name")
        if not isinstance(name, str) or not name.strip():
            errors["name"] = "Name: cannot be blank"
        role = src.get("role") or "end-user"
        if role not in USER_ROLES:
            errors["role"] = f"Role: {role!r} is not a valid role"
        _check_optional_str(src, "phone", errors)
        _check_optional_str(src, "email", errors)
        _check_optional_str(src, "external_id", errors)
        external_id = src.get("external_id")
        if external_id is not None and self.users_by_external_id(external_id):
            # Zendesk keeps external_id unique among users.
            errors["external_id"] = f"External: {external_id} has already been taken"
        email = src.get("email")
        if isinstance(email, str) and any(
            (user["email"] or "").lower() == email.lower() for user in self.users.values()
        ):
            errors["email"] = f"Email: {email} is already being used by another user"
        if errors:
            raise _record_invalid(errors)
        now = _now_iso()
        user_id = self._next_user_id
        user: dict[str, Any] = {
            "id": user_id,
            "name": name,
            "email": email,
            "phone": src.get("phone"),
            "shared_phone_number": False,
            "role": role,
            "suspended": False,
            "external_id": external_id,
            "created_at": now,
            "updated_at": now,
        }
        self._next_user_id += 1
        self.users[user_id] = user
        self._created[user_id] = time.time()
        return copy.deepcopy(user)

    # -- tickets -------------------------------------------------------------------------------

    def get_ticket(self, ticket_id: int) -> dict[str, Any]:
        """Return a copy of a ticket or raise 404."""
        if ticket_id not in self.tickets:
            raise _not_found()
        return self._public_ticket(self.tickets[ticket_id])

    def _public_ticket(self, ticket: dict[str, Any]) -> dict[str, Any]:
        return self._render_comments(copy.deepcopy(ticket))

    def user_tickets(self, user_id: int, relation: str = "requested") -> list[dict[str, Any]]:
        """Return the tickets a user requested (or is assigned), newest first, as agents may list; 404 if no user."""
        self.get_user(user_id)
        field = "requester_id" if relation == "requested" else "assignee_id"
        mine = [self.tickets[tid] for tid in sorted(self.tickets, reverse=True)]
        return [self._public_ticket(t) for t in mine if t[field] == user_id]

    def merge(self, target_id: int, source_ids: list[int]) -> None:
        """Merge tickets into a target as Zendesk does: each source is closed, tagged and commented."""
        if target_id not in self.tickets or any(sid not in self.tickets for sid in source_ids):
            raise _not_found()
        now = _now_iso()
        for sid in source_ids:
            source = self.tickets[sid]
            source["status"] = "closed"
            source["tags"] = [*source["tags"], "closed_by_merge"]
            source["updated_at"] = now
            body = (
                f'This request was closed and merged into request #{target_id} "{self.tickets[target_id]["subject"]}".'
            )
            self._append_comments(source, [{"type": "Comment", "body": body, "public": False}], now)
        target = self.tickets[target_id]
        note = f"Requests {', '.join(f'#{sid}' for sid in source_ids)} were closed and merged into this request."
        self._append_comments(target, [{"type": "Comment", "body": note, "public": False}], now)

    def delete_ticket(self, ticket_id: int) -> None:
        """Delete a ticket; afterwards it answers 404 like any unknown one."""
        if self.tickets.pop(ticket_id, None) is None:
            raise _not_found()

    def close_ticket(self, ticket_id: int) -> None:
        """Close a ticket (as an agent solving it, then Zendesk's automation closing it, would)."""
        self.tickets[ticket_id]["status"] = "closed"

    def list_tickets(self, external_id: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the tickets, filtered by external_id when given, in id order."""
        return [
            self._public_ticket(self.tickets[tid])
            for tid in sorted(self.tickets)
            if external_id is None or self.tickets[tid]["external_id"] == external_id
        ]

    def create_voice_ticket(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a ticket as `POST /api/v2/channels/voice/tickets` does, validating everything first."""
        src = body.get("ticket")
        if not isinstance(src, dict):
            raise _record_invalid({"ticket": "Ticket: is required"})
        errors: dict[str, str] = {}
        display_to = body.get("display_to_agent")
        # Zendesk checks display_to_agent before creating the ticket and creates nothing when it fails.
        if display_to is not None and not self.can_pop(display_to):
            errors["display_to_agent"] = f"display_to_agent: {display_to!r} is not a valid agent id"
        via_id = src.get("via_id")
        if not _is_int(via_id) or via_id not in VOICE_VIA_IDS:
            errors["via_id"] = "Via: must be 44 (voicemail), 45 (inbound call) or 46 (outbound call)"
        requester_id = src.get("requester_id")
        if requester_id is not None and not (_is_int(requester_id) and requester_id in self.users):
            errors["requester_id"] = f"Requester: {requester_id!r} does not exist"
        elif requester_id is not None and self.users[requester_id]["suspended"]:
            errors["requester_id"] = "Requester: is suspended"
        assignee_id = src.get("assignee_id")
        self._check_assignee(assignee_id, errors)
        self._check_group_and_brand(src, errors)
        followup = src.get("via_followup_source_id")
        if followup is not None and not (
            _is_int(followup) and followup in self.tickets and self.tickets[followup]["status"] == "closed"
        ):
            errors["via_followup_source_id"] = f"Follow-up source: {followup!r} is not a closed ticket"
        status = src.get("status")
        if status is not None and status not in TICKET_STATUSES:
            errors["status"] = f"Status: {status!r} is not a valid status"
        _check_optional_str(src, "subject", errors)
        _check_optional_str(src, "external_id", errors)
        comments = self._parse_comments(src, errors)
        if not comments and "comment" not in errors and "voice_comment" not in errors:
            errors["comment"] = "Comment: a comment or voice_comment is required"
        tags = _merge_tags([], src, errors)
        if errors:
            raise _record_invalid(errors)

        now = _now_iso()
        ticket: dict[str, Any] = {
            "id": self._next_ticket_id,
            "via_id": via_id,
            "via": {"channel": "voice"},
            "subject": src.get("subject"),
            "status": status or ("open" if assignee_id is not None else "new"),
            # Zendesk makes the API user the requester when none is given.
            "requester_id": INTEGRATION_USER_ID if requester_id is None else requester_id,
            "assignee_id": assignee_id,
            "group_id": src.get("group_id"),
            "brand_id": src.get("brand_id"),
            "via_followup_source_id": followup,
            "external_id": src.get("external_id"),
            "tags": tags,
            "created_at": now,
            "updated_at": now,
            "comments": [],
        }
        self._next_ticket_id += 1
        self._append_comments(ticket, comments, now)
        self.tickets[ticket["id"]] = ticket
        self._ticket_created[ticket["id"]] = time.time()
        if display_to is not None:
            self.displays.append({"agent_id": display_to, "kind": "ticket", "id": ticket["id"]})
        return self._public_ticket(ticket)

    def update_ticket(self, ticket_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a `PUT /api/v2/tickets/{id}` body: comments, tags, status, assignee, subject, external_id."""
        if ticket_id not in self.tickets:
            raise _not_found()
        ticket = self.tickets[ticket_id]
        src = body.get("ticket")
        if not isinstance(src, dict):
            raise _record_invalid({"ticket": "Ticket: is required"})
        errors: dict[str, str] = {}
        if ticket["status"] == "closed":
            # Zendesk refuses every update to a closed ticket, whatever the body holds.
            raise _record_invalid({"status": CLOSED_TEXT})
        comments = self._parse_comments(src, errors)
        if comments and len(ticket["comments"]) + len(comments) > MAX_COMMENTS:
            errors["comment"] = f"Comment: a ticket can hold at most {MAX_COMMENTS} comments"
        assignee_id = src.get("assignee_id")
        self._check_assignee(assignee_id, errors)
        self._check_group_and_brand(src, errors)
        status = src.get("status")
        if status is not None and status not in TICKET_STATUSES:
            errors["status"] = f"Status: {status!r} is not a valid status"
        _check_optional_str(src, "subject", errors)
        _check_optional_str(src, "external_id", errors)
        tags = _merge_tags(ticket["tags"], src, errors)
        if errors:
            raise _record_invalid(errors)

        now = _now_iso()
        if "assignee_id" in src:
            ticket["assignee_id"] = assignee_id
            # Zendesk moves a "new" ticket to "open" once somebody is assigned.
            if assignee_id is not None and ticket["status"] == "new":
                ticket["status"] = "open"
        if status is not None:
            ticket["status"] = status
        for key in ("subject", "external_id", "group_id", "brand_id"):
            if key in src:
                ticket[key] = src[key]
        ticket["tags"] = tags
        ticket["updated_at"] = now
        self._append_comments(ticket, comments, now)
        return self._public_ticket(ticket)

    def upload(self, filename: str, content_type: str, data: bytes, base_url: str) -> dict[str, Any]:
        """Store a file as `POST /api/v2/uploads` does and return its `upload` (token and attachment)."""
        if not filename:
            raise _record_invalid({"filename": "Filename: is required"})
        token = f"tok{len(self.uploads) + 1:04d}{random.Random(len(self.uploads)).getrandbits(40):010x}"
        attachment = {
            "id": 9000 + len(self.uploads) + 1,
            "file_name": filename,
            "content_type": content_type,
            "size": len(data),
            "content_url": f"{base_url}/attachments/token/{token}/?name={filename}",
        }
        self.uploads[token] = {"attachment": attachment, "data": data, "attached": False}
        return {"token": token, "attachment": copy.deepcopy(attachment), "attachments": [copy.deepcopy(attachment)]}

    def delete_upload(self, token: str) -> None:
        """Delete an upload no comment uses yet, or raise 404."""
        upload = self.uploads.get(token)
        if upload is None or upload["attached"]:
            raise _not_found()
        del self.uploads[token]

    def attachment(self, token: str) -> tuple[dict[str, Any], bytes]:
        """Return an attachment and its bytes by the token in its content_url."""
        upload = self.uploads.get(token)
        if upload is None:
            raise _not_found()
        return upload["attachment"], upload["data"]

    def _check_assignee(self, assignee_id: Any, errors: dict[str, str]) -> None:
        if assignee_id is not None and not self.is_agent(assignee_id):
            errors["assignee_id"] = f"Assignee: {assignee_id!r} is not an agent"
        elif assignee_id is not None and self.users[assignee_id]["suspended"]:
            errors["assignee_id"] = "Assignee: is suspended"

    @staticmethod
    def _check_group_and_brand(src: dict[str, Any], errors: dict[str, str]) -> None:
        group_id, brand_id = src.get("group_id"), src.get("brand_id")
        if group_id is not None and group_id not in GROUPS:
            errors["group_id"] = f"Group: {group_id!r} does not exist"
        if brand_id is not None and brand_id not in BRANDS:
            errors["brand_id"] = f"Brand: {brand_id!r} does not exist"

    def strip_unknown(self, body: dict[str, Any]) -> list[str]:
        """Remove the ticket keys Zendesk would drop (unknown, or not taken by this account); return them."""
        src = body.get("ticket")
        if not isinstance(src, dict):
            return []
        dropped = [key for key in src if key not in TICKET_KEYS or key in self.config.dropped_ticket_keys]
        for key in dropped:
            del src[key]
        return dropped

    def display(self, agent_id: int, kind: str, target_id: int) -> None:
        """Record a screen pop of a user or ticket to an agent, or raise 404 for a bad agent or target."""
        targets = self.users if kind == "user" else self.tickets
        if not self.can_pop(agent_id) or target_id not in targets:
            raise _not_found()
        self.displays.append({"agent_id": agent_id, "kind": kind, "id": target_id})

    def _parse_comments(self, src: dict[str, Any], errors: dict[str, str]) -> list[dict[str, Any]]:
        comments: list[dict[str, Any]] = []
        comment = src.get("comment")
        if comment is not None:
            fields = comment if isinstance(comment, dict) else {}
            text, public = fields.get("body"), fields.get("public", True)
            if not isinstance(text, str) or not text.strip():
                errors["comment"] = "Comment: body cannot be blank"
            elif not isinstance(public, bool):
                errors["comment"] = "Comment: public must be true or false"
            else:
                made: dict[str, Any] = {"type": "Comment", "body": text, "public": public}
                if "uploads" in fields:
                    made["attachments"] = self._attachments(fields["uploads"], errors)
                comments.append(made)
        voice = src.get("voice_comment")
        blank = [key for key, value in voice.items() if value == ""] if isinstance(voice, dict) else []
        if blank:
            errors["voice_comment"] = f"Voice comment: {', '.join(sorted(blank))} cannot be blank"
        elif voice is not None:
            if isinstance(voice, dict):
                comments.append(
                    {
                        "type": "VoiceComment",
                        "public": False,
                        "data": copy.deepcopy(voice),
                        "body": self._render_voice_comment(voice),
                    }
                )
            else:
                errors["voice_comment"] = "Voice comment: must be an object"
        return comments

    def _attachments(self, tokens: Any, errors: dict[str, str]) -> list[dict[str, Any]]:
        """Resolve a comment's upload tokens; Zendesk refuses an unknown or already used one."""
        found = []
        for token in tokens if isinstance(tokens, list) else [tokens]:
            upload = self.uploads.get(token) if isinstance(token, str) else None
            if upload is None or upload["attached"]:
                errors["uploads"] = f"Uploads: {token!r} is not a valid upload token"
                continue
            found.append(upload)
        if "uploads" in errors:
            return []
        for upload in found:
            upload["attached"] = True
        return [copy.deepcopy(upload["attachment"]) for upload in found]

    def _render_voice_comment(self, voice: dict[str, Any]) -> str:
        parts = [f"Call from: {_one_line(voice.get('from') or 'unknown')}"]
        parts.append(f"To: {_one_line(voice.get('to') or 'unknown')}")
        answered_by = voice.get("answered_by_id")
        if answered_by is not None:
            agent = self.users.get(answered_by) if isinstance(answered_by, int) else None
            parts.append(f"Answered by: {_one_line(agent['name'] if agent else answered_by)}")
        labels = (
            ("started_at", "Time of call: {}"),
            ("call_duration", "Length of phone call: {} seconds"),
            ("location", "Location: {}"),
            ("transcription_text", "Transcription: {}"),
            ("recording_url", "Recording: {}"),
        )
        parts.extend(template.format(_one_line(voice[key])) for key, template in labels if voice.get(key))
        return " | ".join(parts)

    def _append_comments(self, ticket: dict[str, Any], comments: list[dict[str, Any]], now: str) -> None:
        for comment in comments:
            ticket["comments"].append(
                {"id": self._next_comment_id, **comment, "author_id": INTEGRATION_USER_ID, "created_at": now}
            )
            self._next_comment_id += 1

    # -- Talk Partner Edition call records -----------------------------------------------------

    def installed_apps(self) -> list[int]:
        """Return the ids of the apps installed in the account (the softphone app among them)."""
        return [app_id for app_id, _ in self.config.app_public_keys]

    def get_call(self, call_id: int) -> dict[str, Any]:
        """Return a call record as `GET /api/v2/calls/{id}` shows it, or raise 404."""
        if call_id not in self.calls:
            raise _not_found()
        return self._public_call(self.calls[call_id])

    @staticmethod
    def _public_call(record: dict[str, Any]) -> dict[str, Any]:
        return {key: copy.deepcopy(record.get(key)) for key in CALL_RESPONSE_KEYS}

    @staticmethod
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

    @staticmethod
    def strip_unknown_comment_keys(body: dict[str, Any]) -> list[str]:
        """Remove the keys the comments endpoint does not take from its flat body; return them, `comment` first."""
        # Recorded: a flat body still answers "Removed restricted keys [\"comment\"]" (the framework wraps the
        # parameters in `comment`, then drops the wrapper). A wrapped body loses its comment to the same rule.
        unknown = [key for key in body if key not in CALL_COMMENT_KEYS]
        for key in unknown:
            del body[key]
        return ["comment", *[key for key in unknown if key != "comment"]]

    def create_call(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a call record as `POST /api/v2/calls` does; with a comment section, its ticket and voice comment."""
        src = body.get("call")
        if not isinstance(src, dict):
            raise _record_invalid({"call": "Call: is required"})
        errors: dict[str, str] = {}
        for key in sorted(CALL_SERVER_KEYS & set(src)):
            errors[key] = f"{_label(key)}: is read-only"  # docs: "Read-only: true"; Zendesk sets these
        for key in CALL_MANDATORY:
            if src.get(key) is None or src.get(key) == "":
                errors[key] = f"{_label(key)}: cannot be blank"
        fields = self._check_call_fields(src, errors)
        comment = body.get("comment")
        ticket_id = src.get("ticket_id")
        if comment is not None:
            self._check_call_comment(comment, errors)
            if _is_int(ticket_id) and ticket_id in self.tickets:
                self._check_commentable(self.tickets[ticket_id], errors)
        if errors:
            raise _record_invalid(errors)
        now = _now_iso()
        record: dict[str, Any] = {key: None for key in CALL_RESPONSE_KEYS}
        record.update(fields)
        record.update(id=self._next_call_id, account_id=SANDBOX_ACCOUNT_ID, created_at=now, updated_at=now)
        record["call_recording_consent"] = fields.get("call_recording_consent")  # documented, not in the answer
        self._next_call_id += 1
        self.calls[record["id"]] = record
        if comment is not None:
            self._add_call_comment(record, comment, now)
        return self._public_call(record)

    def update_call(self, call_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a `PATCH /api/v2/calls/{id}` body: the fields present, validated as on create."""
        if call_id not in self.calls:
            raise _not_found()
        record = self.calls[call_id]
        src = body.get("call")
        if not isinstance(src, dict):
            raise _record_invalid({"call": "Call: is required"})
        errors: dict[str, str] = {}
        for key in sorted((CALL_SERVER_KEYS | {"app_id"}) & set(src)):
            # The cassette's PATCH repeats the call's own id and is accepted; changing a read-only field is not.
            if src[key] != record[key]:
                errors[key] = f"{_label(key)}: is read-only"
        for key in CALL_MANDATORY:
            if key in src and (src[key] is None or src[key] == ""):
                errors[key] = f"{_label(key)}: cannot be blank"
        fields = self._check_call_fields({k: v for k, v in src.items() if k not in CALL_SERVER_KEYS}, errors)
        if errors:
            raise _record_invalid(errors)
        record.update(fields)
        record["updated_at"] = _now_iso()
        return self._public_call(record)

    def add_call_comment(self, call_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Add a TPE voice comment as `POST /api/v2/calls/{id}/comments` does, and return it as rendered."""
        if call_id not in self.calls:
            raise _not_found()
        record = self.calls[call_id]
        errors: dict[str, str] = {}
        self._check_call_comment(body, errors)
        ticket_id = record["ticket_id"]
        if ticket_id is not None and ticket_id not in self.tickets:
            raise _not_found()  # the call's ticket was deleted: as for any ticket update, 404
        if ticket_id is not None:
            self._check_commentable(self.tickets[ticket_id], errors)
        if errors:
            raise _record_invalid(errors)
        now = _now_iso()
        record["updated_at"] = now
        return self._add_call_comment(record, body, now)

    def _check_call_fields(self, src: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
        """Validate the call fields present (null clears an optional one); return them normalised."""
        fields: dict[str, Any] = {}
        for key, value in src.items():
            if value is None or key in errors:
                fields[key] = None
                continue
            text = self._call_field_error(key, value)
            if text is not None:
                errors[key] = f"{_label(key)}: {text}"
            elif key in CALL_TIMESTAMPS:
                fields[key] = _utc_timestamp(value)
            else:
                fields[key] = value
        return fields

    def _call_field_error(self, key: str, value: Any) -> str | None:
        """Say what is wrong with one call field's value, or None."""
        if key in CALL_TIMESTAMPS:
            return None if _utc_timestamp(value) else f"{value!r} is not an ISO 8601 date-time with an offset"
        if key in CALL_DURATIONS:
            return None if _is_int(value) and value >= 0 else f"{value!r} is not a whole number of seconds"
        if key in CALL_FLAGS:
            return None if isinstance(value, bool) else "must be true or false"
        if key in CALL_ENUMS:
            allowed = sorted(CALL_ENUMS[key])
            return None if value in CALL_ENUMS[key] else f"{value!r} is not one of {allowed}"
        if key in CALL_TEXTS:
            return None if isinstance(value, str) else "must be a string"
        checks: dict[str, tuple[Callable[[Any], bool], str]] = {
            "app_id": (lambda v: v in self.installed_apps(), "is not an app installed in this account"),
            "agent_id": (self.is_agent, "is not an agent"),
            "end_user_id": (lambda v: v in self.users, "does not exist"),
            "brand_id": (lambda v: v in BRANDS, "does not exist"),
            "ticket_id": (lambda v: v in self.tickets, "does not exist"),
        }
        valid, text = checks[key]
        return None if _is_int(value) and valid(value) else f"{value!r} {text}"

    def _check_call_comment(self, comment: Any, errors: dict[str, str]) -> None:
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
        _check_optional_str(comment, "subject", errors)
        for key in ("author_id", "end_user_id"):
            value = comment.get(key)
            if value is not None and not (_is_int(value) and value in self.users):
                errors[key] = f"{_label(key)}: {value!r} does not exist"
        display_to = comment.get("display_to_agent")
        # As for Create Ticket's display_to_agent: validated first, and nothing is created when it fails.
        if display_to is not None and not self.can_pop(display_to):
            errors["display_to_agent"] = f"display_to_agent: {display_to!r} is not a valid agent id"

    @staticmethod
    def _check_commentable(ticket: dict[str, Any], errors: dict[str, str]) -> None:
        if ticket["status"] == "closed":
            errors["status"] = CLOSED_TEXT  # a closed ticket refuses every update, a voice comment too
        elif len(ticket["comments"]) >= MAX_COMMENTS:
            errors["comment"] = f"Comment: a ticket can hold at most {MAX_COMMENTS} comments"

    def _add_call_comment(self, record: dict[str, Any], comment: dict[str, Any], now: str) -> dict[str, Any]:
        """Put a TpeVoiceComment on the call's ticket, creating the ticket first when the call has none."""
        if record["ticket_id"] is None:
            # Docs, "Creating a call record in Zendesk": omit ticket_id and include a comment section, and
            # Zendesk makes the ticket. The cassette TestCallPE.test_add_comment adds a comment to a call
            # without a ticket and gets 201: the comments endpoint makes one as well.
            record["ticket_id"] = self._call_ticket(record, comment, now)
        ticket = self.tickets[record["ticket_id"]]
        author_id = comment.get("author_id")
        stored = {
            "id": self._next_comment_id,
            "type": "TpeVoiceComment",
            "public": False,  # recorded: TPE voice comments are internal
            "call_id": record["id"],
            "title": comment["title"],
            "call_fields": list(comment.get("call_fields", [])),
            "data_author_id": author_id,
            "author_id": INTEGRATION_USER_ID if author_id is None else author_id,
            "audit_id": self._next_audit_id,
            "created_at": now,
        }
        self._next_comment_id += 1
        self._next_audit_id += 1
        ticket["comments"].append(stored)
        ticket["updated_at"] = now
        display_to = comment.get("display_to_agent")
        if display_to is not None:
            self.displays.append({"agent_id": display_to, "kind": "ticket", "id": ticket["id"]})
        return self._render_comment(stored)

    def _call_ticket(self, record: dict[str, Any], comment: dict[str, Any], now: str) -> int:
        """Create the ticket a call's comment goes into: via 45/46 by direction, the brand of the call."""
        inbound = record["direction"] == "inbound"
        requester = comment.get("end_user_id") or record["end_user_id"] or INTEGRATION_USER_ID
        line = record["from_line"] if inbound else record["to_line"]
        ticket: dict[str, Any] = {
            "id": self._next_ticket_id,
            "via_id": INBOUND_VIA_ID if inbound else OUTBOUND_VIA_ID,
            "via": {"channel": "voice"},
            "subject": comment.get("subject") or f"{'Call from' if inbound else 'Call to'} {line}",
            "status": "new",
            "requester_id": requester,
            "assignee_id": None,
            "group_id": None,
            "brand_id": record["brand_id"],
            "via_followup_source_id": None,
            "external_id": None,
            "tags": [],
            "created_at": now,
            "updated_at": now,
            "comments": [],
        }
        self._next_ticket_id += 1
        self.tickets[ticket["id"]] = ticket
        self._ticket_created[ticket["id"]] = time.time()
        return int(ticket["id"])

    def _render_comments(self, ticket: dict[str, Any]) -> dict[str, Any]:
        ticket["comments"] = [self._render_comment(comment) for comment in ticket["comments"]]
        return ticket

    def _render_comment(self, comment: dict[str, Any]) -> dict[str, Any]:
        """Render a TpeVoiceComment from the call record as it is now; other comments are returned as stored."""
        if comment.get("type") != "TpeVoiceComment":
            return copy.deepcopy(comment)
        # Docs, "Creating a voice comment in a ticket": the data "is directly retrieved from the call record",
        # so a later PATCH (a recording, a transcript) shows in the comment. Keys and order as recorded
        # (zenpy cassette TestCallPE.test_add_comment).
        call = self.calls[comment["call_id"]]
        title, call_fields = comment["title"], comment["call_fields"]
        data = {
            "app_id": call["app_id"],
            "app_name": APP_NAME,
            "author_id": comment["data_author_id"],
            "call_id": call["id"],
            "direction": call["direction"],
            "external_id": call["external_id"],
            "title": title,
            "via_id": INBOUND_VIA_ID if call["direction"] == "inbound" else OUTBOUND_VIA_ID,
            "recording_url": call["recording_url"] or "",
        }
        data.update({field: copy.deepcopy(call.get(field)) for field in call_fields})
        summary = [f"{_label(field)}: {call.get(field)}" for field in call_fields if call.get(field) is not None]
        body = title + ("\n\nSummary\n" + "\n".join(summary) if summary else "")
        paragraphs = [f'<p dir="auto">{html.escape(title)}</p>']
        if summary:
            lines = "<br>\n".join(html.escape(line) for line in ["Summary", *summary])
            paragraphs.append(f'<p dir="auto">{lines}</p>')
        return {
            "id": comment["id"],
            "type": "TpeVoiceComment",
            "public": False,
            "data": data,
            "formatted_from": _formatted_line(call["from_line"]),
            "formatted_to": _formatted_line(call["to_line"]),
            "transcription_visible": False,
            "author_id": comment["author_id"],
            "body": body,
            "html_body": '<div class="zd-comment" dir="auto">' + "\n".join(paragraphs) + "</div>",
            "trusted": True,
            "attachments": [],
            "created_at": comment["created_at"],
            "audit_id": comment["audit_id"],
            "title": title,
        }


SANDBOX: web.AppKey[Sandbox] = web.AppKey("sandbox", Sandbox)


# -- HTTP layer ------------------------------------------------------------------------------------


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.json_response(payload, status=status)


def _too_many_requests(retry_after: int) -> web.Response:
    # Real Zendesk 429 bodies are text/plain, so clients must not assume JSON here.
    return web.Response(status=429, text=RATE_LIMIT_TEXT, headers={hdrs.RETRY_AFTER: str(retry_after)})


def _log_body(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise SandboxError(400, {"error": "InvalidJSON"}) from exc
    if not isinstance(data, dict):
        raise SandboxError(400, {"error": "InvalidJSON"})
    return data


def _connected(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


def _drop(request: web.BaseRequest) -> web.Response:
    transport = request.transport
    if transport is not None:  # pragma: no branch - None only once the peer has already gone
        transport.close()
    # aiohttp fails to write this to the closed transport, swallows the ConnectionError and moves on.
    return web.Response(status=204)


async def _hang(request: web.BaseRequest, sandbox: Sandbox) -> web.Response:
    sandbox.hang_started()
    try:
        # Polled, because aiohttp only cancels handlers on disconnect when handler_cancellation=True.
        for _ in range(int(HANG_SECONDS / HANG_POLL_SECONDS)):
            if sandbox.hangs_released or not _connected(request):
                break
            await asyncio.sleep(HANG_POLL_SECONDS)
    finally:
        sandbox.hang_finished()
    return _json({"error": "GatewayTimeout", "description": "The request hung (sandbox fault)"}, 504)


def _set_rate_headers(response: web.StreamResponse, sandbox: Sandbox) -> None:
    response.headers["X-Rate-Limit"] = str(sandbox.rate_limit)
    response.headers["X-Rate-Limit-Remaining"] = str(sandbox.rate_limit_remaining())
    # Zendesk sends this on list endpoints (developer docs, "Best practices for avoiding rate limiting").
    response.headers["ratelimit-reset"] = f"{sandbox.rate_limit_reset():g}"


def _unsupported_media(request: web.Request) -> bool:
    # Uploads are the one exception: their body is the file itself (Zendesk docs: Attachments, "Upload Files").
    if request.path.startswith("/api/v2/uploads"):
        return False
    return request.method in ("POST", "PUT", "PATCH") and request.content_type != "application/json"


async def _serve(request: web.Request, handler: Handler, sandbox: Sandbox) -> web.StreamResponse:
    response: web.StreamResponse
    if not sandbox.authenticate(request.headers.get(hdrs.AUTHORIZATION)):
        response = _json({"error": "Couldn't authenticate you"}, 401)
    elif (retry_after := sandbox.consume_rate_limit()) is not None:
        response = _too_many_requests(retry_after)
    elif _unsupported_media(request):
        response = _json({"error": "UnsupportedMediaType", "description": "Send a JSON body"}, 415)
    else:
        try:
            response = await handler(request)
        except SandboxError as exc:
            response = _json(exc.payload, exc.status)
    _set_rate_headers(response, sandbox)
    return response


async def _late(request: web.Request, handler: Handler, sandbox: Sandbox, entry: dict[str, Any]) -> web.StreamResponse:
    await asyncio.sleep(sandbox.config.late_commit_seconds)
    response = await _serve(request, handler, sandbox)
    entry["status"] = response.status
    return response


@web.middleware
async def _sandbox_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log, fault, authenticate and rate-limit `/api` requests; map SandboxError to JSON everywhere."""
    if not request.path.startswith("/api/"):
        try:
            return await handler(request)
        except SandboxError as exc:
            return _json(exc.payload, exc.status)

    sandbox = request.app[SANDBOX]
    raw = await request.read()
    entry = sandbox.record_request(request.method, request.path, dict(request.query), _log_body(raw))
    if sandbox.config.latency_seconds > 0:
        await asyncio.sleep(sandbox.config.latency_seconds)
    fault = sandbox.next_fault(request.method, request.path)
    if fault is None:
        response = await _serve(request, handler, sandbox)
        entry["status"] = response.status
        return response

    _log.debug("sandbox fault %s on %s %s", fault.kind, request.method, request.path)
    entry["fault"] = fault.kind
    if fault.kind == "drop_after":
        # The request really happens (a ticket may be created); only the answer is lost.
        await _serve(request, handler, sandbox)
        return _drop(request)
    if fault.kind == "drop":
        return _drop(request)
    if fault.kind == "hang":
        return await _hang(request, sandbox)
    if fault.kind == "late" and request.method == "GET":
        # A slow read: it sees the state at arrival, and its answer comes late (maybe after a write).
        response = await _serve(request, handler, sandbox)
        entry["status"] = response.status
        await asyncio.sleep(sandbox.config.late_commit_seconds)
        return response
    if fault.kind == "late":
        # Zendesk is still working on it when the client gives up: the write commits later, then answers.
        # Shielded, because the client hanging up must not stop a write the server already accepted.
        task = asyncio.ensure_future(_late(request, handler, sandbox, entry))
        sandbox.background.add(task)
        task.add_done_callback(sandbox.background.discard)
        return await asyncio.shield(task)
    if fault.kind == "429":
        response = _too_many_requests(math.ceil(fault.retry_after))
    elif fault.kind == "409":
        description = "Database collision: another request updated this record at the same time. Try again."
        response = _json({"error": "DatabaseConflict", "description": description}, 409)
    else:
        response = _json({"error": "SandboxFault", "description": f"Injected HTTP {fault.kind}"}, int(fault.kind))
    _set_rate_headers(response, sandbox)
    entry["status"] = response.status
    return response


async def _show_me(request: web.Request) -> web.Response:
    return _json({"user": request.app[SANDBOX].get_user(INTEGRATION_USER_ID)})


async def _show_user(request: web.Request) -> web.Response:
    return _json({"user": request.app[SANDBOX].get_user(int(request.match_info["id"]))})


async def _search(request: web.Request) -> web.Response:
    return _json(request.app[SANDBOX].search(request.query.get("query", "")))


async def _users_search(request: web.Request) -> web.Response:
    users = request.app[SANDBOX].users_by_external_id(request.query.get("external_id", ""))
    return _json({"users": users, "count": len(users), "next_page": None})


async def _create_user(request: web.Request) -> web.Response:
    body = await _json_body(request)
    return _json({"user": request.app[SANDBOX].create_user(body)}, 201)


def _warned(response: web.Response, dropped: list[str]) -> web.Response:
    if dropped:
        response.headers["X-Zendesk-API-Warn"] = f"Removed restricted keys {json.dumps(dropped)} from parameters"
    return response


async def _create_voice_ticket(request: web.Request) -> web.Response:
    body = await _json_body(request)
    sandbox = request.app[SANDBOX]
    dropped = sandbox.strip_unknown(body)
    return _warned(_json({"ticket": sandbox.create_voice_ticket(body)}, 201), dropped)


def _admin_only(sandbox: Sandbox) -> None:
    if sandbox.users[INTEGRATION_USER_ID]["role"] != "admin":
        raise SandboxError(403, dict(FORBIDDEN))


async def _upload(request: web.Request) -> web.Response:
    data = await request.read()
    content_type = request.headers.get(hdrs.CONTENT_TYPE, "application/binary")
    base = f"{request.scheme}://{request.host}"
    upload = request.app[SANDBOX].upload(request.query.get("filename", ""), content_type, data, base)
    return _json({"upload": upload}, 201)


async def _delete_upload(request: web.Request) -> web.Response:
    request.app[SANDBOX].delete_upload(request.match_info["token"])
    return web.Response(status=204)


async def _download_attachment(request: web.Request) -> web.Response:
    attachment, data = request.app[SANDBOX].attachment(request.match_info["token"])
    return web.Response(body=data, content_type=attachment["content_type"])


async def _list_tickets(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    _admin_only(sandbox)  # "Listing Tickets: Allowed for Admins" (Zendesk docs, Tickets)
    tickets = sandbox.list_tickets(request.query.get("external_id"))
    return _json({"tickets": tickets, "count": len(tickets)})


async def _app_public_key(request: web.Request) -> web.Response:
    # Zendesk docs, "Authenticating Zendesk in your server-side app": GET /api/v2/apps/{id}/public_key.pem.
    keys = dict(request.app[SANDBOX].config.app_public_keys)
    pem = keys.get(int(request.match_info["id"]))
    if pem is None:
        raise _not_found()
    return web.Response(text=pem, content_type="application/x-pem-file")


async def _app_installations(request: web.Request) -> web.Response:
    # Zendesk docs, "Apps": GET /api/v2/apps/installations.json lists the account's installed apps.
    apps = [app_id for app_id, _ in request.app[SANDBOX].config.app_public_keys]
    installations = [{"id": installation_id(app_id), "app_id": app_id, "enabled": True} for app_id in apps]
    return _json({"installations": installations})


async def _user_tickets(request: web.Request) -> web.Response:
    tickets = request.app[SANDBOX].user_tickets(int(request.match_info["id"]), request.match_info["relation"])
    return _json({"tickets": tickets, "count": len(tickets), "next_page": None})


async def _user_identities(request: web.Request) -> web.Response:
    identities = request.app[SANDBOX].user_identities(int(request.match_info["id"]))
    return _json({"identities": identities, "count": len(identities), "next_page": None})


async def _merge(request: web.Request) -> web.Response:
    body = await _json_body(request)
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or not all(_is_int(i) for i in ids):
        raise _record_invalid({"ids": "Ids: give the source ticket ids"})
    request.app[SANDBOX].merge(int(request.match_info["id"]), ids)
    return _json({"job_status": {"status": "completed"}})


async def _show_group(request: web.Request) -> web.Response:
    group_id = int(request.match_info["id"])
    if group_id not in GROUPS:
        raise _not_found()
    return _json({"group": {"id": group_id, "name": GROUPS[group_id]}})


async def _show_brand(request: web.Request) -> web.Response:
    brand_id = int(request.match_info["id"])
    if brand_id not in BRANDS:
        raise _not_found()
    return _json({"brand": {"id": brand_id, "name": BRANDS[brand_id]}})


async def _show_ticket(request: web.Request) -> web.Response:
    return _json({"ticket": request.app[SANDBOX].get_ticket(int(request.match_info["id"]))})


async def _ticket_comments(request: web.Request) -> web.Response:
    comments = request.app[SANDBOX].get_ticket(int(request.match_info["id"]))["comments"]
    return _json({"comments": comments, "count": len(comments), "next_page": None})


async def _update_ticket(request: web.Request) -> web.Response:
    ticket_id = int(request.match_info["id"])
    sandbox = request.app[SANDBOX]
    if ticket_id not in sandbox.tickets:
        raise _not_found()  # 404 wins over a malformed body, as on Zendesk
    body = await _json_body(request)
    dropped = sandbox.strip_unknown(body)
    return _warned(_json({"ticket": sandbox.update_ticket(ticket_id, body)}), dropped)


async def _display_user(request: web.Request) -> web.Response:
    agent_id, user_id = int(request.match_info["agent_id"]), int(request.match_info["target_id"])
    request.app[SANDBOX].display(agent_id, "user", user_id)
    return _json({})


async def _display_ticket(request: web.Request) -> web.Response:
    agent_id, ticket_id = int(request.match_info["agent_id"]), int(request.match_info["target_id"])
    request.app[SANDBOX].display(agent_id, "ticket", ticket_id)
    return _json({})


async def _create_call(request: web.Request) -> web.Response:
    body = await _json_body(request)
    sandbox = request.app[SANDBOX]
    dropped = sandbox.strip_unknown_call_keys(body)
    return _warned(_json({"call": sandbox.create_call(body)}, 201), dropped)


async def _show_call(request: web.Request) -> web.Response:
    return _json({"call": request.app[SANDBOX].get_call(int(request.match_info["id"]))})


async def _update_call(request: web.Request) -> web.Response:
    call_id = int(request.match_info["id"])
    sandbox = request.app[SANDBOX]
    if call_id not in sandbox.calls:
        raise _not_found()  # 404 wins over a malformed body, as for tickets
    body = await _json_body(request)
    dropped = sandbox.strip_unknown_call_keys(body)
    if "comment" in body:  # a comment section belongs to a create only
        del body["comment"]
        dropped.append("comment")
    return _warned(_json({"call": sandbox.update_call(call_id, body)}), dropped)


async def _add_call_comment(request: web.Request) -> web.Response:
    call_id = int(request.match_info["id"])
    sandbox = request.app[SANDBOX]
    if call_id not in sandbox.calls:
        raise _not_found()
    body = await _json_body(request)
    dropped = sandbox.strip_unknown_comment_keys(body)
    # Recorded: the comment itself is the body of the answer, not wrapped in {"comment": ...}.
    return _warned(_json(sandbox.add_call_comment(call_id, body), 201), dropped)


async def _unknown_endpoint(request: web.Request) -> web.Response:
    raise SandboxError(404, {"error": "InvalidEndpoint", "description": "Not found"})


async def _control_state(request: web.Request) -> web.Response:
    return _json(request.app[SANDBOX].snapshot())


async def _control_reset(request: web.Request) -> web.Response:
    request.app[SANDBOX].reset()
    return _json({"reset": True})


def _rule_from_json(raw: Any) -> FaultRule:
    if not isinstance(raw, dict):
        raise TypeError("each rule must be an object")
    method = raw.get("method")
    if method is not None and not isinstance(method, str):
        raise TypeError("method must be a string or null")
    return FaultRule(
        method=method,
        path_prefix=str(raw.get("path_prefix", "/api/v2")),
        kind=str(raw["kind"]),
        times=int(raw.get("times", 1)),
        retry_after=float(raw.get("retry_after", 1.0)),
    )


async def _control_set_faults(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    body = await _json_body(request)
    try:
        raw_rules = body.get("rules") or []
        if not isinstance(raw_rules, list):
            raise TypeError("rules must be a list")
        rules = [_rule_from_json(raw) for raw in raw_rules]
        settings = body.get("random")
        if settings is not None:
            if not isinstance(settings, dict):
                raise TypeError("random must be an object")
            rate = float(settings["rate"])
            kinds = [str(kind) for kind in settings["kinds"]]
            seed = int(settings.get("seed", 0))
            _check_random(rate, kinds)  # before add_faults, so a bad request applies nothing
    except (KeyError, TypeError, ValueError) as exc:
        raise SandboxError(400, {"error": "InvalidFault", "description": str(exc)}) from exc
    sandbox.add_faults(rules)
    if settings is not None:
        sandbox.set_random_faults(rate, kinds, seed)
    return _json(sandbox.fault_state())


async def _control_clear_faults(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    sandbox.clear_faults()
    return _json(sandbox.fault_state())


async def _release_hangs_on_shutdown(app: web.Application) -> None:
    # aiohttp's graceful shutdown waits for in-flight handlers; a hang fault would stall it for a minute.
    app[SANDBOX].release_hangs()


_API_ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/api/v2/users/me", _show_me),
    ("GET", "/api/v2/users/search", _users_search),
    ("GET", r"/api/v2/users/{id:\d+}", _show_user),
    ("GET", r"/api/v2/users/{id:\d+}/identities", _user_identities),
    ("GET", r"/api/v2/users/{id:\d+}/tickets/{relation:requested|assigned}", _user_tickets),
    ("POST", r"/api/v2/tickets/{id:\d+}/merge", _merge),
    ("GET", r"/api/v2/groups/{id:\d+}", _show_group),
    ("GET", r"/api/v2/brands/{id:\d+}", _show_brand),
    ("POST", "/api/v2/users", _create_user),
    ("GET", "/api/v2/search", _search),
    ("POST", "/api/v2/channels/voice/tickets", _create_voice_ticket),
    ("POST", "/api/v2/uploads", _upload),
    ("DELETE", "/api/v2/uploads/{token:[A-Za-z0-9]+}", _delete_upload),
    ("GET", r"/api/v2/apps/{id:\d+}/public_key.pem", _app_public_key),
    ("GET", "/api/v2/apps/installations", _app_installations),
    ("GET", "/api/v2/tickets", _list_tickets),
    ("GET", r"/api/v2/tickets/{id:\d+}", _show_ticket),
    ("GET", r"/api/v2/tickets/{id:\d+}/comments", _ticket_comments),
    ("PUT", r"/api/v2/tickets/{id:\d+}", _update_ticket),
    # Talk Partner Edition Calls: create, show, update, comment. No list or search: none is documented.
    ("POST", "/api/v2/calls", _create_call),
    ("GET", r"/api/v2/calls/{id:\d+}", _show_call),
    ("PATCH", r"/api/v2/calls/{id:\d+}", _update_call),
    ("POST", r"/api/v2/calls/{id:\d+}/comments", _add_call_comment),
    ("POST", r"/api/v2/channels/voice/agents/{agent_id:\d+}/users/{target_id:\d+}/display", _display_user),
    (
        "POST",
        r"/api/v2/channels/voice/agents/{agent_id:\d+}/tickets/{target_id:\d+}/display",
        _display_ticket,
    ),
]


def create_sandbox_app(config: SandboxConfig | None = None) -> web.Application:
    """Build an aiohttp app serving one fresh Sandbox, reachable as `app[SANDBOX]`."""
    app = web.Application(middlewares=[_sandbox_middleware], client_max_size=64 * 1024 * 1024)  # uploads
    app[SANDBOX] = Sandbox(config)
    for method, path, handler in _API_ROUTES:
        # Zendesk serves every endpoint both with and without the .json suffix.
        for suffix in ("", ".json"):
            app.router.add_route(method, path + suffix, handler)
    app.router.add_route("*", "/api/{tail:.*}", _unknown_endpoint)
    app.router.add_get("/attachments/token/{token}/", _download_attachment)
    app.router.add_get("/sandbox/state", _control_state)
    app.router.add_post("/sandbox/reset", _control_reset)
    app.router.add_post("/sandbox/faults", _control_set_faults)
    app.router.add_delete("/sandbox/faults", _control_clear_faults)
    app.on_shutdown.append(_release_hangs_on_shutdown)
    return app
