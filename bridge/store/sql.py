"""The Store protocol written once over SQL: each method one transaction of `bridge.store.statements`.

A driver (`sqlite.py`, `postgres.py`) says only how a transaction runs: `_write` for one that changes
something, `_read` for one that only reads. The ingest plan's steps are carried out here, once.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bridge.core.actions import Action
from bridge.core.calls import Call
from bridge.core.clock import from_epoch, to_epoch
from bridge.core.events import CallEvent
from bridge.core.presence import Agent
from bridge.core.router import Routing
from bridge.core.routing import Waiting
from bridge.store import (
    DONE,
    ActionRow,
    FiledRecording,
    Ingested,
    OutboxStats,
    Reducer,
    Router,
    action_row,
    filed_recording,
    routing_work,
)
from bridge.store import statements as s
from bridge.store.dialect import (
    Execute,
    ExecuteMany,
    Query,
    Statement,
    T,
    TextList,
    Work,
    execute,
    lock,
    query,
)
from bridge.store.plan import (
    Cancel,
    LoadCall,
    LoadRouting,
    MarkSeen,
    Plan,
    QueueActions,
    Revive,
    SaveCall,
    SaveEvent,
    SaveRouting,
    SettleDone,
    Step,
    ingest_plan,
)
from bridge.store.routing_rows import ParsedCalls, ParsedRows
from bridge.store.routing_work import Leased
from bridge.store.schema import MIGRATION_LOCK, MIGRATIONS
from bridge.store.statements import action_params

RECORDING_LINKS = "recording_links"  # the secrets row of the recording-link signing key


class States:
    """The call states this store last wrote, parsed, so the next event of a call skips the JSON parse.

    The stored text stays the truth: a state is reused only when the row holds exactly the text it was
    written as, so a write rolled back (the row kept its older text) or another instance's write is never
    mistaken for the state. A state handed to the state machine is changed in place, so it leaves the
    cache when loaded and comes back when written.
    """

    SIZE = 1024  # calls ringing or talking at once, far beyond; bounded so memory stays flat

    def __init__(self) -> None:
        """Start empty."""
        self._known: OrderedDict[str, tuple[str, Call]] = OrderedDict()

    def load(self, call_sid: str, text: str) -> Call:
        """Return the state stored as `text`: the parsed one when it is that text, else freshly parsed."""
        known = self._known.pop(call_sid, None)
        if known is not None and known[0] == text:
            return known[1]
        return Call.model_validate_json(text)

    def save(self, call: Call, text: str) -> None:
        """Remember the state written as `text` (a finished call is not asked for again)."""
        if call.finished:
            return
        self._known[call.sid] = (text, call)
        if len(self._known) > self.SIZE:
            self._known.popitem(last=False)


def carry_out(step: Step, now: float, states: States, parsed: ParsedRows, leased: Leased | None = None) -> Work[object]:
    """Run one step of the ingest plan with the store's statements; return what the plan asked for."""
    match step:
        case MarkSeen(key=key):
            return (yield Execute(s.MARK_SEEN, key=key, now=now)) == 1
        case SaveEvent(event=event):
            body = event.model_dump_json(exclude_none=True)
            yield Execute(s.SAVE_EVENT, call_sid=event.call_sid, kind=event.kind.value, body=body, now=now)
        case LoadCall(call_sid=call_sid):
            rows = yield Query(s.LOAD_CALL, call_sid=call_sid)
            return states.load(call_sid, rows[0][0]) if rows else None
        case SaveCall(call=call):
            text = call.model_dump_json()
            yield Execute(s.SAVE_CALL, call_sid=call.sid, state=text, finished=call.finished, now=now)
            states.save(call, text)
        case QueueActions(actions=actions):
            yield ExecuteMany(s.INSERT_ACTION, [action_params(action, now) for action in actions])
        case Revive(keys=keys):
            yield ExecuteMany(s.REVIVE_KEY, [{"key": key, "now": now} for key in keys])
        case Cancel(keys=keys):
            yield ExecuteMany(s.CANCEL_KEY, [{"key": key, "now": now} for key in keys])
        case SettleDone(action_id=action_id):
            yield Execute(s.SETTLE, id=action_id, status=DONE, result=None, error=None, now=now)
        case LoadRouting():
            return (yield from routing_work.load_routing(parsed))
        case SaveRouting(routing=routing):
            yield from routing_work.save_routing(routing, now, leased)
    return None


