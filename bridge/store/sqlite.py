"""The SQLite store (aiosqlite, WAL): the default for one instance."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import aiosqlite

from bridge.core.actions import Action
from bridge.core.calls import Call
from bridge.core.clock import from_epoch, to_epoch
from bridge.core.events import CallEvent
from bridge.store import (
    DEAD,
    DONE,
    DROPPED,
    PENDING,
    ActionRow,
    FiledRecording,
    Ingested,
    OutboxStats,
    Reducer,
    action_row,
    action_values,
    filed_recording,
)
from bridge.store.plan import (
    Cancel,
    LoadCall,
    MarkSeen,
    Plan,
    QueueActions,
    Revive,
    SaveCall,
    SaveEvent,
    SettleDone,
    Step,
    ingest_plan,
)

# Each entry is one schema version; never edit a released one, append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE seen (key TEXT PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        call_sid TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at REAL NOT NULL
    );
    CREATE INDEX events_by_call ON events (call_sid);
    CREATE TABLE calls (
        call_sid TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        finished INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE actions (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        call_sid TEXT NOT NULL,
        payload TEXT NOT NULL,
        needs TEXT NOT NULL DEFAULT '[]',
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL,
        lease_until REAL NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        last_error TEXT,
        result TEXT
    );
    CREATE INDEX actions_due ON actions (status, next_at);
    CREATE INDEX actions_by_call ON actions (call_sid);
    """,
    # v2: reconciliation looks for unfinished calls by age on every round.
    """
    CREATE INDEX calls_unfinished ON calls (finished, updated_at);
    """,
    # v3: recording links. Only recordings filed here may be fetched through the bridge, and the signing
    # secret lives in the database so links outlive restarts, redeploys and a rotated Twilio token.
    """
    CREATE TABLE recordings (
        sid TEXT PRIMARY KEY,
        account_sid TEXT NOT NULL,
        call_sid TEXT NOT NULL,
        media_url TEXT NOT NULL,
        channels INTEGER NOT NULL DEFAULT 1,
        filed_at REAL NOT NULL,
        upload_token TEXT,
        upload_url TEXT,
        uploaded_at REAL
    ) WITHOUT ROWID;
    CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    """,
    # v4: dedupe keys are forgotten after a day, oldest first.
    """
    CREATE INDEX seen_by_age ON seen (at);
    """,
]

# A dependency still pending, looked up by its unique key: joined on status instead, the planner scans every
# pending row for every candidate, and a backlog of 2,000 made each claim take a second.
_WAITING_ON = """SELECT 1 FROM json_each(a.needs) AS n
    WHERE (SELECT d.status FROM actions AS d WHERE d.key = n.value) = 'pending'"""
# bridge.store.is_urgent in SQL: derived from the kind (and a create's pop), so no column or migration.
_URGENT = """(a.kind IN ('find_caller', 'display_user', 'display_ticket')
    OR (a.kind = 'create_ticket' AND json_extract(a.payload, '$.display_to_agent') IS NOT NULL))"""
_CLAIMABLE = f"""
    SELECT * FROM actions AS a
    WHERE a.status = 'pending' AND a.next_at <= :now AND a.lease_until <= :now
      AND (:urgent_only = 0 OR {_URGENT})
      AND NOT EXISTS ({_WAITING_ON})
    ORDER BY {_URGENT} DESC, a.next_at, a.id
    LIMIT :limit
"""
_BRING_FORWARD = """
    UPDATE actions SET next_at = :now, updated_at = :now
    WHERE status = 'pending' AND next_at > :now AND kind != 'timer' AND last_error IS NOT NULL
"""
_INSERT_ACTION = """
    INSERT INTO actions (key, kind, call_sid, payload, needs, next_at, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING
"""
_REVIVE = """
    UPDATE actions SET status = 'pending', next_at = :now, created_at = :now, lease_until = 0, updated_at = :now
    WHERE key = :key AND status IN ('dead', 'dropped')
"""
_CANCEL = """
    UPDATE actions SET status = 'dropped', last_error = 'no longer needed', updated_at = :now
    WHERE key = :key AND status = 'pending'
"""
_SAVE_CALL = """
    INSERT INTO calls (call_sid, state, finished, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (call_sid) DO UPDATE SET state = excluded.state, finished = excluded.finished,
    updated_at = excluded.updated_at
"""
_SETTLE = """UPDATE actions SET status = ?, result = ?, last_error = COALESCE(?, last_error), lease_until = 0,
               updated_at = ? WHERE id = ?"""


