"""Where a call's conversation lives once an agent merged, closed or deleted its ticket.

An agent merging the call's ticket into an earlier one closes it (Zendesk help, "Merging tickets"), and
Zendesk refuses updates to closed tickets; the recording must not be lost: a comment the ticket refused
goes to the merge target, or else to a follow-up ticket linked to the closed one (Zendesk docs, Tickets,
`via_followup_source_id`). `errors.writing_to` tells such a refusal (TicketGone) from any other.
"""

from __future__ import annotations

import logging
from typing import Any

from bridge.zendesk.outbox.context import Context
from bridge.zendesk.outbox.errors import TicketGone, writing_to
from bridge.zendesk.outbox.landed import merge_target, tickets_of
from schemas.zendesk import VIA_INBOUND

log = logging.getLogger("bridge.outbox")

VOICE_VIA_DEFAULT = VIA_INBOUND  # an answered call's ticket; rows stored before the via was kept are inbound calls
MOVED_RECORD = "The call's record is shown here: the ticket it was made for was closed or deleted meanwhile."


async def move(ctx: Context, call_sid: str, via_id: int | None, gone: TicketGone, payload: dict[str, Any]) -> int:
    """Put a comment the call's closed or deleted ticket refused where the conversation lives; return that ticket."""
    closed = await _closed(ctx, gone)
    return await _put(ctx, call_sid, via_id, gone.ticket_id, closed, payload)


async def new_home(ctx: Context, call_sid: str, via_id: int | None, gone: TicketGone) -> int:
    """Return the ticket where a closed or deleted ticket's conversation continues, making a follow-up once."""
    closed = await _closed(ctx, gone)
    owners = [closed.get("requester_id")] if closed is not None else []
    for ticket in await tickets_of(ctx, call_sid, owners):
        if int(ticket["id"]) != gone.ticket_id and ticket.get("status") != "closed":
            return int(ticket["id"])  # an earlier attempt made the follow-up
    note = {"comment": {"body": MOVED_RECORD, "public": False}}
    return await _put(ctx, call_sid, via_id, gone.ticket_id, closed, note)


async def _closed(ctx: Context, gone: TicketGone) -> dict[str, Any] | None:
    """Return the closed ticket that refused the write, or None when it was deleted."""
    return await ctx.zendesk.ticket(gone.ticket_id) if gone.closed else None


async def _put(
    ctx: Context,
    call_sid: str,
    via_id: int | None,
    ticket_id: int,
    closed: dict[str, Any] | None,
    payload: dict[str, Any],
) -> int:
    """Add `payload` to the closed ticket's merge target, or else to a follow-up ticket (one for a deleted ticket)."""
    if closed is not None:
        target = merge_target(closed, await ctx.zendesk.ticket_comments(ticket_id))
        if target is not None:
            try:
                async with writing_to(target):
                    await ctx.zendesk.update_ticket(target, payload)
            except TicketGone:
                pass  # the target went too (deleted, or closed in turn): a follow-up keeps the recording
            else:
                log.info("call %s: ticket %s was merged into %s; comment added there", call_sid, ticket_id, target)
                return target
    ticket: dict[str, Any] = {"via_id": via_id or VOICE_VIA_DEFAULT, "external_id": call_sid, **payload}
    if closed is not None:
        ticket["via_followup_source_id"] = ticket_id
        ticket["subject"] = f"Follow-up: {closed.get('subject') or 'call'}"
        # The follow-up stays where the call's ticket was: its requester, brand and group (the call's line's).
        for kept in ("requester_id", "brand_id", "group_id"):
            if closed.get(kept) is not None:
                ticket[kept] = closed[kept]
    else:
        ticket["subject"] = "Call (its ticket was deleted)"
    ctx.defaults.apply(ticket)
    created = await ctx.zendesk.create_voice_ticket(ticket, None)
    why = "closed" if closed is not None else "deleted"
    log.info("call %s: ticket %s was %s; comment added to follow-up ticket %s", call_sid, ticket_id, why,
             created["id"])  # fmt: skip
    return int(created["id"])