def _ingest(
    plan: Plan, call_sid: str, now: datetime, states: States, parsed: ParsedRows, leased: Leased | None
) -> Work[Ingested]:
    """Carry out the ingest plan of one event of `call_sid`, step by step."""
    # Events of one call may reach two instances at once: fold them one after the other.
    yield lock(call_sid)
    stamp = to_epoch(now)
    result: object = None
    while True:
        try:
            step = plan.send(result)
        except StopIteration as stop:
            ingested: Ingested = stop.value
            return ingested
        result = yield from carry_out(step, stamp, states, parsed, leased)


def _claim(now: datetime, limit: int, lease: float, urgent_only: bool, telephony: bool) -> Work[list[ActionRow]]:
    """Lease due actions whose dependencies are settled, urgent first, and count the attempt."""
    stamp = to_epoch(now)
    rows = yield Query(s.CLAIMABLE, now=stamp, limit=limit, urgent_only=urgent_only, telephony=telephony)
    claimed = [action_row(row) for row in rows]
    if claimed:
        yield ExecuteMany(s.LEASE, [{"until": stamp + lease, "id": row.id} for row in claimed])
    return claimed


def _version_write(number: int) -> Statement:
    """Return the statement recording schema version `number`."""
    return Statement(lambda d: d.version_write(number))


def _migrate() -> Work[int]:
    """Apply every migration not yet applied, in one transaction; return the resulting version."""
    yield lock(MIGRATION_LOCK)  # one instance migrates at a time
    yield Execute(s.VERSION_TABLE)
    yield Execute(s.VERSION_ROW)
    version = int((yield Query(s.VERSION_READ))[0][0])
    for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        for statement in migration:
            yield Execute(statement)
        yield Execute(_version_write(number))
    return len(MIGRATIONS)


def _schema_version() -> Work[int]:
    """Return the applied schema version (0 for an empty database)."""
    if not (yield Query(s.VERSION_KNOWN))[0][0]:
        return 0
    return int((yield Query(s.VERSION_READ))[0][0])


def _link_secret(candidate: bytes) -> Work[bytes]:
    """Keep `candidate` as the link secret unless one is kept; return the one kept."""
    yield Execute(s.KEEP_SECRET, name=RECORDING_LINKS, value=candidate.hex())
    rows = yield Query(s.READ_SECRET, name=RECORDING_LINKS)
    return bytes.fromhex(rows[0][0])


def _file_recording(recording: FiledRecording) -> Work[FiledRecording]:
    """File a recording unless filed before; return the filing that stands."""
    yield Execute(
        s.FILE_RECORDING,
        sid=recording.sid,
        account_sid=recording.account_sid,
        call_sid=recording.call_sid,
        media_url=recording.media_url,
        channels=recording.channels,
        filed_at=to_epoch(recording.filed_at),
    )
    rows = yield Query(s.READ_RECORDING, sid=recording.sid)
    return filed_recording(rows[0])


