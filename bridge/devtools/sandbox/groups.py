"""Groups and brands: shown to agents and admins, and what tickets and call records may name.

Zendesk docs: Groups, "Show Group" (allowed for admins and agents); Brands, "Show a Brand" (allowed for
admins and agents), whose `host_mapping` "only admins view". A ticket or call record naming a group or
brand the account has not is refused (422, `errors.py`).
"""

from __future__ import annotations

from typing import Any

from bridge.devtools.sandbox.errors import forbidden, not_found
from bridge.devtools.sandbox.seed import INTEGRATION_USER_ID
from bridge.devtools.sandbox.state import State

STAFF = frozenset({"agent", "admin"})
ADMIN_ONLY_BRAND_KEYS = frozenset({"host_mapping"})


class Groups:
    """Show the account's groups and brands to the token's user, as its role allows."""

    def __init__(self, state: State) -> None:
        self._state = state

    def group_exists(self, group_id: Any) -> bool:
        """Tell whether a ticket may name this group."""
        return group_id in self._state.groups

    def brand_exists(self, brand_id: Any) -> bool:
        """Tell whether a ticket or call record may name this brand."""
        return brand_id in self._state.brands

    def show_group(self, group_id: int) -> dict[str, Any]:
        """Return a group (403 to an end-user, 404 for one the account has not)."""
        self._staff_only()
        group = self._state.groups.get(group_id)
        if group is None:
            raise not_found()
        return dict(group)

    def show_brand(self, brand_id: int) -> dict[str, Any]:
        """Return a brand, without what only admins see unless the token's user is one."""
        role = self._staff_only()
        brand = self._state.brands.get(brand_id)
        if brand is None:
            raise not_found()
        return {key: value for key, value in brand.items() if role == "admin" or key not in ADMIN_ONLY_BRAND_KEYS}

    def _staff_only(self) -> str:
        """Return the token user's role, or raise 403 for anyone who is not an agent or admin."""
        role = str(self._state.users[INTEGRATION_USER_ID]["role"])
        if role not in STAFF:
            raise forbidden()
        return role
