"""Routing that knows the customer, pure: their open tickets' agents first, priority customers ahead.

The caller's Zendesk data (`Customer`: their organization, tags and open tickets) arrives from the outbox's
look-up; routing reads it from the call. Three rules use it (docs/routing.md, "Routing that knows the customer"):

- **Their agent first.** Each open (new, open or pending) ticket whose assignee serves the line is a
  candidate, the most recently updated first (then the highest id): the first whose agent may be offered the
  call when it is offered wins, and rings that agent alone for the line's `preferred_seconds`.
- **Priority customers.** A caller whose organization or one of whose tags the line names waits ahead of
  the others; FIFO within one rank.
- **Aging.** An ordinary caller who has waited the policy's `aging` seconds ranks as a priority one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from bridge.core.routing import EARLIEST, PRIORITY, Preferred, RoutingPolicy

# The statuses of a ticket still being worked on (Zendesk docs: Tickets, "status": new, open, pending, hold,
# solved, closed). On hold waits for a third party, not the customer, so it does not send the call to its agent.
OPEN_STATUSES = frozenset({"new", "open", "pending"})


class OpenTicket(BaseModel):
    """One of the caller's tickets still being worked on, and who it is assigned to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    status: str
    assignee_id: int | None = None
    updated_at: datetime | None = None


class Customer(BaseModel):
    """What the look-up found of the caller in Zendesk: who they are, their organization, tags and open tickets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: int
    organization_id: int | None = None
    tags: tuple[str, ...] = ()
    tickets: tuple[OpenTicket, ...] = Field(default=())


def is_priority(customer: Customer | None, policy: RoutingPolicy) -> bool:
    """Tell whether the line names the caller's organization or one of their tags as a priority."""
    if customer is None:
        return False
    if customer.organization_id is not None and customer.organization_id in policy.priority_organizations:
        return True
    return any(tag in policy.priority_tags for tag in customer.tags)


def priority(customer: Customer | None, policy: RoutingPolicy) -> int:
    """Return the caller's rank in the line's queue: PRIORITY for a priority customer, else 0."""
    return PRIORITY if is_priority(customer, policy) else 0


def candidates(
    customer: Customer | None, agents: Mapping[str, int], serves: frozenset[str] | None
) -> tuple[Preferred, ...]:
    """Return the caller's open tickets whose assignee takes the line's calls, in the order they win.

    `agents` maps identities to Zendesk user ids (AGENTS); `serves` names the line's agents (None: all). The
    most recently updated ticket wins, then the highest id (the newest): it is the conversation going on now.
    """
    if customer is None:
        return ()
    by_user = {user_id: identity for identity, user_id in agents.items() if serves is None or identity in serves}
    open_ones = [
        (ticket, by_user.get(ticket.assignee_id or 0)) for ticket in customer.tickets if ticket.status in OPEN_STATUSES
    ]
    open_ones.sort(key=lambda pair: (pair[0].updated_at or EARLIEST, pair[0].id), reverse=True)
    return tuple(Preferred(ticket.id, identity) for ticket, identity in open_ones if identity is not None)
