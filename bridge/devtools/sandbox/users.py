"""Users: show, create, look up by external_id, phone identities, and who counts as an agent."""

from __future__ import annotations

import copy
import time
from typing import Any

from bridge.devtools.sandbox.errors import check_optional_str, is_int, not_found, record_invalid
from bridge.devtools.sandbox.state import State, now_iso

AGENT_ROLES = frozenset({"agent", "admin"})
USER_ROLES = frozenset({"end-user", "agent", "admin"})


class Users:
    """Apply the Users and User Identities API operations to the account's users."""

    def __init__(self, state: State) -> None:
        self._state = state

    def get(self, user_id: int) -> dict[str, Any]:
        """Return a copy of a user or raise 404."""
        if user_id not in self._state.users:
            raise not_found()
        return copy.deepcopy(self._state.users[user_id])

    def is_agent(self, user_id: Any) -> bool:
        """Tell whether a value is the id of an agent or admin."""
        users = self._state.users
        return is_int(user_id) and user_id in users and users[user_id]["role"] in AGENT_ROLES

    def can_pop(self, user_id: Any) -> bool:
        """Tell whether screen-pops may go to this user (an agent with a TPE seat)."""
        return self.is_agent(user_id) and user_id not in self._state.config.no_tpe_seat

    def identities(self, user_id: int) -> list[dict[str, Any]]:
        """Return a user's phone identities (the primary phone first), or raise 404."""
        user = self.get(user_id)
        phones = ([user["phone"]] if user["phone"] else []) + self._state.identities.get(user_id, [])
        return [
            {"id": user_id * 100 + n, "user_id": user_id, "type": "phone_number", "value": value, "primary": n == 0}
            for n, value in enumerate(phones)
        ]

    def by_external_id(self, external_id: str) -> list[dict[str, Any]]:
        """Return users with this external_id: a direct look-up, not the (eventually consistent) search index."""
        return [copy.deepcopy(u) for u in self._state.users.values() if u.get("external_id") == external_id]

    def set_role(self, user_id: int, role: str, custom_role_id: int | None = None) -> None:
        """Give a user a role and a custom role (what an admin does in Admin Center, Team members)."""
        if role not in USER_ROLES or user_id not in self._state.users:
            raise not_found()
        # Zendesk docs, Users JSON format: custom_role_id belongs to agents only (Enterprise custom roles).
        self._state.users[user_id].update(
            role=role, custom_role_id=custom_role_id if role == "agent" else None, updated_at=now_iso()
        )

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a user from a `{"user": {...}}` body, end-user by default."""
        src = body.get("user")
        if not isinstance(src, dict):
            raise record_invalid({"user": "User: is required"})
        errors: dict[str, str] = {}
        name = src.get("name")
        if not isinstance(name, str) or not name.strip():
            errors["name"] = "Name: cannot be blank"
        role = src.get("role") or "end-user"
        if role not in USER_ROLES:
            errors["role"] = f"Role: {role!r} is not a valid role"
        check_optional_str(src, "phone", errors)
        check_optional_str(src, "email", errors)
        check_optional_str(src, "external_id", errors)
        external_id = src.get("external_id")
        if external_id is not None and self.by_external_id(external_id):
            # Zendesk keeps external_id unique among users.
            errors["external_id"] = f"External: {external_id} has already been taken"
        email = src.get("email")
        if isinstance(email, str) and any(
            (user["email"] or "").lower() == email.lower() for user in self._state.users.values()
        ):
            errors["email"] = f"Email: {email} is already being used by another user"
        if errors:
            raise record_invalid(errors)
        now = now_iso()
        user_id = next(self._state.user_ids)
        user: dict[str, Any] = {
            "id": user_id,
            "name": name,
            "email": email,
            "phone": src.get("phone"),
            "shared_phone_number": False,
            "role": role,
            "custom_role_id": None,
            "suspended": False,
            "external_id": external_id,
            "organization_id": None,
            "tags": [],
            "created_at": now,
            "updated_at": now,
        }
        self._state.users[user_id] = user
        self._state.user_created[user_id] = time.time()
        return copy.deepcopy(user)
