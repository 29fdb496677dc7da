"""The Store protocol: durable call state, webhook dedupe and the outbox of actions."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bridge.core.action_codec import decode
from bridge.core.actions import Action, ActionKind, DisplayTicket, DisplayUser
from bridge.core.calls import Call, Outcome
from bridge.core.clock import from_epoch
from bridge.core.events import CallEvent
from bridge.core.presence import Agent
from bridge.core.router import Routing, Snapshot
from bridge.core.routing import Waiting

Reducer = Callable[[Call | None, CallEvent], Outcome]

PENDING, DONE, DEAD, DROPPED = "pending", "done", "dead", "dropped"
# How long a dedupe key is kept: Twilio's retries of a callback come within minutes, and a replay of a
# captured request is caught for a day, so replays cannot grow the table without bound.
DEDUPE_WINDOW = timedelta(hours=24)


# The one rule of urgency: what matters only while a phone rings (a pop, the look-up it needs, a popping
# create). Claims take these first and spend the limiter's reserve on them. `is_urgent` reads it here and
# the stores' SQL is derived from it (`bridge.store.statements.urgent`), so there is no stored column.
URGENT_KINDS = frozenset(
    {ActionKind.FIND_CALLER, ActionKind.DISPLAY_USER, ActionKind.DISPLAY_TICKET, ActionKind.LOOK_UP_CUSTOMER}
)
# Urgent when this field is set: the action's attribute, stored under the same key of its payload.
URGENT_WHEN_SET: Mapping[ActionKind, str] = {ActionKind.CREATE_TICKET: "display_to_agent"}


def is_urgent(action: Action) -> bool:
    """Tell whether an action matters only while a phone rings (the rule above)."""
    if action.kind in URGENT_KINDS:
        return True
    field = URGENT_WHEN_SET.get(action.kind)
    return field is not None and getattr(action, field) is not None


def is_pop(action: Action) -> bool:
    """Tell whether an action is a screen-pop, worth something only while its call rings (POP_DEADLINE_SECONDS)."""
    return isinstance(action, DisplayUser | DisplayTicket)


def lapses(action: Action) -> bool:
    """Tell whether an action is dropped past POP_DEADLINE_SECONDS: a pop, or the look-up routing reads.

    A look-up still retried after an outage would otherwise go out, urgent and oldest first, ahead of the pops
    of calls ringing then, for calls long answered; the call routes on what it knew meanwhile.
    """
    return is_pop(action) or action.kind == ActionKind.LOOK_UP_CUSTOMER


@dataclass(frozen=True)
class ActionRow:
    """An action as the outbox holds it."""

    id: int
    action: Action
    needs: tuple[str, ...]
    status: str
    attempts: int
    next_at: datetime
    created_at: datetime
    last_error: str | None
    result: dict[str, Any] | None

    @property
    def key(self) -> str:
        """Return the action's unique key."""
        return self.action.key

    @property
    def kind(self) -> str:
        """Return the action's kind, as stored."""
        return self.action.kind.value

    @property
    def call_sid(self) -> str:
        """Return the call the action belongs to."""
        return self.action.call_sid

    @property
    def urgent(self) -> bool:
        """Tell whether the action is time-critical (claimed first, spends the limiter's reserve)."""
        return is_urgent(self.action)


@dataclass(frozen=True)
class Ingested:
    """What storing one webhook did."""

    duplicate: bool
    outcome: Outcome | None  # None for a duplicate: nothing was changed
    routing: Routing | None = None  # what routing decided in the same transaction, when the call asked


class Router(Protocol):
    """Routing bound to its settings and to one moment, as a store transaction asks it."""

    @property
    def now(self) -> datetime:
        """Return the moment the decisions are made at."""
        ...

    def decide(self, outcome: Outcome, event: CallEvent, snapshot: Snapshot) -> Routing:
        """Decide what the call's event calls for: its agents' presence, its routing, and the queue's."""
        ...

    def changes(self, outcome: Outcome, snapshot: Snapshot) -> dict[str, Agent]:
        """Return the agents whose presence the outcome of folding a routing decision moves."""
        ...

    def rematch(self, snapshot: Snapshot) -> Routing:
        """Offer the free agents to the callers waiting in the queue (time or a status change freed one)."""
        ...


