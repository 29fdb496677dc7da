"""Availability: each agent's status per channel and their unified status, as the Agent Availability API shows it.

Zendesk docs, Agent Availability API, "Get an agent's availability" (allowed for admins), and the Unified
Agent Status API's default statuses and their channel mapping.
"""

from __future__ import annotations

from typing import Any

from bridge.devtools.sandbox.errors import SandboxError, not_found
from bridge.devtools.sandbox.state import State, now_iso
from bridge.devtools.sandbox.users import Users

CHANNELS = ("messaging", "support", "talk")
CHANNEL_STATUSES = frozenset({"online", "away", "transfers_only", "offline"})
# Zendesk's default unified statuses: their ids and what each sets every channel to (Unified Agent Status
# API, introduction: Away "can only receive email tickets", all channels offline).
UNIFIED: dict[str, tuple[int, str]] = {
    "offline": (2, "offline"),
    "online": (3, "online"),
    "away": (4, "offline"),
    "transfers_only": (5, "transfers_only"),
}


class Availability:
    """Keep agents' statuses; every agent starts online on every channel, their unified status online."""

    def __init__(self, state: State, users: Users) -> None:
        self._state = state
        self._users = users

    def _record(self, agent_id: int) -> dict[str, Any]:
        """Return the agent's availability record, made on first use; 404 for anyone who is not an agent."""
        if not self._users.is_agent(agent_id):
            raise not_found()
        records = self._state.availability
        if agent_id not in records:
            records[agent_id] = {
                "unified": "online",
                "channels": dict.fromkeys(CHANNELS, "online"),
                "updated_at": now_iso(),
                "version": 1,
            }
        return records[agent_id]

    def set_unified(self, agent_id: int, status: str) -> None:
        """Set an agent's unified status; every channel takes the status it maps to."""
        if status not in UNIFIED:
            raise SandboxError(400, {"error": "InvalidValue", "description": f"unknown status {status!r}"})
        record = self._record(agent_id)
        record["unified"] = status
        record["channels"] = dict.fromkeys(CHANNELS, UNIFIED[status][1])
        self._touch(record)

    def set_channel(self, agent_id: int, channel: str, status: str) -> None:
        """Set an agent's status on one channel (as Zendesk Talk's own status selector does for talk)."""
        if channel not in CHANNELS or status not in CHANNEL_STATUSES:
            raise SandboxError(400, {"error": "InvalidValue", "description": f"{channel}: {status!r}"})
        record = self._record(agent_id)
        record["channels"][channel] = status
        self._touch(record)

    def show(self, agent_id: int, base_url: str) -> dict[str, Any]:
        """Return the JSON:API compound document of `GET /api/v2/agent_availabilities/{agent_id}`."""
        record = self._record(agent_id)
        own = f"agent_availabilities|{agent_id}"
        attributes: dict[str, Any] = {"agent_id": agent_id, "group_ids": [], "skills": [], "version": record["version"]}
        if self._state.config.unified_statuses:  # "Returned only if Omnichannel Contact Center is enabled"
            status_id, _ = UNIFIED[record["unified"]]
            updated = record["updated_at"]
            attributes["agent_status"] = {"id": status_id, "name": record["unified"], "reason": "UNKNOWN",
                                          "updated_at": updated}  # fmt: skip
        channels = [
            {
                "type": "channels",
                "id": f"{own}|channels|{channel}",
                "attributes": {
                    "name": channel,
                    "status": status,
                    "updated_at": record["updated_at"],
                    "work_item_count": 0,
                },
                "relationships": {"work_items": {"data": []}},
            }
            for channel, status in record["channels"].items()
        ]
        return {
            "data": {
                "type": "agent_availabilities",
                "id": own,
                "attributes": attributes,
                "relationships": {"channels": {"data": [{"type": "channels", "id": item["id"]} for item in channels]}},
                "links": {"self": f"{base_url}/api/v2/agent_availabilities/{agent_id}"},
            },
            "included": channels,
        }

    @staticmethod
    def _touch(record: dict[str, Any]) -> None:
        """Note a change: a new time and version."""
        record["updated_at"] = now_iso()
        record["version"] += 1
