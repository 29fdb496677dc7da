"""Emulate, over real HTTP, the Zendesk Support and Talk Partner Edition endpoints the bridge calls."""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import dataclasses
import hmac
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
FAULT_KINDS = frozenset({"500", "503", "429", "hang", "drop", "drop_after"})
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
_NOT_FOUND = {"error": "RecordNotFound", "description": "Not found"}


@dataclass
class SandboxConfig:
    """Credentials and limits the emulated Zendesk account enforces."""

    email: str = "bridge@example.com"
    api_token: str = "sandbox-token"
    oauth_token: str | None = None
    rate_limit_per_minute: int | None = None
    # The limit's window; 60 s like Zendesk. Benchmarks shrink it to see a whole backlog drain in seconds.
    rate_window_seconds: float = RATE_WINDOW_SECONDS
    # Seconds before a new user shows up in search, as on Zendesk, whose search index lags behind writes.
    search_index_delay: float = 0.0
    # Agents without a Talk Partner Edition seat: assignable, but screen-pops to them are refused.
    no_tpe_seat: frozenset[int] = frozenset()
    # Seconds each API request takes to answer: the real Zendesk takes 100-500 ms, benchmarks model that.
    latency_seconds: float = 0.0


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


def _seed_users(email: str) -> dict[int, dict[str, Any]]:
    rows: list[tuple[int, str, str | None, str | None, str]] = [
        (INTEGRATION_USER_ID, "Bridge Integration", email, None, "admin"),
        (1001, "Alice Agent", "alice@example.com", None, "agent"),
        (1002, "Bob Agent", "bob@example.com", None, "agent"),
        (1003, "Carol Agent", "carol@example.com", "+16505550111", "agent"),
        (2001, "Dana Customer", "dana@example.net", "+14155550123", "end-user"),
        (2002, "Erin Customer", "erin@example.net", "+14155550199", "end-user"),
    ]
    return {
        uid: {
            "id": uid,
            "name": name,
            "email": mail,
            "phone": phone,
            "role": role,
            "external_id": None,
            "created_at": SEED_TIMESTAMP,
            "updated_at": SEED_TIMESTAMP,
        }
        for uid, name, mail, phone, role in rows
    }


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
        self._active_hangs = 0
        self._hangs_changed = asyncio.Event()
        self._hangs_released = False
        self.reset()

    # -- lifecycle -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Return to the seed data and drop every fault, request record and rate-limit hit."""
        self.users = _seed_users(self.config.email)
        self._created: dict[int, float] = {}  # when each user was created, for the search-index delay
        self.tickets = {}
        self.displays = []
        self.requests = []
        self.uploads = {}
        self._hits.clear()
        self._next_user_id = FIRST_USER_ID
        self._next_ticket_id = 1
        self._next_comment_id = 1
        self.clear_faults()

    def snapshot(self) -> dict[str, Any]:
        """Return a deep copy of the state, users and tickets by id, displays and requests by arrival."""
        return copy.deepcopy(
            {
                "users": [self.users[uid] for uid in sorted(self.users)],
                "tickets": [self.tickets[tid] for tid in sorted(self.tickets)],
                "displays": self.displays,
                "requests": self.requests,
            }
        )

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

    def rate_limit_reset(self) -> int:
        """Return the seconds until the oldest request counted in the window leaves it (`ratelimit-reset`)."""
        if not self._window_hits():
            return 0
        return max(0, math.ceil(self._hits[0] + self.config.rate_window_seconds - self.clock()))

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
        """Run the subset of Zendesk search syntax the bridge uses: role:, phone:[*]digits, type:, text."""
        role: str | None = None
        phone: str | None = None
        suffix_match = False
        want_users = True
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
                want_users = value.lower() == "user"
            else:
                terms.append(token.lower())

        def matches(user: dict[str, Any]) -> bool:
            if role is not None and user["role"] != role:
                return False
            if phone is not None:
                stored = _digits(user["phone"] or "")
                found = stored.endswith(phone) if suffix_match else stored == phone
                if not stored or not found:
                    return False
            text = f"{user['name']} {user['email'] or ''}".lower()
            return all(term in text for term in terms)

        # Zendesk's search index lags behind writes; with a delay set, new users stay unsearchable that long.
        indexed = [
            uid for uid in self.users if self._created.get(uid, 0.0) + self.config.search_index_delay <= time.time()
        ]
        hits = [self.users[uid] for uid in sorted(indexed) if want_users and matches(self.users[uid])]
        hits.sort(key=lambda user: user["updated_at"], reverse=True)  # stable: ties stay in id order
        results = [{**copy.deepcopy(user), "result_type": "user"} for user in hits]
        return {"results": results, "count": len(results), "next_page": None}

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
            "role": role,
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
        return copy.deepcopy(self.tickets[ticket_id])

    def list_tickets(self, external_id: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the tickets, filtered by external_id when given, in id order."""
        return [
            copy.deepcopy(self.tickets[tid])
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
        assignee_id = src.get("assignee_id")
        if assignee_id is not None and not self.is_agent(assignee_id):
            errors["assignee_id"] = f"Assignee: {assignee_id!r} is not an agent"
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
            "external_id": src.get("external_id"),
            "tags": tags,
            "created_at": now,
            "updated_at": now,
            "comments": [],
        }
        self._next_ticket_id += 1
        self._append_comments(ticket, comments, now)
        self.tickets[ticket["id"]] = ticket
        if display_to is not None:
            self.displays.append({"agent_id": display_to, "kind": "ticket", "id": ticket["id"]})
        return copy.deepcopy(ticket)

    def update_ticket(self, ticket_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a `PUT /api/v2/tickets/{id}` body: comments, tags, status, assignee, subject, external_id."""
        if ticket_id not in self.tickets:
            raise _not_found()
        ticket = self.tickets[ticket_id]
        src = body.get("ticket")
        if not isinstance(src, dict):
            raise _record_invalid({"ticket": "Ticket: is required"})
        errors: dict[str, str] = {}
        comments = self._parse_comments(src, errors)
        if comments and len(ticket["comments"]) + len(comments) > MAX_COMMENTS:
            errors["comment"] = f"Comment: a ticket can hold at most {MAX_COMMENTS} comments"
        assignee_id = src.get("assignee_id")
        if assignee_id is not None and not self.is_agent(assignee_id):
            errors["assignee_id"] = f"Assignee: {assignee_id!r} is not an agent"
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
        for key in ("subject", "external_id"):
            if key in src:
                ticket[key] = src[key]
        ticket["tags"] = tags
        ticket["updated_at"] = now
        self._append_comments(ticket, comments, now)
        return copy.deepcopy(ticket)

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
        if voice is not None:
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
    response.headers["ratelimit-reset"] = str(sandbox.rate_limit_reset())


async def _serve(request: web.Request, handler: Handler, sandbox: Sandbox) -> web.StreamResponse:
    response: web.StreamResponse
    if not sandbox.authenticate(request.headers.get(hdrs.AUTHORIZATION)):
        response = _json({"error": "Couldn't authenticate you"}, 401)
    elif (retry_after := sandbox.consume_rate_limit()) is not None:
        response = _too_many_requests(retry_after)
    else:
        try:
            response = await handler(request)
        except SandboxError as exc:
            response = _json(exc.payload, exc.status)
    _set_rate_headers(response, sandbox)
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
    if fault.kind == "429":
        response = _too_many_requests(math.ceil(fault.retry_after))
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


async def _create_voice_ticket(request: web.Request) -> web.Response:
    body = await _json_body(request)
    return _json({"ticket": request.app[SANDBOX].create_voice_ticket(body)}, 201)


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
    tickets = request.app[SANDBOX].list_tickets(request.query.get("external_id"))
    return _json({"tickets": tickets, "count": len(tickets)})


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
    return _json({"ticket": sandbox.update_ticket(ticket_id, body)})


async def _display_user(request: web.Request) -> web.Response:
    agent_id, user_id = int(request.match_info["agent_id"]), int(request.match_info["target_id"])
    request.app[SANDBOX].display(agent_id, "user", user_id)
    return _json({})


async def _display_ticket(request: web.Request) -> web.Response:
    agent_id, ticket_id = int(request.match_info["agent_id"]), int(request.match_info["target_id"])
    request.app[SANDBOX].display(agent_id, "ticket", ticket_id)
    return _json({})


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
    ("POST", "/api/v2/users", _create_user),
    ("GET", "/api/v2/search", _search),
    ("POST", "/api/v2/channels/voice/tickets", _create_voice_ticket),
    ("POST", "/api/v2/uploads", _upload),
    ("DELETE", "/api/v2/uploads/{token:[A-Za-z0-9]+}", _delete_upload),
    ("GET", "/api/v2/tickets", _list_tickets),
    ("GET", r"/api/v2/tickets/{id:\d+}", _show_ticket),
    ("GET", r"/api/v2/tickets/{id:\d+}/comments", _ticket_comments),
    ("PUT", r"/api/v2/tickets/{id:\d+}", _update_ticket),
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
