"""The caller's end-user: found by phone or created once, and looked up again when Zendesk merged it away."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from bridge.core.actions import caller_key
from bridge.core.phones import mask_text, national_digits, same_number
from bridge.zendesk.client import Invalid, NotFound
from bridge.zendesk.outbox.context import Context
from bridge.zendesk.outbox.results import Caller, CallerCreated, CallerFound, Needs

log = logging.getLogger("bridge.outbox")


@dataclass(frozen=True)
class Candidate:
    """A user whose stored number is the caller's, and whether it is their own line."""

    user: dict[str, Any]
    direct: bool

    def rank(self) -> tuple[bool, str, int]:
        """Order: a direct line before a shared number, then the most recently updated, then the newest id."""
        return (self.direct, str(self.user.get("updated_at") or ""), int(self.user.get("id") or 0))


async def find_caller(ctx: Context, e164: str) -> Caller:
    """Find the caller's end-user by phone, creating one named after the number only when none has it."""
    # The external_id look-up is exact and immediate, unlike the search index, which lags writes by
    # seconds to minutes: a user an earlier call (or attempt) created is found here at once.
    # Both look-ups go out together: a caller's first call waits one round trip for them, not two, which keeps
    # routing's look-up after it (bridge/zendesk/outbox/customers.py) within LOOKUP_BUDGET_MS more often.
    external_id = f"bridge-phone:{e164}"
    ours, user = await asyncio.gather(ctx.zendesk.users_by_external_id(external_id), pick_user(ctx, e164))
    if ours:
        return CallerFound(int(ours[0]["id"]))
    if user is not None:
        return CallerFound(int(user["id"]))
    try:
        created = await ctx.zendesk.create_user(f"Caller {e164}", e164, external_id)
    except Invalid as exc:
        if "external_id" not in exc.details:
            raise
        # "External: … has already been taken": an earlier attempt's create landed after all; read it.
        ours = await ctx.zendesk.users_by_external_id(external_id)
        if not ours:
            raise
        return CallerFound(int(ours[0]["id"]))
    return CallerCreated(int(created["id"]))


async def pick_user(ctx: Context, e164: str) -> dict[str, Any] | None:
    """Search by the national number, then keep the users whose stored number really is the caller's.

    Zendesk's `phone:*DIGITS` matches stored numbers ending in DIGITS (Zendesk TPE guide, "Retrieving
    the Zendesk user id of a caller"): searching the national number finds "(503) 555-0147" as well as
    "+1 503-555-0147", and parsing each candidate drops a foreign number that merely ends the same way.
    """
    results = await ctx.zendesk.search_users_by_phone(national_digits(e164))
    candidates: list[Candidate] = []
    for user in results[:20]:
        if same_number(user.get("phone"), e164):
            candidates.append(Candidate(user, direct=not user.get("shared_phone_number")))
            continue
        # The search hit an extra phone identity, not the primary phone; an identity is the user's own.
        try:
            phones = await ctx.zendesk.user_phones(int(user["id"]))
        except NotFound:
            continue
        if any(same_number(phone, e164) for phone in phones):
            candidates.append(Candidate(user, direct=True))
    if not candidates:
        return None
    return max(candidates, key=Candidate.rank).user


async def refresh_caller(ctx: Context, phone: str, stale_id: int, call_sid: str) -> int:
    """Search again for a caller whose cached user id Zendesk no longer knows, once per number."""
    key = caller_key(phone)
    async with ctx.caller_locks.setdefault(key, asyncio.Lock()):
        cached = Needs(await ctx.store.results([key])).caller(phone)
        if cached is not None and cached.user_id != stale_id:
            return cached.user_id  # another delivery refreshed it meanwhile
        found = await find_caller(ctx, phone)
        if found.user_id != stale_id:
            await ctx.store.update_result(key, found.encode(), now=ctx.clock())
            log.info("call %s: caller %s was user %s, merged or deleted in Zendesk; now user %s", call_sid,
                     mask_text(phone), stale_id, found.user_id)  # fmt: skip
        return found.user_id
