"""Screen-pops: the caller's profile or the call's ticket shown to a ringing agent, best effort."""

from __future__ import annotations

from collections.abc import Awaitable

from bridge.zendesk.client import NotFound
from bridge.zendesk.outbox.callers import refresh_caller
from bridge.zendesk.outbox.context import Context
from bridge.zendesk.outbox.results import Done, Dropped, Needs, Outcome, Popped, Ticket


async def display_user(ctx: Context, agent_id: int, phone: str, needs: Needs, call_sid: str) -> Outcome:
    """Pop the caller's profile; if Zendesk no longer knows the cached user, look the caller up again."""
    caller = needs.caller(phone)
    if caller is None:
        return Dropped("no Zendesk user for the caller")
    user_id = caller.user_id
    try:
        await ctx.zendesk.display_user(agent_id, user_id)
    except NotFound:
        fresh = await refresh_caller(ctx, phone, user_id, call_sid)
        if fresh == user_id:
            return Dropped(f"screen-pop to agent {agent_id} not delivered: 404")
        return await pop(ctx.zendesk.display_user(agent_id, fresh))
    return Done(Popped())


async def display_ticket(ctx: Context, agent_id: int, ticket: Ticket) -> Outcome:
    """Pop the call's ticket."""
    return await pop(ctx.zendesk.display_ticket(agent_id, ticket.ticket_id))


async def pop(request: Awaitable[None]) -> Outcome:
    """Send a screen-pop; a 404 (agent offline, wrong id) is dropped, not retried."""
    try:
        await request
    except NotFound as exc:
        return Dropped(f"screen-pop not delivered: {exc}")
    return Done(Popped())
