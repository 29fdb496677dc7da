"""Call records (ZENDESK_API=calls): created once, on the call's ticket when it has one, then updated.

The Calls API has no look-up by external_id (Zendesk docs: TPE API, Calls): a record on a ticket is found
again through its voice comment there, or where the ticket's conversation moved; a record without a
ticket cannot be found, so an uncertain create of it is sent again (at least once).
"""

from __future__ import annotations

import logging
from typing import Any

from bridge.core.actions import CreateCallRecord, ticket_key
from bridge.store import DEAD
from bridge.zendesk.client import AuthFailed, Invalid, NotFound
from bridge.zendesk.outbox.context import Attempt, Context
from bridge.zendesk.outbox.errors import NoRecord, NotConfigured, NoTicket, TicketGone, writing_to
from bridge.zendesk.outbox.landed import landed, shows_record
from bridge.zendesk.outbox.recording_links import DUAL, MONO, link_recording
from bridge.zendesk.outbox.relocate import new_home
from bridge.zendesk.outbox.results import Done, Dropped, Needs, Outcome, RecordFound, RecordMade, RecordUpdated

log = logging.getLogger("bridge.outbox")


async def create_call_record(ctx: Context, attempt: Attempt, create: CreateCallRecord, needs: Needs) -> Done:
    """Create the call's record once: on its ticket, an earlier attempt whose answer was lost is found there."""
    if ctx.app_id is None:
        raise NotConfigured("call records need ZENDESK_APP_ID, the id of the installed app they belong to")
    call_sid = create.call_sid
    call: dict[str, Any] = {**create.record.wire(), "app_id": ctx.app_id}
    end_user = needs.caller(create.customer_phone)
    if end_user is not None:
        call["end_user_id"] = end_user.user_id
    brand = create.brand_id or ctx.defaults.brand_id  # the call's line's, else ZENDESK_BRAND_ID
    if brand is not None:
        call["brand_id"] = brand
    call = await named_group(ctx, call, create.group_id)
    comment = create.comment.wire() if create.comment is not None else None
    if comment is not None and create.existing_ticket_id is not None:
        return await _create_on(ctx, attempt, create.existing_ticket_id, call, comment)
    shown = comment is not None or create.linked
    holder = create.shown_on or call_sid  # the call whose ticket shows it (a callback's: the call that asked)
    ticket = needs.ticket(holder) if shown else None
    if shown and ticket is None:
        if needs.status(ticket_key(holder)) != DEAD:
            raise NoTicket(f"call {call_sid}: the call's ticket was never created, so its record has nowhere to show")
        # The ticket's action died (an outage past OUTBOX_MAX_AGE, a refusal): the call still counts in
        # Zendesk's reporting, as a record without a ticket.
        log.warning("call %s: its ticket was never created; creating its call record without one", call_sid)
        comment = None
    if ticket is None:
        return await _create_alone(ctx, attempt, call, parts=create.parts)
    if comment is None:
        return await _create_alone(ctx, attempt, call, ticket.ticket_id, parts=create.parts)
    home = ticket.ticket_id
    # The record's voice comment, on the ticket or where its conversation moved, is where an earlier
    # attempt's record shows.
    found = await attempt.earlier(lambda: find_record(ctx, call_sid, home))
    if found is not None:
        return Done(found)
    call = await _linked(ctx, call_sid, call, home, create.parts)
    try:
        async with writing_to(home):
            created = await ctx.zendesk.create_call({**call, "ticket_id": home}, comment)
    except TicketGone as gone:
        # An agent merged, closed or deleted the ticket meanwhile: the record goes where the conversation
        # lives (the merge target, or a follow-up ticket), so it shows, and a retry finds it there.
        home = await new_home(ctx, call_sid, ticket.via_id, gone)
        created = await ctx.zendesk.create_call({**call, "ticket_id": home}, comment)
    return Done(RecordMade(int(created["id"]), home))


async def _create_on(
    ctx: Context, attempt: Attempt, ticket_id: int, call: dict[str, Any], comment: dict[str, Any]
) -> Done:
    """Show a call out nobody answered on the ticket it was placed from; alone if that ticket closed or went."""
    found = await attempt.earlier(lambda: record_on(ctx, ticket_id, attempt.call_sid))
    if found is not None:
        return Done(RecordFound(found, ticket_id))
    try:
        async with writing_to(ticket_id):
            created = await ctx.zendesk.create_call({**call, "ticket_id": ticket_id}, comment)
    except TicketGone:
        # No follow-up ticket for an attempt that reached nobody: tickets mode makes no ticket of it either.
        return await _create_alone(ctx, attempt, call)
    return Done(RecordMade(int(created["id"]), ticket_id))


