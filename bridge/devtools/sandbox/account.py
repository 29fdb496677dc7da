"""Sandbox: one emulated Zendesk account, its resources' stores wired to one shared state, and its Python API."""

from __future__ import annotations

import copy
import time
from datetime import date
from typing import Any

from aiohttp import web

from bridge.devtools.sandbox.access import Access
from bridge.devtools.sandbox.availability import Availability
from bridge.devtools.sandbox.calls import Calls
from bridge.devtools.sandbox.comments import Comments
from bridge.devtools.sandbox.config import SandboxConfig
from bridge.devtools.sandbox.faults import FaultRule, Faults
from bridge.devtools.sandbox.groups import Groups
from bridge.devtools.sandbox.schedules import Schedules
from bridge.devtools.sandbox.search import Search
from bridge.devtools.sandbox.state import State, now_iso
from bridge.devtools.sandbox.tickets import Tickets
from bridge.devtools.sandbox.uploads import Uploads
from bridge.devtools.sandbox.users import Users


class Sandbox:
    """Hold the emulated account: a store per resource over one state, faults and limits; no I/O."""

    # The HTTP layer calls the stores (`users_api`, `tickets_api`, ...). The methods below are the Python API
    # the demo and the tests use to set a scene and look at the result, so they outlive any reshuffle inside.

    def __init__(self, config: SandboxConfig | None = None) -> None:
        """Create the account with its seed data."""
        self.config = config or SandboxConfig()
        self.state = State(self.config)
        self.access = Access(self.state)
        self.faults = Faults()
        self.users_api = Users(self.state)
        self.uploads_api = Uploads(self.state)
        self._comments = Comments(self.state, self.uploads_api)
        self.tickets_api = Tickets(self.state, self.users_api, self._comments)
        self.search_api = Search(self.state, self._comments)
        self.calls_api = Calls(self.state, self.users_api, self.tickets_api, self._comments)
        self.availability_api = Availability(self.state, self.users_api)
        self.groups_api = Groups(self.state)
        self.schedules_api = Schedules(self.state)

    # -- the account's records, as the tests read them -------------------------------------------

    @property
    def users(self) -> dict[int, dict[str, Any]]:
        """Return the users by id (the records themselves)."""
        return self.state.users

    @property
    def tickets(self) -> dict[int, dict[str, Any]]:
        """Return the tickets by id, comments as stored (the records themselves)."""
        return self.state.tickets

    @property
    def calls(self) -> dict[int, dict[str, Any]]:
        """Return the TPE call records by id (the records themselves)."""
        return self.state.calls

    @property
    def displays(self) -> list[dict[str, Any]]:
        """Return the screen-pops, in order."""
        return self.state.displays

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Return the log of `/api` requests, in order of arrival."""
        return self.state.requests

    # -- lifecycle -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Return to the seed data and drop every fault, request record and rate-limit hit."""
        self.state.reset()
        self.access.reset()
        self.faults.clear()

    def snapshot(self) -> dict[str, Any]:
        """Return a deep copy of the state: users and tickets in id order, calls by id, displays and requests."""
        state = self.state
        snapshot: dict[str, Any] = copy.deepcopy(
            {
                "users": [state.users[uid] for uid in sorted(state.users)],
                "tickets": [state.tickets[tid] for tid in sorted(state.tickets)],
                "calls": {cid: state.calls[cid] for cid in sorted(state.calls)},
                "displays": state.displays,
                "requests": state.requests,
                "availability": {aid: state.availability[aid] for aid in sorted(state.availability)},
            }
        )
        for ticket in snapshot["tickets"]:
            self._comments.render_all(ticket)
        return snapshot

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
        self.state.requests.append(entry)
        return entry

    # -- faults --------------------------------------------------------------------------------

    def add_faults(self, rules: list[FaultRule]) -> None:
        """Queue fault rules; each hits its next `times` matching requests, then is used up."""
        self.faults.add(rules)

    def set_random_faults(self, rate: float, kinds: list[str], seed: int) -> None:
        """Fault each `/api/v2` request with probability `rate`, kind drawn uniformly from `kinds`."""
        self.faults.set_random(rate, kinds, seed)

    def clear_faults(self) -> None:
        """Drop every fault rule and stop random faults."""
        self.faults.clear()

    def fault_state(self) -> dict[str, Any]:
        """Describe the pending fault rules and the random-fault setting."""
        return self.faults.state()

    async def wait_for_hangs(self, count: int) -> None:
        """Wait until exactly `count` requests are hanging."""
        await self.faults.wait_for_hangs(count)

    def release_hangs(self) -> None:
        """End every current and future `hang` fault early, so a graceful shutdown does not wait."""
        self.faults.release_hangs()

    # -- users and tickets, as a scene needs them ------------------------------------------------

    def create_user(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a user from a `{"user": {...}}` body, as `POST /api/v2/users` does."""
        return self.users_api.create(body)

    def get_ticket(self, ticket_id: int) -> dict[str, Any]:
        """Return a copy of a ticket as the API shows it, or raise 404."""
        return self.tickets_api.get(ticket_id)

    def list_tickets(self, external_id: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the tickets, filtered by external_id when given, in id order."""
        return self.tickets_api.list_tickets(external_id)

    def create_voice_ticket(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a ticket as `POST /api/v2/channels/voice/tickets` does."""
        return self.tickets_api.create_voice_ticket(body)

    def update_ticket(self, ticket_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Update a ticket as `PUT /api/v2/tickets/{id}` does."""
        return self.tickets_api.update(ticket_id, body)

    def close_ticket(self, ticket_id: int) -> None:
        """Close a ticket (as an agent solving it, then Zendesk's automation closing it, would)."""
        self.tickets_api.close(ticket_id)

    def delete_ticket(self, ticket_id: int) -> None:
        """Delete a ticket; afterwards it answers 404 like any unknown one."""
        self.tickets_api.delete(ticket_id)

    def set_role(self, user_id: int, role: str, custom_role_id: int | None = None) -> None:
        """Give a user a role (end-user, agent, admin) and, for an agent, a custom role id."""
        self.users_api.set_role(user_id, role, custom_role_id)

    def set_agent_status(self, agent_id: int, status: str, *, channel: str | None = None) -> None:
        """Set an agent's unified status (online, away, offline, transfers_only), or one channel's status."""
        if channel is None:
            self.availability_api.set_unified(agent_id, status)
        else:
            self.availability_api.set_channel(agent_id, channel, status)

    def put_schedule(self, schedule_id: int, name: str, time_zone: str, intervals: list[tuple[int, int]]) -> None:
        """Create or replace a schedule: a Zendesk time zone name and intervals in minutes since Sunday midnight."""
        self.schedules_api.put(schedule_id, name, time_zone, intervals)

    def add_holiday(self, schedule_id: int, name: str, start: date, end: date) -> None:
        """Add a holiday (its first and last days) to a schedule."""
        self.schedules_api.add_holiday(schedule_id, name, start, end)

    def merge(self, target_id: int, source_ids: list[int]) -> None:
        """Merge tickets into a target as Zendesk does: each source is closed, tagged and commented."""
        self.tickets_api.merge(target_id, source_ids)

    def set_customer(self, user_id: int, *, organization_id: int | None = None, tags: tuple[str, ...] = ()) -> None:
        """Put a user in an organization and give them user tags (as an admin would in Zendesk)."""
        user = self.state.users[user_id]
        user["organization_id"], user["tags"] = organization_id, list(tags)

    def open_ticket(
        self, requester_id: int, assignee_id: int | None, *, status: str = "open", updated_at: str | None = None
    ) -> int:
        """Add a ticket the customer opened outside the phone (a web form: via 0), as a scene needs; return its id."""
        fields = {
            "via_id": 0, "via": {"channel": "web"}, "subject": f"Open question of user {requester_id}",
            "status": status, "requester_id": requester_id, "assignee_id": assignee_id, "group_id": None,
            "brand_id": None, "via_followup_source_id": None, "external_id": None, "tags": [],
        }  # fmt: skip
        ticket = self.tickets_api.insert(fields, updated_at or now_iso())
        if updated_at is not None:
            ticket["updated_at"] = updated_at
        return int(ticket["id"])


SANDBOX: web.AppKey[Sandbox] = web.AppKey("sandbox", Sandbox)
