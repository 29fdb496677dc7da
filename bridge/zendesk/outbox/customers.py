"""What routing reads of the caller: their organization, tags and open tickets, fed back into the call.

Only endpoints an agent's token may call (Zendesk docs: Users, "Show User", allowed for agents; Tickets, "List
Tickets" at `/api/v2/users/{user_id}/tickets/requested`, allowed for agents). The requested-tickets list is read
rather than Search (`type:ticket requester:… status<solved`, also allowed for agents): Zendesk's search index lags
writes by seconds to minutes (Zendesk docs: Search, "it can take up to a few minutes for new tickets to be
indexed"), so a ticket opened during a call would be missed by the next one. The two requests go out together:
the answer costs one round trip.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from bridge.core.actions import LookUpCustomer, caller_key
from bridge.core.events import CallEvent, EventKind
from bridge.core.preference import OPEN_STATUSES, Customer, OpenTicket
from bridge.dispatch.customers import LAST_KNOWN
from bridge.ingest import Ingest
from bridge.zendesk.client import NotFound
from bridge.zendesk.outbox.callers import refresh_caller
from bridge.zendesk.outbox.context import Context
from bridge.zendesk.outbox.results import Dropped, Needs, Outcome, Settled

log = logging.getLogger("bridge.outbox")


async def look_up_customer(ctx: Context, ingest: Ingest, action_id: int, look: LookUpCustomer, needs: Needs) -> Outcome:
    """Read the caller's user and open tickets, and tell the call (settling this action in that transaction)."""
    caller = needs.caller(look.phone)
    if caller is None:
        return Dropped("no Zendesk user for the caller")
    try:
        customer = await read_customer(ctx, caller.user_id)
    except NotFound:
        # The cached user was merged or deleted since: find the caller again, once.
        fresh = await refresh_caller(ctx, look.phone, caller.user_id, look.call_sid)
        customer = await read_customer(ctx, fresh)
    event = CallEvent(kind=EventKind.CUSTOMER_FOUND, call_sid=look.call_sid, at=ctx.clock(), customer=customer)
    await ingest([f"customer:{look.key}"], event, finish_action=action_id)
    await keep(ctx, look.phone, customer)
    log.info("call %s: caller is user %s with %d open ticket(s)", look.call_sid, customer.user_id,
             len(customer.tickets))  # fmt: skip
    return Settled()


async def keep(ctx: Context, phone: str, customer: Customer) -> None:
    """Keep what was found beside the caller's user: the number's next call routes on it if its look-up is late."""
    key = caller_key(phone)
    async with ctx.caller_locks.setdefault(key, asyncio.Lock()):  # one writer of the caller's row at a time
        row = (await ctx.store.results([key])).get(key)
        if row is None or not row.result:
            return
        await ctx.store.update_result(
            key, {**row.result, LAST_KNOWN: customer.model_dump(mode="json")}, now=ctx.clock()
        )


async def read_customer(ctx: Context, user_id: int) -> Customer:
    """Return what Zendesk says of a user: organization, tags, and the tickets they requested still open."""
    user, tickets = await asyncio.gather(ctx.zendesk.user(user_id), ctx.zendesk.user_tickets(user_id, "requested"))
    return Customer(
        user_id=user_id,
        organization_id=_id(user.get("organization_id")),
        tags=tuple(str(tag) for tag in user.get("tags") or ()),
        tickets=tuple(_open(ticket) for ticket in tickets if ticket.get("status") in OPEN_STATUSES),
    )


def _open(ticket: dict[str, Any]) -> OpenTicket:
    """Return one open ticket as routing reads it."""
    updated = ticket.get("updated_at")
    return OpenTicket(
        id=int(ticket["id"]),
        status=str(ticket["status"]),
        assignee_id=_id(ticket.get("assignee_id")),
        updated_at=datetime.fromisoformat(updated) if isinstance(updated, str) else None,
    )


def _id(value: Any) -> int | None:
    """Return a Zendesk id, None when absent."""
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None
