"""The Store protocol: durable call state, webhook dedupe and the outbox of actions."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bridge.core.actions import Action
from bridge.core.calls import Call, Outcome
from bridge.core.events import CallEvent

Reducer = Callable[[Call | None, CallEvent], Outcome]

PENDING, DONE, DEAD, DROPPED = "pending", "done", "dead", "dropped"


@dataclass(frozen=True)
class ActionRow:
    """An action as the outbox holds it."""

    id: int
    key: str
    kind: str
    call_sid: str
    payload: dict[str, Any]
    needs: tuple[str, ...]
    status: str
    attempts: int
    next_at: float
    created_at: float
    last_error: str | None
    result: dict[str, Any] | None


@dataclass(frozen=True)
class Ingested:
    """What storing one webhook did."""

    duplicate: bool
    outcome: Outcome | None  # None for a duplicate: nothing was changed


@dataclass(frozen=True)
class OutboxStats:
    """How much work is waiting, for /healthz and the CLI."""

    pending: int
    dead: int
    oldest_pending_age: float | None


class Store(Protocol):
    """Everything the bridge keeps; each method is one transaction."""

    async def ingest(
        self,
        keys: Sequence[str],
        event: CallEvent,
        reduce: Reducer,
        *,
        now: float,
        finish_action: int | None = None,
    ) -> Ingested:
        """Store an event unless a key was seen, fold it into its call, and queue the actions it causes."""
        ...

    async def claim(self, now: float, limit: int, lease: float) -> list[ActionRow]:
        """Lease due actions whose dependencies are settled, oldest first."""
        ...

    async def next_due(self) -> float | None:
        """Return when the earliest pending action becomes due."""
        ...

    async def results(self, keys: Sequence[str]) -> dict[str, ActionRow]:
        """Return the named actions (to read the results their dependants need)."""
        ...

    async def finish(
        self, action_id: int, status: str, *, result: dict[str, Any] | None, error: str | None, now: float
    ) -> None:
        """Settle an action as done, dead or dropped."""
        ...

    async def retry_later(self, action_id: int, *, next_at: float, error: str, now: float) -> None:
        """Count a failed attempt and schedule the next."""
        ...

    async def update_result(self, key: str, result: dict[str, Any], *, now: float) -> None:
        """Replace a done action's result."""
        ...

    async def add_actions(self, actions: Sequence[Action], *, now: float) -> None:
        """Queue further actions (follow-ups decided by the worker)."""
        ...

    async def release(self, action_id: int) -> None:
        """Give a leased action back untouched (the worker is stopping)."""
        ...

    async def stats(self, now: float) -> OutboxStats:
        """Count pending and dead actions."""
        ...

    async def list_actions(self, statuses: Sequence[str], limit: int = 100) -> list[ActionRow]:
        """List actions in the given statuses, newest first."""
        ...

    async def revive(self, action_id: int, now: float) -> bool:
        """Make a dead or dropped action pending again, due now."""
        ...

    async def drop(self, action_id: int, now: float, reason: str) -> bool:
        """Give up on a pending or dead action."""
        ...

    async def stale_calls(self, before: float, limit: int) -> list[str]:
        """Return calls with no final outcome whose last event is older than `before`."""
        ...

    async def touch_call(self, call_sid: str, now: float) -> None:
        """Postpone a call's next reconciliation."""
        ...

    async def get_call(self, call_sid: str) -> Call | None:
        """Return a call's state."""
        ...

    async def count_events(self) -> int:
        """Count stored webhook events."""
        ...

    async def schema_version(self) -> int:
        """Return the applied schema version."""
        ...

    async def migrate(self) -> int:
        """Apply pending migrations; return the resulting version."""
        ...

    async def ping(self) -> None:
        """Answer a trivial query (readiness)."""
        ...

    async def close(self) -> None:
        """Release the database."""
        ...


def to_epoch(moment: datetime | None) -> float | None:
    """Convert an aware datetime to epoch seconds."""
    return moment.timestamp() if moment is not None else None


class RowLike(Protocol):
    """A database row read by column name (aiosqlite.Row, asyncpg.Record)."""

    def __getitem__(self, key: str, /) -> Any:
        """Return a column's value."""
        ...


def action_row(row: RowLike) -> ActionRow:
    """Turn a database row (SQLite keeps `needs` as JSON text, PostgreSQL as an array) into an ActionRow."""
    needs = row["needs"]
    return ActionRow(
        id=row["id"],
        key=row["key"],
        kind=row["kind"],
        call_sid=row["call_sid"],
        payload=json.loads(row["payload"]),
        needs=tuple(json.loads(needs) if isinstance(needs, str) else needs),
        status=row["status"],
        attempts=row["attempts"],
        next_at=row["next_at"],
        created_at=row["created_at"],
        last_error=row["last_error"],
        result=json.loads(row["result"]) if row["result"] else None,
    )


def action_values(action: Action, now: float) -> tuple[str, str, str, str, list[str], float, float, float]:
    """Return a new action's column values: key, kind, call_sid, payload, needs, next_at, created, updated."""
    due = to_epoch(action.not_before)
    payload = json.dumps(action.payload, separators=(",", ":"))
    next_at = due if due is not None else now
    return (action.key, action.kind.value, action.call_sid, payload, list(action.needs), next_at, now, now)