@dataclass(frozen=True)
class OutboxStats:
    """How much work is waiting, for /healthz and the CLI."""

    pending: int
    dead: int
    oldest_pending_age: float | None


@dataclass(frozen=True)
class FiledRecording:
    """A recording the bridge linked in a voice comment: the only kind its recording links may fetch."""

    sid: str  # RE…
    account_sid: str  # AC…, whose credentials fetch it
    call_sid: str
    media_url: str  # Twilio's RecordingUrl, as its signed webhook gave it
    channels: int  # 2 for a dual-channel conversation, 1 for a voicemail
    filed_at: datetime
    upload_token: str | None = None  # RECORDINGS=zendesk: the Zendesk upload holding the file
    upload_url: str | None = None  # its attachment's content_url
    uploaded_at: datetime | None = None


class Store(Protocol):
    """Everything the bridge keeps; each method is one transaction."""

    async def ingest(
        self,
        keys: Sequence[str],
        event: CallEvent,
        reduce: Reducer,
        *,
        now: datetime,
        finish_action: int | None = None,
        router: Router | None = None,
    ) -> Ingested:
        """Store an event unless a key was seen, fold it into its call, and queue the actions it causes.

        With a `router`, what the call asks of routing is decided in the same transaction.
        """
        ...

    async def add_agents(self, agents: Mapping[str, int], now: datetime) -> None:
        """Give every configured agent a presence row (available) unless they have one; keep their Zendesk id."""
        ...

    async def agents(self) -> list[Agent]:
        """Return every agent's presence row."""
        ...

    async def change_agent(
        self, identity: str, change: Callable[[Agent], Agent], router: Router
    ) -> tuple[Agent, Routing] | None:
        """Change one agent's presence and match the queue again, in one transaction (None: no such agent)."""
        ...

    async def rematch(self, router: Router) -> Routing:
        """Match the queue against the free agents now (time freed one: a wrap-up ended, a hold ran out)."""
        ...

    def hand_over_moves(self, lease: float, take: Callable[[Sequence[ActionRow]], None]) -> None:
        """From now on, lease the moves this store's transactions decide, and hand them to `take` once committed.

        An instance with a mover sends its own decisions at once; a process without one (`bridge agents set`)
        leaves its moves unleased, for an instance's mover to claim.
        """
        ...

    async def waiting(self) -> list[Waiting]:
        """Return every caller waiting in the queue."""
        ...

    async def claim_callback(
        self, call_sid: str, turn: int, agent: str, now: datetime, hold: float, interval: float
    ) -> bool | datetime:
        """Decide whether a callback's turn places its call now: True, False (stale: never), or when to ask again."""
        ...

    async def pace(self, now: datetime, interval: float) -> datetime | None:
        """Take the account's next slot for a call the bridge places (None), or say when it is free."""
        ...

    async def announce(
        self, call_sid: str, every: float, now: datetime, aging: float = 0.0
    ) -> tuple[int | None, bool, datetime | None]:
        """Return the caller's place in line, whether it is due to be said (then noted as said), and their arrival.

        `aging` is PRIORITY_AGING_SECONDS: an ordinary caller who waited that long ranks as a priority one.
        """
        ...

    async def claim(
        self, now: datetime, limit: int, lease: float, *, urgent_only: bool = False, telephony: bool = False
    ) -> list[ActionRow]:
        """Lease due actions whose dependencies are settled, urgent ones first, then oldest first."""
        ...

    async def bring_forward(self, now: datetime) -> int:
        """Make every action waiting out a failure's backoff due now (Zendesk answers again); return how many."""
        ...

    async def next_due(self, *, telephony: bool = False) -> datetime | None:
        """Return when the earliest pending action becomes due."""
        ...

    async def results(self, keys: Sequence[str]) -> dict[str, ActionRow]:
        """Return the named actions (to read the results their dependants need)."""
        ...

    async def finish(
        self, action_id: int, status: str, *, result: dict[str, Any] | None, error: str | None, now: datetime
    ) -> None:
        """Settle an action as done, dead or dropped."""
        ...

    async def retry_later(self, action_id: int, *, next_at: datetime, error: str, now: datetime) -> None:
        """Count a failed attempt and schedule the next."""
        ...

    async def update_result(self, key: str, result: dict[str, Any], *, now: datetime) -> None:
        """Replace a done action's result."""
        ...

    async def add_actions(self, actions: Sequence[Action], *, now: datetime) -> None:
        """Queue further actions (follow-ups decided by the worker)."""
        ...

    async def release(self, action_id: int) -> None:
        """Give a leased action back untouched (the worker is stopping)."""
        ...

    async def stats(self, now: datetime) -> OutboxStats:
        """Count pending and dead actions."""
        ...

    async def list_actions(self, statuses: Sequence[str], limit: int = 100) -> list[ActionRow]:
        """List actions in the given statuses, newest first."""
        ...

    async def revive(self, action_id: int, now: datetime) -> bool:
        """Make a dead or dropped action pending again, due now."""
        ...

    async def drop(self, action_id: int, now: datetime, reason: str) -> bool:
        """Give up on a pending or dead action."""
        ...

    async def stale_calls(self, before: datetime, limit: int) -> list[str]:
        """Return calls with no final outcome whose last event is older than `before`."""
        ...

    async def touch_call(self, call_sid: str, now: datetime) -> None:
        """Postpone a call's next reconciliation."""
        ...

    async def forget_seen(self, before: datetime, limit: int) -> int:
        """Forget up to `limit` dedupe keys first seen before `before`; return how many."""
        ...

    async def get_call(self, call_sid: str) -> Call | None:
        """Return a call's state."""
        ...

    async def calls_arrived(self, start: datetime, end: datetime) -> list[tuple[datetime, Call]]:
        """Return the calls the bridge first heard of in [start, end), with that moment, oldest first."""
        ...

    async def count_events(self) -> int:
        """Count stored webhook events."""
        ...

    async def link_secret(self, candidate: bytes) -> bytes:
        """Return the recording-link signing secret, keeping `candidate` if none was stored before."""
        ...

    async def file_recording(self, recording: FiledRecording) -> FiledRecording:
        """Remember a recording the bridge links to (once; a second filing keeps the first); return it."""
        ...

    async def filed_recording(self, sid: str) -> FiledRecording | None:
        """Return a filed recording by its RecordingSid."""
        ...

    async def save_upload(self, sid: str, token: str, url: str, *, now: datetime) -> None:
        """Remember the Zendesk upload that holds a filed recording."""
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