def _action_params(action: Action, now: datetime) -> tuple[Any, ...]:
    """Return the INSERT parameters of a new action (SQLite keeps `needs` as JSON text)."""
    key, kind, call_sid, payload, needs, next_at, created, updated = action_values(action, now)
    return (key, kind, call_sid, payload, json.dumps(needs), next_at, created, updated)


@dataclass
class _Pending:
    """Write work (a webhook's ingest, a claim, a settle) waiting for its batch's commit."""

    work: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]


class _States:
    """The call states this store last wrote, parsed, so the next event of a call skips the JSON parse.

    The stored text stays the truth: a state is reused only when the row holds exactly the text it was
    written as, so a write rolled back (the row kept its older text) is never mistaken for the state. A
    state handed to the state machine is changed in place, so it leaves the cache when loaded and comes
    back when written.
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


def _write_batch(connection: Callable[[], sqlite3.Connection], batch: list[_Pending]) -> list[Any]:
    """Run a batch of writes in one transaction, each in its own savepoint; return each one's result or error."""
    conn = connection()
    results: list[Any] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for item in batch:
            conn.execute("SAVEPOINT work")
            try:
                results.append(item.work(conn))
            except Exception as exc:  # this write fails alone; the batch goes on
                conn.execute("ROLLBACK TO work")
                results.append(exc)
            conn.execute("RELEASE work")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results


def _run_plan(conn: sqlite3.Connection, states: _States, plan: Plan, now: datetime) -> Ingested:
    """Carry out the ingest plan's steps with this store's statements (inside the batch)."""
    result: object = None
    try:
        while True:
            result = _execute(conn, states, plan.send(result), now)
    except StopIteration as stop:
        return cast(Ingested, stop.value)


