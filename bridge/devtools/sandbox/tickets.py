"""Tickets: the TPE voice ticket create, updates, show and lists, merges, follow-ups, and screen-pops."""

from __future__ import annotations

import time
from typing import Any

from bridge.devtools.sandbox.comments import Comments
from bridge.devtools.sandbox.errors import check_optional_str, is_int, not_found, record_invalid
from bridge.devtools.sandbox.seed import INTEGRATION_USER_ID
from bridge.devtools.sandbox.state import State, now_iso
from bridge.devtools.sandbox.users import Users

VOICE_VIA_IDS = frozenset({44, 45, 46})  # voicemail, inbound call, outbound call
TICKET_STATUSES = frozenset({"new", "open", "pending", "hold", "solved", "closed"})
MAX_COMMENTS = 5000  # Zendesk rejects comment number 5001 on a ticket with 422
TICKET_KEYS = frozenset(
    {
        "via_id", "subject", "external_id", "requester_id", "assignee_id", "comment", "voice_comment", "tags",
        "additional_tags", "remove_tags", "status", "group_id", "brand_id", "via_followup_source_id",
        "priority", "type",
    }
)  # fmt: skip
CLOSED_TEXT = "Status: closed prevents ticket update"


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


def _check_group_and_brand(src: dict[str, Any], errors: dict[str, str], state: State) -> None:
    group_id, brand_id = src.get("group_id"), src.get("brand_id")
    if group_id is not None and group_id not in state.groups:
        errors["group_id"] = f"Group: {group_id!r} does not exist"
    if brand_id is not None and brand_id not in state.brands:
        errors["brand_id"] = f"Brand: {brand_id!r} does not exist"


def check_commentable(ticket: dict[str, Any], errors: dict[str, str]) -> None:
    """Note why a ticket cannot take one more comment: closed, or full."""
    if ticket["status"] == "closed":
        errors["status"] = CLOSED_TEXT  # a closed ticket refuses every update, a voice comment too
    elif len(ticket["comments"]) >= MAX_COMMENTS:
        errors["comment"] = f"Comment: a ticket can hold at most {MAX_COMMENTS} comments"


