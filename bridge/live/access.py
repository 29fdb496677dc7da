"""Who may open the live view: Zendesk admins and the roles SUPERVISOR_ROLES names, as Zendesk says, never the page.

Zendesk docs, Users API, "Show User" (`GET /api/v2/users/{user_id}.json`) and the Users JSON format: `role`
is end-user, agent or admin; `custom_role_id` is the agent's custom role (Enterprise plans), `null` without
one; `suspended` is true for a suspended user. The signed-URL JWT says only who the user is (`sub`); what they
may see is read from Zendesk each time the page is opened.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

ADMIN = "admin"


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