class SqlStore(ABC):
    """A Store over SQL; a driver says how a transaction runs (`_write`, `_read`)."""

    def __init__(self) -> None:
        """Start with no parsed states or routing rows, and no mover to hand moves to."""
        self._states = States()
        self._rows = ParsedRows()
        self._arrivals = ParsedCalls()  # the live view's reads of calls
        self._mover: tuple[float, Callable[[Sequence[ActionRow]], None]] | None = None

    def hand_over_moves(self, lease: float, take: Callable[[Sequence[ActionRow]], None]) -> None:
        """From now on, lease the moves this store's transactions decide, and hand them to `take` once committed."""
        self._mover = (lease, take)

    def _leasing(self) -> Leased | None:
        """Return where a transaction puts the moves it leases, when a mover takes them."""
        return Leased(self._mover[0]) if self._mover is not None else None

    def _hand_over(self, leased: Leased | None) -> None:
        """Give the committed transaction's leased moves to the mover."""
        if leased is not None and leased.rows and self._mover is not None:
            self._mover[1](leased.rows)

    @abstractmethod
    async def _write(self, work: Work[T]) -> T:
        """Run a transaction that changes something; return its result once committed."""

    @abstractmethod
    async def _read(self, work: Work[T]) -> T:
        """Run a transaction that only reads."""

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
        """Store an event unless a key was seen, fold it into its call, and queue the actions it causes."""
        plan = ingest_plan(keys, event, reduce, finish_action, router)
        leased = self._leasing()
        ingested = await self._write(_ingest(plan, event.call_sid, now, self._states, self._rows, leased))
        self._hand_over(leased)
        return ingested

    async def claim(
        self, now: datetime, limit: int, lease: float, *, urgent_only: bool = False, telephony: bool = False
    ) -> list[ActionRow]:
        """Lease due actions whose dependencies are settled, urgent ones first, then oldest first.

        `telephony` claims the moves of waiting callers (the telephony worker's) instead of Zendesk's actions.
        On PostgreSQL rows another instance's claim holds are skipped (SKIP LOCKED); a lease that ran out
        (its worker died) makes its action claimable again.
        """
        return await self._write(_claim(now, limit, lease, urgent_only, telephony))

    async def bring_forward(self, now: datetime) -> int:
        """Make every action waiting out a failure's backoff due now; return how many."""
        return await self._write(execute(s.BRING_FORWARD, now=to_epoch(now)))

    async def next_due(self, *, telephony: bool = False) -> datetime | None:
        """Return when the earliest pending action with settled dependencies becomes due (or its lease ends)."""
        rows = await self._read(query(s.NEXT_DUE, telephony=telephony))
        return from_epoch(rows[0][0]) if rows and rows[0][0] is not None else None

    async def results(self, keys: Sequence[str]) -> dict[str, ActionRow]:
        """Return the named actions."""
        if not keys:
            return {}
        rows = await self._read(query(s.ACTIONS_BY_KEY, keys=TextList(keys)))
        return {row["key"]: action_row(row) for row in rows}

    async def finish(
        self, action_id: int, status: str, *, result: dict[str, Any] | None, error: str | None, now: datetime
    ) -> None:
        """Settle an action as done, dead or dropped."""
        encoded = json.dumps(result) if result is not None else None
        stamp = to_epoch(now)
        await self._write(execute(s.SETTLE, id=action_id, status=status, result=encoded, error=error, now=stamp))

    async def retry_later(self, action_id: int, *, next_at: datetime, error: str, now: datetime) -> None:
        """Count a failed attempt and schedule the next."""
        await self._write(
            execute(s.RETRY_LATER, id=action_id, next_at=to_epoch(next_at), error=error, now=to_epoch(now))
        )

    async def update_result(self, key: str, result: dict[str, Any], *, now: datetime) -> None:
        """Replace a done action's result (a cached caller that Zendesk merged away)."""
        await self._write(execute(s.UPDATE_RESULT, key=key, result=json.dumps(result), now=to_epoch(now)))

    async def add_actions(self, actions: Sequence[Action], *, now: datetime) -> None:
        """Queue further actions."""
        stamp = to_epoch(now)
        await self._write(carry_out(QueueActions(tuple(actions)), stamp, self._states, self._rows))

    async def release(self, action_id: int) -> None:
        """Give a leased action back untouched."""
        await self._write(execute(s.RELEASE, id=action_id))

    async def stats(self, now: datetime) -> OutboxStats:
        """Count pending and dead actions."""
        (row,) = await self._read(query(s.STATS))
        oldest = row["oldest"]
        return OutboxStats(
            pending=int(row["pending"]),
            dead=int(row["dead"]),
            oldest_pending_age=max(0.0, to_epoch(now) - oldest) if oldest is not None else None,
        )

    async def list_actions(self, statuses: Sequence[str], limit: int = 100) -> list[ActionRow]:
        """List actions in the given statuses, newest first."""
        rows = await self._read(query(s.LIST_ACTIONS, statuses=TextList(statuses), limit=limit))
        return [action_row(row) for row in rows]

    async def revive(self, action_id: int, now: datetime) -> bool:
        """Make a dead or dropped action pending again, due now, with a fresh age."""
        return await self._write(execute(s.REVIVE, id=action_id, now=to_epoch(now))) == 1

    async def drop(self, action_id: int, now: datetime, reason: str) -> bool:
        """Give up on a pending or dead action."""
        return await self._write(execute(s.DROP, id=action_id, reason=reason, now=to_epoch(now))) == 1

    async def stale_calls(self, before: datetime, limit: int) -> list[str]:
        """Return calls with no final outcome whose last event is older than `before`."""
        rows = await self._read(query(s.STALE_CALLS, before=to_epoch(before), limit=limit))
        return [row[0] for row in rows]

    async def touch_call(self, call_sid: str, now: datetime) -> None:
        """Postpone a call's next reconciliation."""
        await self._write(execute(s.TOUCH_CALL, call_sid=call_sid, now=to_epoch(now)))

    async def forget_seen(self, before: datetime, limit: int) -> int:
        """Forget up to `limit` dedupe keys first seen before `before`; return how many."""
        return await self._write(execute(s.FORGET_SEEN, before=to_epoch(before), limit=limit))

    async def get_call(self, call_sid: str) -> Call | None:
        """Return a call's state."""
        rows = await self._read(query(s.LOAD_CALL, call_sid=call_sid))
        return Call.model_validate_json(rows[0][0]) if rows else None

    async def calls_arrived(self, start: datetime, end: datetime) -> list[tuple[datetime, Call]]:
        """Return the calls the bridge first heard of in [start, end), with that moment, oldest first."""
        rows = await self._read(query(s.CALLS_ARRIVED, start=to_epoch(start), end=to_epoch(end)))
        calls = self._arrivals.calls((row[0], row[2]) for row in rows)
        return [(from_epoch(row[1]), call) for row, call in zip(rows, calls, strict=True)]

    async def count_events(self) -> int:
        """Count stored webhook events."""
        return int((await self._read(query(s.COUNT_EVENTS)))[0][0])

    async def link_secret(self, candidate: bytes) -> bytes:
        """Return the recording-link signing secret, keeping `candidate` if none was stored before."""
        return await self._write(_link_secret(candidate))

    async def file_recording(self, recording: FiledRecording) -> FiledRecording:
        """Remember a recording the bridge links to (a second filing keeps the first); return it."""
        return await self._write(_file_recording(recording))

    async def filed_recording(self, sid: str) -> FiledRecording | None:
        """Return a filed recording by its RecordingSid."""
        rows = await self._read(query(s.READ_RECORDING, sid=sid))
        return filed_recording(rows[0]) if rows else None

    async def save_upload(self, sid: str, token: str, url: str, *, now: datetime) -> None:
        """Remember the Zendesk upload that holds a filed recording."""
        await self._write(execute(s.SAVE_UPLOAD, sid=sid, token=token, url=url, now=to_epoch(now)))

    async def schema_version(self) -> int:
        """Return the applied schema version (0 for an empty database)."""
        return await self._read(_schema_version())

    async def migrate(self) -> int:
        """Apply pending migrations, one instance at a time; return the resulting version."""
        return await self._write(_migrate())

    async def add_agents(self, agents: Mapping[str, int], now: datetime) -> None:
        """Give every configured agent a presence row (available) unless they have one; keep their Zendesk id."""
        if agents:
            await self._write(routing_work.add_agents(agents, now, self._rows))

    async def agents(self) -> list[Agent]:
        """Return every agent's presence row."""
        rows = await self._read(query(s.LOAD_AGENTS))
        return list(self._rows.agents((row["identity"], row["state"]) for row in rows))

    async def change_agent(
        self, identity: str, change: Callable[[Agent], Agent], router: Router
    ) -> tuple[Agent, Routing] | None:
        """Change one agent's presence and match the queue again, in one transaction (None: no such agent)."""
        leased = self._leasing()
        changed = await self._write(
            routing_work.change_agent(identity, change, router, to_epoch(router.now), self._rows, leased)
        )
        self._hand_over(leased)
        return changed

    async def rematch(self, router: Router) -> Routing:
        """Match the queue against the free agents now (time freed one: a wrap-up ended, a hold ran out)."""
        if not await self._read(query(s.ANY_WAITING)):
            return Routing()  # nobody waits: no write (on SQLite, no commit to wait for every sweep)
        leased = self._leasing()
        routing = await self._write(routing_work.rematch(router, to_epoch(router.now), self._rows, leased))
        self._hand_over(leased)
        return routing

    async def waiting(self) -> list[Waiting]:
        """Return every caller waiting in the queue."""
        rows = await self._read(query(s.LOAD_WAITING))
        return list(self._rows.waiting(row["state"] for row in rows))

    async def claim_callback(
        self, call_sid: str, turn: int, agent: str, now: datetime, hold: float, interval: float
    ) -> bool | datetime:
        """Decide whether a callback's turn places its call now: True, False (stale: never), or when to ask again."""
        claimed = await self._write(
            routing_work.claim_callback(call_sid, turn, agent, to_epoch(now), hold, interval, self._rows)
        )
        return claimed if isinstance(claimed, bool) else from_epoch(claimed)

    async def pace(self, now: datetime, interval: float) -> datetime | None:
        """Take the account's next slot for a call the bridge places (None), or say when it is free."""
        slot = await self._write(routing_work.pace(to_epoch(now), interval))
        return from_epoch(slot) if slot is not None else None

    async def announce(
        self, call_sid: str, every: float, now: datetime, aging: float = 0.0
    ) -> tuple[int | None, bool, datetime | None]:
        """Return the caller's place in line, whether it is due to be said (then noted as said), and their arrival."""
        return await self._write(routing_work.announce(call_sid, every, to_epoch(now), self._rows, aging))

    async def ping(self) -> None:
        """Answer a trivial query (readiness)."""
        await self._read(query(s.PING))