class Tickets:
    """Apply the Tickets API and the TPE ticket and display endpoints to the account's tickets."""

    def __init__(self, state: State, users: Users, comments: Comments) -> None:
        self._state = state
        self._users = users
        self._comments = comments

    def get(self, ticket_id: int) -> dict[str, Any]:
        """Return a copy of a ticket or raise 404."""
        if ticket_id not in self._state.tickets:
            raise not_found()
        return self._comments.public_ticket(self._state.tickets[ticket_id])

    def user_tickets(self, user_id: int, relation: str = "requested") -> list[dict[str, Any]]:
        """Return the tickets a user requested (or is assigned), newest first, as agents may list; 404 if no user."""
        self._users.get(user_id)
        tickets = self._state.tickets
        field = "requester_id" if relation == "requested" else "assignee_id"
        mine = [tickets[tid] for tid in sorted(tickets, reverse=True)]
        return [self._comments.public_ticket(t) for t in mine if t[field] == user_id]

    def list_tickets(self, external_id: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the tickets, filtered by external_id when given, in id order."""
        tickets = self._state.tickets
        return [
            self._comments.public_ticket(tickets[tid])
            for tid in sorted(tickets)
            if external_id is None or tickets[tid]["external_id"] == external_id
        ]

    def merge(self, target_id: int, source_ids: list[int]) -> None:
        """Merge tickets into a target as Zendesk does: each source is closed, tagged and commented."""
        tickets = self._state.tickets
        if target_id not in tickets or any(sid not in tickets for sid in source_ids):
            raise not_found()
        now = now_iso()
        for sid in source_ids:
            source = tickets[sid]
            source["status"] = "closed"
            source["tags"] = [*source["tags"], "closed_by_merge"]
            source["updated_at"] = now
            body = f'This request was closed and merged into request #{target_id} "{tickets[target_id]["subject"]}".'
            self._comments.append(source, [{"type": "Comment", "body": body, "public": False}], now)
        target = tickets[target_id]
        note = f"Requests {', '.join(f'#{sid}' for sid in source_ids)} were closed and merged into this request."
        self._comments.append(target, [{"type": "Comment", "body": note, "public": False}], now)

    def delete(self, ticket_id: int) -> None:
        """Delete a ticket; afterwards it answers 404 like any unknown one."""
        if self._state.tickets.pop(ticket_id, None) is None:
            raise not_found()

    def close(self, ticket_id: int) -> None:
        """Close a ticket (as an agent solving it, then Zendesk's automation closing it, would)."""
        self._state.tickets[ticket_id]["status"] = "closed"

    def insert(self, fields: dict[str, Any], now: str) -> dict[str, Any]:
        """Store a new ticket with these fields (in Zendesk's order of keys) and no comments yet; return it."""
        ticket: dict[str, Any] = {
            "id": next(self._state.ticket_ids),
            **fields,
            "created_at": now,
            "updated_at": now,
            "comments": [],
        }
        self._state.tickets[ticket["id"]] = ticket
        self._state.ticket_created[ticket["id"]] = time.time()
        return ticket

    def create_voice_ticket(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a ticket as `POST /api/v2/channels/voice/tickets` does, validating everything first."""
        src = body.get("ticket")
        if not isinstance(src, dict):
            raise record_invalid({"ticket": "Ticket: is required"})
        tickets, users = self._state.tickets, self._state.users
        errors: dict[str, str] = {}
        display_to = body.get("display_to_agent")
        # Zendesk checks display_to_agent before creating the ticket and creates nothing when it fails.
        if display_to is not None and not self._users.can_pop(display_to):
            errors["display_to_agent"] = f"display_to_agent: {display_to!r} is not a valid agent id"
        via_id = src.get("via_id")
        if not is_int(via_id) or via_id not in VOICE_VIA_IDS:
            errors["via_id"] = "Via: must be 44 (voicemail), 45 (inbound call) or 46 (outbound call)"
        requester_id = src.get("requester_id")
        if requester_id is not None and not (is_int(requester_id) and requester_id in users):
            errors["requester_id"] = f"Requester: {requester_id!r} does not exist"
        elif requester_id is not None and users[requester_id]["suspended"]:
            errors["requester_id"] = "Requester: is suspended"
        assignee_id = src.get("assignee_id")
        self._check_assignee(assignee_id, errors)
        _check_group_and_brand(src, errors, self._state)
        followup = src.get("via_followup_source_id")
        if followup is not None and not (
            is_int(followup) and followup in tickets and tickets[followup]["status"] == "closed"
        ):
            errors["via_followup_source_id"] = f"Follow-up source: {followup!r} is not a closed ticket"
        status = src.get("status")
        if status is not None and status not in TICKET_STATUSES:
            errors["status"] = f"Status: {status!r} is not a valid status"
        check_optional_str(src, "subject", errors)
        check_optional_str(src, "external_id", errors)
        comments = self._comments.parse(src, errors)
        if not comments and "comment" not in errors and "voice_comment" not in errors:
            errors["comment"] = "Comment: a comment or voice_comment is required"
        tags = _merge_tags([], src, errors)
        if errors:
            raise record_invalid(errors)

        now = now_iso()
        fields = {
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
        }
        ticket = self.insert(fields, now)
        self._comments.append(ticket, comments, now)
        if display_to is not None:
            self._state.displays.append({"agent_id": display_to, "kind": "ticket", "id": ticket["id"]})
        return self._comments.public_ticket(ticket)

    def update(self, ticket_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a `PUT /api/v2/tickets/{id}` body: comments, tags, status, assignee, subject, external_id."""
        if ticket_id not in self._state.tickets:
            raise not_found()
        ticket = self._state.tickets[ticket_id]
        src = body.get("ticket")
        if not isinstance(src, dict):
            raise record_invalid({"ticket": "Ticket: is required"})
        errors: dict[str, str] = {}
        if ticket["status"] == "closed":
            # Zendesk refuses every update to a closed ticket, whatever the body holds.
            raise record_invalid({"status": CLOSED_TEXT})
        comments = self._comments.parse(src, errors)
        if comments and len(ticket["comments"]) + len(comments) > MAX_COMMENTS:
            errors["comment"] = f"Comment: a ticket can hold at most {MAX_COMMENTS} comments"
        assignee_id = src.get("assignee_id")
        self._check_assignee(assignee_id, errors)
        _check_group_and_brand(src, errors, self._state)
        status = src.get("status")
        if status is not None and status not in TICKET_STATUSES:
            errors["status"] = f"Status: {status!r} is not a valid status"
        check_optional_str(src, "subject", errors)
        check_optional_str(src, "external_id", errors)
        tags = _merge_tags(ticket["tags"], src, errors)
        if errors:
            raise record_invalid(errors)

        now = now_iso()
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
        self._comments.append(ticket, comments, now)
        return self._comments.public_ticket(ticket)

    def _check_assignee(self, assignee_id: Any, errors: dict[str, str]) -> None:
        if assignee_id is not None and not self._users.is_agent(assignee_id):
            errors["assignee_id"] = f"Assignee: {assignee_id!r} is not an agent"
        elif assignee_id is not None and self._state.users[assignee_id]["suspended"]:
            errors["assignee_id"] = "Assignee: is suspended"

    def strip_unknown(self, body: dict[str, Any]) -> list[str]:
        """Remove the ticket keys Zendesk would drop (unknown, or not taken by this account); return them."""
        src = body.get("ticket")
        if not isinstance(src, dict):
            return []
        dropped_keys = self._state.config.dropped_ticket_keys
        dropped = [key for key in src if key not in TICKET_KEYS or key in dropped_keys]
        for key in dropped:
            del src[key]
        return dropped

    def display(self, agent_id: int, kind: str, target_id: int) -> None:
        """Record a screen pop of a user or ticket to an agent, or raise 404 for a bad agent or target."""
        targets = self._state.users if kind == "user" else self._state.tickets
        if not self._users.can_pop(agent_id) or target_id not in targets:
            raise not_found()
        self._state.displays.append({"agent_id": agent_id, "kind": kind, "id": target_id})