async def _create_alone(
    ctx: Context, attempt: Attempt, call: dict[str, Any], ticket_id: int | None = None, *, parts: tuple[str, ...] = ()
) -> Done:
    """Create a record no voice comment shows (linked to `ticket_id`, if any): a lost answer may mean a copy."""
    if attempt.retried:
        log.warning("call %s: an earlier create of its call record (no voice comment) may have landed unseen; "
                    "Zendesk may hold it twice", attempt.call_sid)  # fmt: skip
    # No attachment on the ticket: a linked record's ticket (a voicemail) already plays the recording.
    call = await _linked(ctx, attempt.call_sid, call, None, parts)
    if ticket_id is None:
        created = await ctx.zendesk.create_call(call, None)
        return Done(RecordMade(int(created["id"]), None))
    try:
        async with writing_to(ticket_id):
            created = await ctx.zendesk.create_call({**call, "ticket_id": ticket_id}, None)
    except (TicketGone, Invalid) as refused:
        if isinstance(refused, Invalid) and "ticket_id" not in refused.details:
            raise
        # Merged, closed or deleted meanwhile (Zendesk names a ticket_id that no longer exists as invalid):
        # the call still counts in Zendesk's reporting, without the link.
        log.warning("call %s: ticket %s took no call record (%s); creating it without the link",
                    attempt.call_sid, ticket_id, refused)  # fmt: skip
        created = await ctx.zendesk.create_call(call, None)
        return Done(RecordMade(int(created["id"]), None))
    return Done(RecordMade(int(created["id"]), ticket_id))


async def find_record(ctx: Context, call_sid: str, ticket_id: int) -> RecordFound | None:
    """Return an earlier attempt's record: on the call's ticket, its merge target, or a follow-up."""

    seen: list[int] = []  # the record's id, read off the comment that matched, so no second look is needed

    def ours(comment: dict[str, Any], _own_ticket: bool) -> bool:
        if not shows_record(comment, call_sid):
            return False
        seen.append(int(comment["data"]["call_id"]))
        return True

    home = await landed(ctx, call_sid, ticket_id, ours)
    return RecordFound(seen[-1], home) if home is not None and seen else None


async def record_on(ctx: Context, ticket_id: int, call_sid: str) -> int | None:
    """Return the id of the call's record shown on the ticket, or None when none is."""
    try:
        comments = await ctx.zendesk.ticket_comments(ticket_id)
    except NotFound:
        return None
    for comment in comments:
        if shows_record(comment, call_sid):
            return int(comment["data"]["call_id"])
    return None


async def update_call_record(
    ctx: Context, call_sid: str, fields: dict[str, Any], needs: Needs, parts: tuple[str, ...] = ()
) -> Outcome:
    """Change the call's record (`parts`: its recording's, when in several); a PATCH sets the same values again."""
    record = needs.record(call_sid)
    if record is None:
        raise NoRecord(f"call {call_sid}: the call's record was never created, so there is nothing to update")
    fields = await _linked(ctx, call_sid, fields, record.ticket_id, parts)
    try:
        await ctx.zendesk.update_call(record.call_id, fields)
    except NotFound:
        return Dropped(f"call record {record.call_id} no longer exists in Zendesk")
    return Done(RecordUpdated(record.call_id))


async def _linked(
    ctx: Context, call_sid: str, call: dict[str, Any], ticket_id: int | None, parts: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Link a record's recording, in one part or several, as RECORDINGS says (attached to its ticket, if any)."""
    channels = MONO if call.get("voicemail") else DUAL
    try:
        if ticket_id is None:
            return (await link_recording(ctx, call_sid, call, channels, None, parts)).payload
        async with writing_to(ticket_id):
            return (await link_recording(ctx, call_sid, call, channels, ticket_id, parts)).payload
    except TicketGone as gone:
        # The ticket took no attachment (closed or deleted meanwhile): the record links the bridge's copy.
        log.warning("call %s: ticket %s took no attachment (%s); the call record links the recording through "
                    "the bridge", call_sid, ticket_id, gone)  # fmt: skip
        return (await link_recording(ctx, call_sid, call, channels, None, parts)).payload


async def named_group(ctx: Context, fields: dict[str, Any], group_id: int | None) -> dict[str, Any]:
    """Name the group of the line a menu led the caller to (ivr_destination_group_name): only Zendesk knows it.

    `group_id` is the line's group, else ZENDESK_GROUP_ID. Each group is read once (Zendesk docs: Groups, Show
    Group); a group that is gone, or that the token may not read, leaves the field out rather than the record.
    """
    group = group_id or ctx.defaults.group_id
    if fields.get("ivr_action") != "group" or group is None:
        return fields
    if group not in ctx.group_names:
        try:
            ctx.group_names[group] = str((await ctx.zendesk.group(group))["name"])
        except (NotFound, AuthFailed) as exc:
            log.warning("group %s cannot be read (%s): the call record goes without ivr_destination_group_name",
                        group, exc.status)  # fmt: skip
            return fields
    return {**fields, "ivr_destination_group_name": ctx.group_names[group]}
