"""The call's comments on its ticket: the voice comment and private notes, each added once."""

from __future__ import annotations

import logging
from typing import Any

from bridge.core.phones import mask_text
from bridge.zendesk.client import Invalid
from bridge.zendesk.outbox.context import Attempt, Context
from bridge.zendesk.outbox.errors import TicketGone, writing_to
from bridge.zendesk.outbox.landed import VOICE_TYPES, Ours, landed, same_call
from bridge.zendesk.outbox.recording_links import DUAL, link_recording
from bridge.zendesk.outbox.relocate import move
from bridge.zendesk.outbox.results import CommentAdded, CommentFound, CommentMoved, Done, Ticket
from bridge.zendesk.outbox.tickets import ASSIGNEE_FIELDS, refused_fields
from schemas.zendesk import VoiceComment

log = logging.getLogger("bridge.outbox")


async def add_voice_comment(
    ctx: Context, attempt: Attempt, ticket: Ticket, comment: VoiceComment, parts: tuple[str, ...] = ()
) -> Done:
    """Add the call's voice comment, its recording (in `parts`, when in several) linked as RECORDINGS says."""
    try:
        async with writing_to(ticket.ticket_id):
            linked = await link_recording(ctx, attempt.call_sid, comment.wire(), DUAL, ticket.ticket_id, parts)
            wire = linked.payload
    except TicketGone as gone:
        # The ticket was merged, closed or deleted before the file could be attached there: the voice
        # comment still goes where the conversation now lives, with Twilio's own link (the bridge's for a
        # recording in parts: only its link plays them all).
        log.warning("call %s: ticket %s took no attachment (%s); linking the recording at Twilio",
                    attempt.call_sid, ticket.ticket_id, gone)  # fmt: skip
        wire = comment.wire()
        if len(parts) > 1:
            wire = (await link_recording(ctx, attempt.call_sid, wire, DUAL, None, parts)).payload

    same = same_call(wire)

    def ours(found: dict[str, Any], own_ticket: bool) -> bool:
        # On the call's own ticket any voice comment is ours (a ticket gets exactly one); on a merge target
        # or follow-up, match the call's data, as other calls' comments live there.
        if found.get("type") not in VOICE_TYPES:
            return False
        return same(found) if isinstance(found.get("data"), dict) else own_ticket

    return await add_comment(ctx, attempt, ticket, {"voice_comment": wire}, ours)


async def add_note(
    ctx: Context,
    attempt: Attempt,
    ticket: Ticket,
    body: str,
    tags: tuple[str, ...] = (),
    assignee: int | None = None,
    group: int | None = None,
) -> Done:
    """Add a private note to the call's ticket, with tags (added to the ticket's) and its new assignee and group."""
    note: dict[str, Any] = {"comment": {"body": body, "public": False}}
    if tags:
        note["additional_tags"] = list(tags)  # none of its tags removed (Zendesk docs: Tickets, additional_tags)
    if assignee is not None:
        note["assignee_id"] = assignee  # a transfer's receiver, a callback's agent: the ticket goes to them
    if group is not None:
        note["group_id"] = group  # a transfer to a line: the ticket goes to the line's group

    def ours(found: dict[str, Any], own: bool) -> bool:
        return found.get("body") == body

    try:
        return await add_comment(ctx, attempt, ticket, note, ours)
    except Invalid as exc:
        fields = refused_fields(exc)
        if assignee is None or fields is None or not fields & set(ASSIGNEE_FIELDS):
            raise
        # Zendesk refuses the whole update for a suspended agent, or one downgraded to end-user (422 naming
        # assignee_id): the note matters more than who has the ticket, so it goes without the assignee.
        log.warning("call %s: assignee %s refused (%s); adding the note without it", attempt.call_sid, assignee,
                    mask_text(str(exc.details)))  # fmt: skip
        del note["assignee_id"]
        return await add_comment(ctx, attempt, ticket, note, ours)


async def add_comment(ctx: Context, attempt: Attempt, ticket: Ticket, payload: dict[str, Any], ours: Ours) -> Done:
    """Add a comment to the call's ticket, or where its conversation now lives if it was closed or deleted."""
    ticket_id = ticket.ticket_id
    found = await attempt.earlier(lambda: landed(ctx, attempt.call_sid, ticket_id, ours))
    if found is not None:
        return Done(CommentFound(found))
    try:
        async with writing_to(ticket_id):
            await ctx.zendesk.update_ticket(ticket_id, payload)
    except TicketGone as gone:
        moved = await move(ctx, attempt.call_sid, ticket.via_id, gone, payload)
        return Done(CommentMoved(moved, ticket_id))
    return Done(CommentAdded(ticket_id))
