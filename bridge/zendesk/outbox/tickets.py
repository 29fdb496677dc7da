"""The call's voice ticket: created once, repaired when Zendesk refuses a field, or an existing one reused."""

from __future__ import annotations

import logging
from typing import Any

from bridge.core.actions import Action, CreateTicket, DisplayTicket
from bridge.core.phones import mask_text
from bridge.zendesk.client import Invalid, NotFound
from bridge.zendesk.outbox.callers import refresh_caller
from bridge.zendesk.outbox.context import Attempt, Context
from bridge.zendesk.outbox.errors import StillRefused, TicketGone, writing_to
from bridge.zendesk.outbox.landed import has_comment, same_call, says, tickets_of
from bridge.zendesk.outbox.recording_links import ATTACH_NOTE, DUAL, MONO, NEW_TICKET, link_recording
from bridge.zendesk.outbox.results import Done, Needs, TicketFound, TicketMade, TicketReused
from schemas.zendesk import VIA_VOICEMAIL

log = logging.getLogger("bridge.outbox")

REQUESTER_FIELDS = ("requester_id", "requester")
ASSIGNEE_FIELDS = ("assignee_id", "assignee")
RETRYABLE_FIELDS = frozenset({"display_to_agent", *REQUESTER_FIELDS, *ASSIGNEE_FIELDS})


def refused_fields(exc: Invalid) -> set[str] | None:
    """Return the fields a 422 blames when dropping them may fix it, else None (a dead letter)."""
    fields = set(exc.details)
    if exc.status != 422 or not fields or not fields <= RETRYABLE_FIELDS:
        return None
    return fields


async def create_ticket(ctx: Context, attempt: Attempt, create: CreateTicket, needs: Needs) -> Done:
    """Create the voice ticket once, even when an earlier attempt's answer was lost."""
    call_sid, agent = create.call_sid, create.display_to_agent
    if create.existing_ticket_id is not None:
        used = await use_ticket(ctx, attempt, create, create.existing_ticket_id)
        if used is not None:
            return used
    caller = needs.caller(create.requester_phone)
    requester = caller.user_id if caller is not None else None
    ticket = create.ticket.wire()
    if requester is not None:
        ticket["requester_id"] = requester
    defaults = ctx.defaults.under(create.group_id, create.brand_id)
    defaults.apply(ticket)
    via = create.ticket.via_id
    # An earlier attempt started (and maybe crashed or timed out) after sending: look before creating.
    existing = await attempt.earlier(lambda: tickets_of(ctx, call_sid, [requester], create.ticket.assignee_id))
    if existing:
        return Done(TicketFound(int(existing[0]["id"]), via))
    ticket = await _with_recording(ctx, create, ticket)
    follow_ups: list[Action] = []
    for _ in range(len(RETRYABLE_FIELDS)):
        try:
            created = await ctx.zendesk.create_voice_ticket(ticket, agent)
        except Invalid as exc:
            fields = refused_fields(exc)
            if fields is None:
                raise
            if "display_to_agent" in fields and agent is not None:
                # Zendesk validates display_to_agent before creating anything (Zendesk Talk Partner Edition
                # API, "Create Ticket"): the ticket matters more than the pop, so create it bare and pop
                # separately.
                log.warning("call %s: display_to_agent %s refused; creating the ticket without it", call_sid, agent)
                follow_ups.append(DisplayTicket(call_sid, agent))
                agent = None
            if fields & set(ASSIGNEE_FIELDS):
                # A suspended agent, or one downgraded to end-user: the ticket goes unassigned, to the group.
                log.warning("call %s: assignee %s refused (%s); creating the ticket unassigned", call_sid,
                            ticket.pop("assignee_id", None), mask_text(str(exc.details)))  # fmt: skip
                defaults.apply(ticket)
            if fields & set(REQUESTER_FIELDS):
                await _fix_requester(ctx, ticket, create.requester_phone, call_sid, exc)
            continue
        return Done(TicketMade(int(created["id"]), via), follow_ups)
    raise StillRefused(f"call {call_sid}: Zendesk kept refusing the ticket after dropping the fields it blamed")


async def _with_recording(ctx: Context, create: CreateTicket, ticket: dict[str, Any]) -> dict[str, Any]:
    """Link the recording of a ticket created with its voice comment (voicemail, TICKET_ON=end)."""
    voice = ticket.get("voice_comment")
    if not isinstance(voice, dict):
        return ticket
    channels = MONO if create.ticket.via_id == VIA_VOICEMAIL else DUAL
    linked = await link_recording(ctx, create.call_sid, voice, channels, NEW_TICKET, create.parts)
    if linked.upload is None:
        return {**ticket, "voice_comment": linked.payload}
    comment = {**(ticket.get("comment") or {"body": ATTACH_NOTE, "public": False}), "uploads": [linked.upload]}
    return {**ticket, "comment": comment, "voice_comment": linked.payload}


async def _fix_requester(ctx: Context, ticket: dict[str, Any], phone: str | None, call_sid: str, exc: Invalid) -> None:
    """Replace a requester Zendesk refused: look the caller up again, or leave the requester to Zendesk."""
    stale = ticket.get("requester_id")
    if phone is not None and stale is not None:
        fresh = await refresh_caller(ctx, phone, int(stale), call_sid)
        if fresh != stale:
            ticket["requester_id"] = fresh  # the cached caller was merged or deleted since we looked
            return
    # A suspended caller: Zendesk makes the API user the requester when none is given.
    log.warning("call %s: requester %s refused (%s); creating the ticket without it", call_sid, stale,
                mask_text(str(exc.details)))  # fmt: skip
    ticket.pop("requester_id", None)


async def use_ticket(ctx: Context, attempt: Attempt, create: CreateTicket, ticket_id: int) -> Done | None:
    """Put an agent's call out on the ticket it was placed from; None when that ticket cannot take it.

    A ticket that is gone or closed (Zendesk refuses updates to closed tickets) gets no comment: the
    call then becomes its own via 46 ticket, as any call out does.
    """
    try:
        ticket = await ctx.zendesk.ticket(ticket_id)
    except NotFound:
        ticket = {"status": "deleted"}
    if ticket.get("status") in ("closed", "deleted"):
        log.info("call %s: ticket %s is %s; creating a new ticket instead", create.call_sid, ticket_id,
                 ticket.get("status"))  # fmt: skip
        return None
    # Each comment once, even when an earlier attempt's answer was lost: look before adding. The ticket
    # holds other calls' voice comments too, so only this call's own (same from, start and length) counts.
    note, voice = create.ticket.comment, create.ticket.voice_comment
    try:
        async with writing_to(ticket_id):
            if note is not None and not await attempt.earlier(lambda: has_comment(ctx, ticket_id, says(note.body))):
                await ctx.zendesk.update_ticket(ticket_id, {"comment": note.model_dump(mode="json")})
            if voice is not None and not await attempt.earlier(
                lambda: has_comment(ctx, ticket_id, same_call(voice.wire()))
            ):
                linked = await link_recording(ctx, create.call_sid, voice.wire(), DUAL, ticket_id, create.parts)
                await ctx.zendesk.update_ticket(ticket_id, {"voice_comment": linked.payload})
    except TicketGone:
        log.info("call %s: ticket %s closed or went meanwhile; creating a new ticket instead", create.call_sid,
                 ticket_id)  # fmt: skip
        return None
    agent = create.display_to_agent
    pops: list[Action] = [DisplayTicket(create.call_sid, agent)] if agent is not None else []
    return Done(TicketReused(ticket_id), pops)