def _execute(conn: sqlite3.Connection, states: _States, step: Step, moment: datetime) -> object:
    """Run one step of the ingest plan; return what the plan asked for."""
    now = to_epoch(moment)
    match step:
        case MarkSeen(key=key):
            inserted = conn.execute("INSERT INTO seen (key, at) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, now))
            return inserted.rowcount == 1
        case SaveEvent(event=event):
            conn.execute(
                "INSERT INTO events (call_sid, kind, body, received_at) VALUES (?, ?, ?, ?)",
                (event.call_sid, event.kind.value, event.model_dump_json(exclude_none=True), now),
            )
        case LoadCall(call_sid=call_sid):
            row = conn.execute("SELECT state FROM calls WHERE call_sid = ?", (call_sid,)).fetchone()
            return states.load(call_sid, row[0]) if row else None
        case SaveCall(call=call):
            text = call.model_dump_json()
            conn.execute(_SAVE_CALL, (call.sid, text, int(call.finished), now, now))
            states.save(call, text)
        case QueueActions(actions=actions):
            conn.executemany(_INSERT_ACTION, [_action_params(a, moment) for a in actions])
        case Revive(keys=keys):
            conn.executemany(_REVIVE, [{"key": key, "now": now} for key in keys])
        case Cancel(keys=keys):
            conn.executemany(_CANCEL, [{"key": key, "now": now} for key in keys])
        case SettleDone(action_id=action_id):
            conn.execute(_SETTLE, (DONE, None, None, now, action_id))
    return None


class SqliteStore:
    """A Store on one SQLite file; one connection, transactions serialised by a lock."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        """Wrap an open connection (use `open_sqlite`)."""
        self._db = db
        self._lock = asyncio.Lock()
        self._queue: list[_Pending] = []
        self._states = _States()  # only the batch writer touches it, one batch at a time
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: str, *, migrate: bool = True) -> SqliteStore:
        """Open (creating if needed) the database file, in WAL mode with durable commits."""
        db = await aiosqlite.connect(path, isolation_level=None)
        db.row_factory = aiosqlite.Row
        # WAL lets readers run beside the writer; synchronous=FULL makes every acknowledged webhook
        # survive a power cut, not only a process crash.
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute("PRAGMA busy_timeout=5000")
        store = cls(db)
        if migrate:
            await store.migrate()
        return store

    async def schema_version(self) -> int:
        """Return the applied schema version (0 for an empty file)."""
        async with self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self) -> int:
        """Apply every migration not yet applied; return the resulting version."""
        async with self._lock:
            version = await self.schema_version()
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                statements = [part.strip() for part in script.split(";") if part.strip()]
                await self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in statements:
                        await self._db.execute(statement)
                    await self._db.execute(f"PRAGMA user_version={number}")
                    await self._db.execute("COMMIT")
                except BaseException:
                    await self._db.execute("ROLLBACK")
                    raise
            return len(MIGRATIONS)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run a write transaction, taking the write lock up front (BEGIN IMMEDIATE)."""
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def ingest(
        self,
        keys: Sequence[str],
        event: CallEvent,
        reduce: Reducer,
        *,
        now: datetime,
        finish_action: int | None = None,
    ) -> Ingested:
        """Store an event unless a key was seen, fold it into its call, and queue the actions it causes.

        Concurrent webhooks are committed together (group commit): each waits for the one durable
        commit of its batch, so an fsync is shared instead of paid per webhook. Each webhook keeps its
        own savepoint, so one that fails rolls back alone.
        """
        plan = ingest_plan(keys, event, reduce, finish_action)
        return cast(Ingested, await self._write(lambda conn: _run_plan(conn, self._states, plan, now)))

    async def _write(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `work` in the next batch's transaction (group commit) and return its result once committed.

        The outbox's claims and settles go this way too: each was its own transaction, a durable commit
        and four or five hops into the connection's thread, and every webhook's batch queued behind them.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(work, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches())
        return await future

    async def _read(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run a read in the connection's thread in one hop (statement and fetch together)."""
        return await cast(Any, self._db)._execute(work, self._raw())

    async def _write_batches(self) -> None:
        """Commit queued writes batch by batch until none are left."""
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                async with self._lock:
                    # One hop into the connection's thread for the whole batch (aiosqlite's own executor).
                    results = await cast(Any, self._db)._execute(_write_batch, self._raw, batch)
            except BaseException as exc:
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for item, result in zip(batch, results, strict=True):
                if item.future.done():  # its caller was cancelled (shutdown); the commit stands
                    continue
                if isinstance(result, BaseException):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)

    def _raw(self) -> sqlite3.Connection:
        """Return the underlying connection (called inside the connection's own thread)."""
        return cast(sqlite3.Connection, cast(Any, self._db)._conn)

    async def claim(self, now: datetime, limit: int, lease: float, *, urgent_only: bool = False) -> list[ActionRow]:
        """Lease due actions whose dependencies are settled, urgent ones first, then oldest first."""
        stamp = to_epoch(now)
        params = {"now": stamp, "limit": limit, "urgent_only": int(urgent_only)}

        def work(conn: sqlite3.Connection) -> list[ActionRow]:
            rows = [action_row(row) for row in conn.execute(_CLAIMABLE, params).fetchall()]
            if rows:
                # Counting the attempt when it starts, not when it fails, is what lets a delivery after a
                # crash mid-request know that the request may already have reached Zendesk.
                conn.executemany(
                    "UPDATE actions SET lease_until = ?, attempts = attempts + 1 WHERE id = ?",
                    [(stamp + lease, row.id) for row in rows],
                )
            return rows

        return cast(list[ActionRow], await self._write(work))

    async def bring_forward(self, now: datetime) -> int:
        """Make every action waiting out a failure's backoff due now; return how many."""
        async with self._transaction() as db:
            cursor = await db.execute(_BRING_FORWARD, {"now": to_epoch(now)})
            return cursor.rowcount

    async def next_due(self) -> datetime | None:
        """Return when the earliest pending action with settled dependencies becomes due (or its lease ends)."""
        query = f"""SELECT MIN(MAX(a.next_at, a.lease_until)) FROM actions AS a WHERE a.status = 'pending'
               AND NOT EXISTS ({_WAITING_ON})"""
        row = await self._read(lambda conn: conn.execute(query).fetchone())
        return from_epoch(row[0]) if row and row[0] is not None else None

    async def results(self, keys: Sequence[str]) -> dict[str, ActionRow]:
        """Return the named actions."""
        if not keys:
            return {}
        query = f"SELECT * FROM actions WHERE key IN ({','.join('?' for _ in keys)})"
        rows = await self._read(lambda conn: conn.execute(query, tuple(keys)).fetchall())
        return {row["key"]: action_row(row) for row in rows}

    async def finish(
        self, action_id: int, status: str, *, result: dict[str, Any] | None, error: str | None, now: datetime
    ) -> None:
        """Settle an action as done, dead or dropped."""
        params = (status, json.dumps(result) if result is not None else None, error, to_epoch(now), action_id)
        await self._write(lambda conn: conn.execute(_SETTLE, params))

    async def retry_later(self, action_id: int, *, next_at: datetime, error: str, now: datetime) -> None:
        """Count a failed attempt and schedule the next."""
        params = (to_epoch(next_at), error, to_epoch(now), action_id)
        await self._write(
            lambda conn: conn.execute(
                "UPDATE actions SET next_at = ?, last_error = ?, lease_until = 0, updated_at = ? WHERE id = ?", params
            )
        )

    async def update_result(self, key: str, result: dict[str, Any], *, now: datetime) -> None:
        """Replace a done action's result (a cached caller that Zendesk merged away)."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE actions SET result = ?, updated_at = ? WHERE key = ?", (json.dumps(result), to_epoch(now), key)
            )

    async def release_leases(self) -> None:
        """Free every lease: at start-up, the process that held them is gone."""
        async with self._transaction() as db:
            await db.execute("UPDATE actions SET lease_until = 0 WHERE status = 'pending' AND lease_until > 0")

    async def add_actions(self, actions: Sequence[Action], *, now: datetime) -> None:
        """Queue further actions."""
        params = [_action_params(a, now) for a in actions]
        await self._write(lambda conn: conn.executemany(_INSERT_ACTION, params))

    async def release(self, action_id: int) -> None:
        """Give a leased action back untouched."""
        await self._write(lambda conn: conn.execute("UPDATE actions SET lease_until = 0 WHERE id = ?", (action_id,)))

    async def stats(self, now: datetime) -> OutboxStats:
        """Count pending and dead actions."""
        async with self._db.execute(
            """SELECT SUM(status = 'pending'), SUM(status = 'dead'),
                      MIN(CASE WHEN status = 'pending' THEN created_at END) FROM actions"""
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        oldest = row[2]
        return OutboxStats(
            pending=int(row[0] or 0),
            dead=int(row[1] or 0),
            oldest_pending_age=max(0.0, to_epoch(now) - oldest) if oldest is not None else None,
        )

    async def list_actions(self, statuses: Sequence[str], limit: int = 100) -> list[ActionRow]:
        """List actions in the given statuses, newest first."""
        marks = ",".join("?" for _ in statuses)
        async with self._db.execute(
            f"SELECT * FROM actions WHERE status IN ({marks}) ORDER BY id DESC LIMIT ?", (*statuses, limit)
        ) as cursor:
            return [action_row(row) for row in await cursor.fetchall()]

    async def revive(self, action_id: int, now: datetime) -> bool:
        """Make a dead or dropped action pending again, due now, with a fresh age."""
        stamp = to_epoch(now)
        async with self._transaction() as db:
            cursor = await db.execute(
                """UPDATE actions SET status = 'pending', next_at = ?, created_at = ?, lease_until = 0,
                   updated_at = ? WHERE id = ? AND status IN (?, ?)""",
                (stamp, stamp, stamp, action_id, DEAD, DROPPED),
            )
            return cursor.rowcount == 1

    async def drop(self, action_id: int, now: datetime, reason: str) -> bool:
        """Give up on a pending or dead action."""
        async with self._transaction() as db:
            cursor = await db.execute(
                """UPDATE actions SET status = 'dropped', last_error = ?, updated_at = ?
                   WHERE id = ? AND status IN (?, ?)""",
                (reason, to_epoch(now), action_id, PENDING, DEAD),
            )
            return cursor.rowcount == 1

    async def get_call(self, call_sid: str) -> Call | None:
        """Return a call's state."""
        async with self._db.execute("SELECT state FROM calls WHERE call_sid = ?", (call_sid,)) as cursor:
            row = await cursor.fetchone()
        return Call.model_validate_json(row["state"]) if row else None

    async def stale_calls(self, before: datetime, limit: int) -> list[str]:
        """Return calls with no final outcome whose last event is older than `before`."""
        async with self._db.execute(
            "SELECT call_sid FROM calls WHERE finished = 0 AND updated_at < ? ORDER BY updated_at LIMIT ?",
            (to_epoch(before), limit),
        ) as cursor:
            return [row[0] for row in await cursor.fetchall()]

    async def touch_call(self, call_sid: str, now: datetime) -> None:
        """Postpone a call's next reconciliation."""
        async with self._transaction() as db:
            await db.execute("UPDATE calls SET updated_at = ? WHERE call_sid = ?", (to_epoch(now), call_sid))

    async def forget_seen(self, before: datetime, limit: int) -> int:
        """Forget up to `limit` dedupe keys first seen before `before`; return how many."""
        params = (to_epoch(before), limit)
        query = "DELETE FROM seen WHERE key IN (SELECT key FROM seen WHERE at < ? LIMIT ?)"
        return cast(int, await self._write(lambda conn: conn.execute(query, params).rowcount))

    async def link_secret(self, candidate: bytes) -> bytes:
        """Return the recording-link signing secret, keeping `candidate` if none was stored before."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO secrets (name, value) VALUES ('recording_links', ?) ON CONFLICT DO NOTHING",
                (candidate.hex(),),
            )
            async with db.execute("SELECT value FROM secrets WHERE name = 'recording_links'") as cursor:
                row = await cursor.fetchone()
        assert row is not None
        return bytes.fromhex(row[0])

    async def file_recording(self, recording: FiledRecording) -> FiledRecording:
        """Remember a recording the bridge links to (a second filing keeps the first); return it."""
        async with self._transaction() as db:
            await db.execute(
                """INSERT INTO recordings (sid, account_sid, call_sid, media_url, channels, filed_at)
                   VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sid) DO NOTHING""",
                (recording.sid, recording.account_sid, recording.call_sid, recording.media_url, recording.channels,
                 to_epoch(recording.filed_at)),
            )  # fmt: skip
            async with db.execute("SELECT * FROM recordings WHERE sid = ?", (recording.sid,)) as cursor:
                row = await cursor.fetchone()
        assert row is not None
        return filed_recording(row)

    async def filed_recording(self, sid: str) -> FiledRecording | None:
        """Return a filed recording by its RecordingSid."""
        async with self._db.execute("SELECT * FROM recordings WHERE sid = ?", (sid,)) as cursor:
            row = await cursor.fetchone()
        return filed_recording(row) if row else None

    async def save_upload(self, sid: str, token: str, url: str, *, now: datetime) -> None:
        """Remember the Zendesk upload that holds a filed recording."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE recordings SET upload_token = ?, upload_url = ?, uploaded_at = ? WHERE sid = ?",
                (token, url, to_epoch(now), sid),
            )

    async def count_events(self) -> int:
        """Count stored webhook events."""
        async with self._db.execute("SELECT COUNT(*) FROM events") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def ping(self) -> None:
        """Answer a trivial query."""
        async with self._db.execute("SELECT 1") as cursor:
            await cursor.fetchone()

    async def close(self) -> None:
        """Let the last batch commit, then close the connection."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        await self._db.close()