class RowLike(Protocol):
    """A database row read by column name (sqlite3.Row, asyncpg.Record)."""

    def __getitem__(self, key: str, /) -> Any:
        """Return a column's value."""
        ...


def action_row(row: RowLike) -> ActionRow:
    """Turn a database row (SQLite keeps `needs` as JSON text, PostgreSQL as an array) into an ActionRow."""
    needs = row["needs"]
    next_at = from_epoch(row["next_at"])
    return ActionRow(
        id=row["id"],
        action=decode(row["kind"], row["key"], row["call_sid"], json.loads(row["payload"]), next_at),
        needs=tuple(json.loads(needs) if isinstance(needs, str) else needs),
        status=row["status"],
        attempts=row["attempts"],
        next_at=next_at,
        created_at=from_epoch(row["created_at"]),
        last_error=row["last_error"],
        result=json.loads(row["result"]) if row["result"] else None,
    )


def filed_recording(row: RowLike) -> FiledRecording:
    """Turn a `recordings` row into a FiledRecording."""
    uploaded = row["uploaded_at"]
    return FiledRecording(
        sid=row["sid"],
        account_sid=row["account_sid"],
        call_sid=row["call_sid"],
        media_url=row["media_url"],
        channels=int(row["channels"]),
        filed_at=from_epoch(row["filed_at"]),
        upload_token=row["upload_token"],
        upload_url=row["upload_url"],
        uploaded_at=from_epoch(uploaded) if uploaded is not None else None,
    )
