"""The account's records, one object every resource's store reads and writes, and its reset to the seed."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from bridge.devtools.sandbox.config import SandboxConfig
from bridge.devtools.sandbox.seed import seed_brands, seed_groups, seed_identities, seed_users

FIRST_USER_ID = 3001
FIRST_CALL_ID = 700001
FIRST_AUDIT_ID = 800001


def now_iso() -> str:
    """Return the time now as Zendesk writes it in records (UTC, whole seconds, `Z`)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class State:
    """Hold every record of the account; the stores share this one object, so a reset reaches them all."""

    def __init__(self, config: SandboxConfig) -> None:
        """Create the account with its seed data."""
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Return to the seed data: seed users, groups and brands; no tickets, calls, pops, uploads or requests."""
        self.users: dict[int, dict[str, Any]] = seed_users(self.config.email, self.config.token_role)
        self.identities: dict[int, list[str]] = seed_identities()  # extra phone identities by user id
        self.groups: dict[int, dict[str, Any]] = seed_groups()
        self.brands: dict[int, dict[str, Any]] = seed_brands()
        # When each user and ticket was created (time.time()), for the search index's lag.
        self.user_created: dict[int, float] = {}
        self.ticket_created: dict[int, float] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.calls: dict[int, dict[str, Any]] = {}  # TPE call records by id
        self.displays: list[dict[str, Any]] = []  # screen-pops, in order
        self.uploads: dict[str, dict[str, Any]] = {}  # by token: the attachment and its bytes
        self.availability: dict[int, dict[str, Any]] = {}  # agents' statuses, by agent id, once one changes
        self.requests: list[dict[str, Any]] = []  # every /api request, at arrival
        self.user_ids = itertools.count(FIRST_USER_ID)
        self.ticket_ids = itertools.count(1)
        self.comment_ids = itertools.count(1)
        self.call_ids = itertools.count(FIRST_CALL_ID)
        self.audit_ids = itertools.count(FIRST_AUDIT_ID)
