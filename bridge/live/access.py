"""Who may open the live view: Zendesk admins and the roles SUPERVISOR_ROLES names, as Zendesk says, never the page.

Zendesk docs, Users API, "Show User" (`GET /api/v2/users/{user_id}.json`) and the Users JSON format: `role`
is end-user, agent or admin; `custom_role_id` is the agent's custom role (Enterprise plans), `null` without
one; `suspended` is true for a suspended user. The signed-URL JWT says only who the user is (`sub`); what they
may see is read from Zendesk each time the page is opened, and again while it stays open (Supervisors): a
supervisor whose role an admin takes away loses the board and its actions within RECHECK, not at their session's
end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp

from bridge.zendesk.client import AuthFailed, NotFound, ZendeskError

ADMIN = "admin"
RECHECK = timedelta(minutes=1)  # how long Zendesk's word on a supervisor's role holds before it is asked again
STALE = timedelta(minutes=15)  # while Zendesk cannot answer, how long its last word still holds


class UserReader(Protocol):
    """Something that reads one Zendesk user (bridge.zendesk.client.ZendeskClient)."""

    async def user(self, user_id: int) -> dict[str, Any]:
        """Return the user's JSON."""


def is_supervisor(user: Mapping[str, Any], roles: Collection[str]) -> bool:
    """Tell whether a Zendesk user may open the live view: an admin, or a role or custom role `roles` names."""
    if user.get("suspended"):
        return False
    role = str(user.get("role") or "").lower()
    if role == ADMIN:
        return True
    if role not in ("agent", ADMIN):
        return False  # an end-user is nobody's supervisor, whatever SUPERVISOR_ROLES says
    custom = user.get("custom_role_id")
    return role in roles or (custom is not None and str(custom) in roles)


def refusal(user: Mapping[str, Any]) -> str:
    """Say, in words the user reads, why the live view is not theirs."""
    role = user.get("role") or "unknown"
    custom = user.get("custom_role_id")
    what = f"role {role}" + (f", custom role {custom}" if custom is not None else "")
    if user.get("suspended"):
        return "Your Zendesk user is suspended."
    return (
        f"The live view is for Zendesk admins and supervisors; your Zendesk user has {what}. Ask an admin to add "
        "your role (or custom role id) to SUPERVISOR_ROLES."
    )


class Unknown(Exception):
    """Zendesk could not say who the user is now, and its last word is too old to go on."""


@dataclass(frozen=True)
class Verdict:
    """Zendesk's last word on one user: whether they may use the live view, and why not."""

    at: datetime
    supervisor: bool
    why_not: str
    role: str  # as Zendesk says (for the log)
    name: str  # the user's name (the page greets them), their id when Zendesk gives none


class Supervisors:
    """Say whether a live view session's user is still a supervisor, asking Zendesk again every RECHECK."""

    def __init__(self, users: UserReader, roles: Collection[str], timeout: float) -> None:
        """Bind the way to read users, the roles SUPERVISOR_ROLES names, and how long one read may take."""
        self._users = users
        self._roles = roles
        self._timeout = timeout
        self._said: dict[int, Verdict] = {}

    async def read(self, user_id: int, now: datetime) -> Verdict:
        """Ask Zendesk who the user is now, keep its word, and return it; raise Unknown when it cannot say."""
        try:
            async with asyncio.timeout(self._timeout):
                user: Mapping[str, Any] = await self._users.user(user_id)
        except NotFound:
            user = {"role": "unknown"}  # deleted in Zendesk: nobody's supervisor
        except (AuthFailed, ZendeskError, aiohttp.ClientError, TimeoutError) as exc:
            raise Unknown(type(exc).__name__) from exc
        verdict = Verdict(now, is_supervisor(user, self._roles), refusal(user), str(user.get("role")),
                          str(user.get("name") or user_id))  # fmt: skip
        self._said[user_id] = verdict
        return verdict

    async def verdict(self, user_id: int, now: datetime) -> Verdict:
        """Return Zendesk's word on the user, read again once RECHECK old; raise Unknown when none will do."""
        last = self._said.get(user_id)
        if last is not None and now - last.at < RECHECK:
            return last
        try:
            return await self.read(user_id, now)
        except Unknown:
            # An outage at Zendesk does not lock supervisors out at once: its last word holds a while.
            if last is not None and now - last.at < STALE:
                return last
            raise
