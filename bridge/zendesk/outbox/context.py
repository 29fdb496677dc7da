"""What every piece of a delivery works with: the Zendesk client, the store, the clock and the settings it needs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from bridge.core.clock import Clock, system_clock
from bridge.ops.recordings import RecordingFiler
from bridge.store import Store
from bridge.twilio.media import TwilioMedia

T = TypeVar("T")


class ZendeskApi(Protocol):
    """The requests deliveries make (bridge.zendesk.client.ZendeskClient; a fake in the focused tests)."""

    async def my_id(self) -> int:
        """Return the API user's id."""
        ...

    async def users_by_external_id(self, external_id: str) -> list[dict[str, Any]]:
        """Return the users with this external id."""
        ...

    async def search_users_by_phone(self, digits: str) -> list[dict[str, Any]]:
        """Search users whose number ends in these digits."""
        ...

    async def user_phones(self, user_id: int) -> list[str]:
        """Return a user's phone identities."""
        ...

    async def user(self, user_id: int) -> dict[str, Any]:
        """Return one user (organization_id and tags with it)."""
        ...

    async def create_user(self, name: str, phone: str, external_id: str) -> dict[str, Any]:
        """Create an end-user."""
        ...

    async def user_tickets(self, user_id: int, relation: Literal["requested", "assigned"]) -> list[dict[str, Any]]:
        """Return the tickets a user requested or is assigned."""
        ...

    async def search_tickets_by_external_id(self, external_id: str) -> list[dict[str, Any]]:
        """Search tickets by external id (the index lags writes)."""
        ...

    async def ticket(self, ticket_id: int) -> dict[str, Any]:
        """Return a ticket."""
        ...

    async def ticket_comments(self, ticket_id: int) -> list[dict[str, Any]]:
        """Return a ticket's comments, oldest first."""
        ...

    async def create_voice_ticket(self, ticket: dict[str, Any], display_to_agent: int | None) -> dict[str, Any]:
        """Create a TPE voice ticket."""
        ...

    async def update_ticket(self, ticket_id: int, ticket: dict[str, Any]) -> dict[str, Any]:
        """Update a ticket (add a comment)."""
        ...

    async def group(self, group_id: int) -> dict[str, Any]:
        """Return one group."""
        ...

    async def create_call(self, call: dict[str, Any], comment: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create a call record."""
        ...

    async def update_call(self, call_id: int, call: dict[str, Any]) -> dict[str, Any]:
        """Change a call record."""
        ...

    async def display_user(self, agent_id: int, user_id: int) -> None:
        """Pop a user's profile to an agent."""
        ...

    async def display_ticket(self, agent_id: int, ticket_id: int) -> None:
        """Pop a ticket to an agent."""
        ...

    async def upload(self, filename: str, data: Any, *, content_type: str, length: int | None) -> dict[str, Any]:
        """Upload a file for a later comment to attach."""
        ...


@dataclass(frozen=True)
class TicketDefaults:
    """Where new voice tickets go: ZENDESK_GROUP_ID (tickets nobody is assigned) and ZENDESK_BRAND_ID.

    A call's line may name its own group and brand (the action carries them); these are the rest's.
    """

    group_id: int | None = None
    brand_id: int | None = None

    def under(self, group_id: int | None, brand_id: int | None) -> TicketDefaults:
        """Return the defaults for one call's line: its own group and brand, where it has them."""
        if group_id is None and brand_id is None:
            return self
        return TicketDefaults(group_id or self.group_id, brand_id or self.brand_id)

    def apply(self, ticket: dict[str, Any]) -> None:
        """Put the brand on the ticket, and the group when no agent is assigned."""
        if self.brand_id is not None:
            ticket.setdefault("brand_id", self.brand_id)
        # With an assignee, Zendesk picks the agent's group itself; without one, and without a group, a
        # voicemail or missed-call ticket sits where no team looks (Zendesk help, "Assigning tickets").
        if self.group_id is not None and ticket.get("assignee_id") is None:
            ticket.setdefault("group_id", self.group_id)


@dataclass(frozen=True)
class RecordingLinks:
    """How voice comments link their recording (RECORDINGS); a Deliverer without one keeps Twilio's URL."""

    filer: RecordingFiler
    media: TwilioMedia | None = None  # RECORDINGS=zendesk: upload the file, fetched from here, to Zendesk


@dataclass
class Context:
    """What a delivery needs besides its action: shared by every delivery of one worker."""

    zendesk: ZendeskApi
    store: Store
    clock: Clock = system_clock
    defaults: TicketDefaults = field(default_factory=TicketDefaults)
    recordings: RecordingLinks | None = None
    app_id: int | None = None  # ZENDESK_APP_ID, the app every call record belongs to (ZENDESK_API=calls)
    caller_locks: dict[str, asyncio.Lock] = field(default_factory=dict)  # one refresh of a caller at a time
    group_names: dict[int, str] = field(default_factory=dict)  # read once each, for ivr_destination_group_name


@dataclass(frozen=True)
class Attempt:
    """One try at an action of a call, and whether an earlier try may have landed with its answer lost."""

    call_sid: str
    # An attempt is counted when it is claimed, so any earlier one may have reached Zendesk before a
    # timeout, a dropped connection or a crash, or committed late.
    retried: bool

    async def earlier(self, look: Callable[[], Awaitable[T]]) -> T | None:
        """Return what `look` finds of an earlier try in Zendesk; None, without looking, on a first try."""
        return await look() if self.retried else None
