"""A fake Zendesk client for the outbox's pieces: tickets, comments and call records in memory, refused as Zendesk does.

It stands where bridge.zendesk.client.ZendeskClient stands (bridge.zendesk.outbox.context.ZendeskApi), so
the "did it land?" and relocation logic is tested directly, without HTTP. The sandbox (a real server)
remains the reference for Zendesk's behaviour; this fake copies the few refusals these pieces tell apart:
404 for a deleted ticket, 422 "closed prevents ticket update" for a closed one.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Literal

from bridge.zendesk.client import Invalid, NotFound

API_USER = 1  # the bridge's own Zendesk user
CLOSED_TEXT = "Status: closed prevents ticket update"


def closed_refusal() -> Invalid:
    """Return Zendesk's 422 for an update to a closed ticket (as the client raises it)."""
    details = {"status": [{"description": CLOSED_TEXT}]}
    body = json.dumps({"error": "RecordInvalid", "description": "Record validation errors", "details": details})
    return Invalid("HTTP 422 RecordInvalid", status=422, body=body)


class FakeZendesk:
    """Tickets with their comments, and call records shown on them; every request is logged in `requests`."""

    def __init__(self) -> None:
        """Start with no tickets."""
        self.tickets: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.calls: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, object]] = []
        self.groups: dict[int, str] = {}  # id -> name
        self._ids = itertools.count(101)

    def add_ticket(self, *, status: str = "open", comments: tuple[dict[str, Any], ...] = (), **fields: Any) -> int:
        """Put a ticket in place (an agent's doing, not a request); return its id."""
        ticket_id = next(self._ids)
        self.tickets[ticket_id] = {"id": ticket_id, "status": status, "subject": "Call", "requester_id": None,
                                   "assignee_id": None, "external_id": None, "tags": [], **fields}  # fmt: skip
        self.comments[ticket_id] = list(comments)
        return ticket_id

    def merge(self, source: int, target: int) -> None:
        """Merge one ticket into another as an agent does: the source is closed, tagged, and says where it went."""
        self.tickets[source].update(status="closed", tags=[*self.tickets[source]["tags"], "closed_by_merge"])
        body = f"This request was closed and merged into request #{target}."
        self.comments[source].append({"type": "Comment", "body": body, "public": False})

    def _writable(self, ticket_id: int) -> None:
        """Refuse a write as Zendesk does: 404 for a deleted ticket, 422 for a closed one."""
        if ticket_id not in self.tickets:
            raise NotFound(f"HTTP 404 ticket {ticket_id}", status=404)
        if self.tickets[ticket_id]["status"] == "closed":
            raise closed_refusal()

    def _add(self, ticket_id: int, payload: dict[str, Any]) -> None:
        """Append the comment a ticket payload carries."""
        if "comment" in payload:
            self.comments[ticket_id].append({"type": "Comment", "public": True, **payload["comment"]})
        if "voice_comment" in payload:
            self.comments[ticket_id].append({"type": "VoiceComment", "data": dict(payload["voice_comment"])})

    async def my_id(self) -> int:
        """Return the API user's id."""
        self.requests.append(("my_id", None))
        return API_USER

    async def ticket(self, ticket_id: int) -> dict[str, Any]:
        """Return a ticket, or 404."""
        self.requests.append(("ticket", ticket_id))
        if ticket_id not in self.tickets:
            raise NotFound(f"HTTP 404 ticket {ticket_id}", status=404)
        return dict(self.tickets[ticket_id])

    async def ticket_comments(self, ticket_id: int) -> list[dict[str, Any]]:
        """Return a ticket's comments, or 404."""
        self.requests.append(("ticket_comments", ticket_id))
        if ticket_id not in self.tickets:
            raise NotFound(f"HTTP 404 ticket {ticket_id}", status=404)
        return [dict(comment) for comment in self.comments[ticket_id]]

    async def update_ticket(self, ticket_id: int, ticket: dict[str, Any]) -> dict[str, Any]:
        """Add the payload's comment, unless the ticket is deleted or closed."""
        self.requests.append(("update_ticket", ticket_id))
        self._writable(ticket_id)
        self._add(ticket_id, ticket)
        return dict(self.tickets[ticket_id])

    async def create_voice_ticket(self, ticket: dict[str, Any], display_to_agent: int | None) -> dict[str, Any]:
        """Create a ticket with the payload's fields and comments."""
        self.requests.append(("create_voice_ticket", ticket.get("external_id")))
        fields = {name: value for name, value in ticket.items() if name not in ("comment", "voice_comment")}
        ticket_id = self.add_ticket(**fields)
        self._add(ticket_id, ticket)
        return dict(self.tickets[ticket_id])

    async def user_tickets(self, user_id: int, relation: Literal["requested", "assigned"]) -> list[dict[str, Any]]:
        """Return the tickets a user requested (the API user's own when none was given) or is assigned."""
        self.requests.append((f"user_tickets:{relation}", user_id))
        if relation == "assigned":
            return [dict(t) for t in self.tickets.values() if t["assignee_id"] == user_id]
        return [dict(t) for t in self.tickets.values() if (t["requester_id"] or API_USER) == user_id]

    async def search_tickets_by_external_id(self, external_id: str) -> list[dict[str, Any]]:
        """Search tickets by external id (indexed at once here)."""
        self.requests.append(("search_tickets", external_id))
        return [dict(t) for t in self.tickets.values() if t["external_id"] == external_id]

    async def create_call(self, call: dict[str, Any], comment: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create a call record, shown on its ticket as a TPE voice comment; a closed ticket refuses it."""
        self.requests.append(("create_call", call.get("ticket_id")))
        ticket_id = call.get("ticket_id")
        if ticket_id is not None:
            self._writable(ticket_id)
        call_id = next(self._ids)
        self.calls[call_id] = {"id": call_id, **call}
        if ticket_id is not None:
            data = {"call_id": call_id, "external_id": call.get("external_id")}
            self.comments[ticket_id].append({"type": "TpeVoiceComment", "data": data})
        return dict(self.calls[call_id])

    async def group(self, group_id: int) -> dict[str, Any]:
        """Return a group; 404 for one that does not exist."""
        self.requests.append(("group", group_id))
        if group_id not in self.groups:
            raise NotFound(f"HTTP 404 group {group_id}", status=404)
        return {"id": group_id, "name": self.groups[group_id]}

    def sent(self, name: str) -> list[object]:
        """Return the arguments of every request of one kind, in order."""
        return [arg for kind, arg in self.requests if kind == name]
