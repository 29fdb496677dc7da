"""Did an earlier attempt land? The matchers of the bridge's comments and where to look for them.

An attempt whose answer was lost (a timeout, a dropped connection, a late commit) may have taken effect:
the next one looks before it writes. It looks only through endpoints an agent may call, on the call's
ticket and, when that ticket was closed or deleted meanwhile, where its conversation moved: the merge
target, or a follow-up ticket with the call's external id.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from bridge.zendesk.client import NotFound
from bridge.zendesk.outbox.context import Context

TPE_VOICE_COMMENT = "TpeVoiceComment"  # a call record's comment (Zendesk docs: TPE API, "Creating a voice comment")
VOICE_TYPES = ("VoiceComment", TPE_VOICE_COMMENT)
# Zendesk's default comment on a merged ticket (Zendesk help, "Merging tickets"): "This request was closed
# and merged into request #123".
MERGED_INTO = re.compile(r"merged into (?:request|ticket) #(\d+)", re.IGNORECASE)

Match = Callable[[dict[str, Any]], bool]  # is this comment the one we look for?
Ours = Callable[[dict[str, Any], bool], bool]  # the same, told whether the comment is on the call's own ticket


def holds(url: str) -> Match:
    """Match a comment that carries the attachment at `url`."""
    return lambda comment: any(item.get("content_url") == url for item in comment.get("attachments") or [])


def says(body: str) -> Match:
    """Match a comment with this body."""
    return lambda comment: comment.get("body") == body


def same_call(wire: dict[str, Any]) -> Match:
    """Match this call's voice comment among others on a ticket: same from, start and length."""

    def same(comment: dict[str, Any]) -> bool:
        data = comment.get("data")
        return (
            comment.get("type") in VOICE_TYPES
            and isinstance(data, dict)
            and all(data.get(key) == wire.get(key) for key in ("from", "started_at", "call_duration"))
        )

    return same


def shows_record(comment: dict[str, Any], call_sid: str) -> bool:
    """Tell whether a ticket comment is the TPE voice comment of this call's record (its data names the call)."""
    data = comment.get("data")
    return comment.get("type") == TPE_VOICE_COMMENT and isinstance(data, dict) and data.get("external_id") == call_sid


def merge_target(ticket: dict[str, Any], comments: list[dict[str, Any]]) -> int | None:
    """Return the ticket a closed ticket was merged into, or None when it was not merged."""
    if "closed_by_merge" not in (ticket.get("tags") or []):
        return None
    for comment in reversed(comments):
        match = MERGED_INTO.search(str(comment.get("body") or ""))
        if match:
            return int(match.group(1))
    return None


async def has_comment(ctx: Context, ticket_id: int, same: Match) -> bool:
    """Tell whether an earlier attempt's comment is already on the ticket (its answer may have been lost)."""
    try:
        return any(same(comment) for comment in await ctx.zendesk.ticket_comments(ticket_id))
    except NotFound:
        return False


async def landed(ctx: Context, call_sid: str, ticket_id: int, ours: Ours) -> int | None:
    """Return the ticket an earlier attempt's comment landed on: the call's, its merge target, or a follow-up."""
    try:
        comments = await ctx.zendesk.ticket_comments(ticket_id)
        ticket: dict[str, Any] | None = await ctx.zendesk.ticket(ticket_id)
    except NotFound:
        comments, ticket = [], None
    if any(ours(comment, True) for comment in comments):
        return ticket_id
    if ticket is not None and ticket.get("status") != "closed":
        return None  # the ticket takes updates, so an earlier attempt went nowhere else
    if ticket is not None:
        target = merge_target(ticket, comments)
        if target is not None and await has_comment(ctx, target, lambda c: ours(c, False)):
            return target
    owners = [ticket.get("requester_id")] if ticket is not None else []
    for candidate in await tickets_of(ctx, call_sid, owners):
        if int(candidate["id"]) != ticket_id and await has_comment(ctx, int(candidate["id"]), lambda c: ours(c, False)):
            return int(candidate["id"])
    return None


async def tickets_of(
    ctx: Context, call_sid: str, requesters: list[Any], assignee: int | None = None
) -> list[dict[str, Any]]:
    """Return the call's tickets through endpoints an agent may call, immediate first.

    List Tickets (`GET /api/v2/tickets?external_id=`) is allowed for admins only (Zendesk docs, Tickets,
    "Listing Tickets"), and the bridge runs as an agent. A user's requested and assigned tickets are
    exact and immediate, and agents may list them; a ticket without a requester belongs to the API
    user. Search also finds a ticket whose requester and assignee an agent changed, but only once
    indexed (the Search API lags writes by up to minutes).
    """
    # Cheapest and likeliest first, stopping at the first list that holds it: one request in the usual case.
    lists: list[tuple[Literal["requested", "assigned"], int | None]] = [
        *(("requested", int(r)) for r in requesters if r is not None),
        ("assigned", assignee),
        ("requested", None),  # the API user, requester of a ticket created without one
    ]
    asked: set[tuple[str, int]] = set()
    for relation, user_id in lists:
        if relation == "assigned" and user_id is None:
            continue
        owner = user_id if user_id is not None else await ctx.zendesk.my_id()
        if (relation, owner) in asked:
            continue
        asked.add((relation, owner))
        try:
            found = [t for t in await ctx.zendesk.user_tickets(owner, relation) if t.get("external_id") == call_sid]
        except NotFound:
            continue  # the user was deleted or merged since
        if found:
            return found
    return [t for t in await ctx.zendesk.search_tickets_by_external_id(call_sid) if t.get("external_id") == call_sid]
