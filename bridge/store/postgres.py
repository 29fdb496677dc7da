"""The PostgreSQL store (asyncpg, a connection pool): for Heroku and for several instances.

Same protocol and same transactions as the SQLite store. Two things are specific to several instances
sharing the database: each webhook's transaction takes an advisory lock on its CallSid, so events of
one call arriving at different instances fold into one consistent state; and the outbox is claimed with
`FOR UPDATE SKIP LOCKED` plus a lease, so two workers never hold one action, and a dead instance's
claims are taken over once their lease runs out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import asyncpg
from asyncpg.pool import PoolConnectionProxy

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
    QueueActions,
    Revive,
    SaveCall,
    SaveEvent,
    SettleDone,
    Step,
    ingest_plan,
)

MIGRATION_LOCK = 7_240_351  # an arbitrary constant: one instance migrates at a time

# Each entry is one schema version; never edit a released one, append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE seen (key TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL);
    CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        call_sid TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX events_by_call ON events (call_sid);
    CREATE TABLE calls (
        call_sid TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        finished BOOLEAN NOT NULL DEFAULT FALSE,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX calls_unfinished ON calls (finished, updated_at);
    CREATE TABLE actions (
        id BIGSERIAL PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        call_sid TEXT NOT NULL,
        payload TEXT NOT NULL,
        needs TEXT[] NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at DOUBLE PRECISION NOT NULL,
        lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        last_error TEXT,
        result TEXT
    );
    CREATE INDEX actions_due ON actions (status, next_at);
    CREATE INDEX actions_by_call ON actions (call_sid);
    """,
    # v2: SQLite's v2 added the calls_unfinished index, which this store has had since v1; kept as a step so
    # both stores count versions alike.
    "SELECT 1",
    # v3: recording links. Only recordings filed here may be fetched through the bridge, and the signing
    # secret lives in the database so links outlive restarts, redeploys, several instances and a rotated token.
    """
    CREATE TABLE recordings (
        sid TEXT PRIMARY KEY,
        account_sid TEXT NOT NULL,
        call_sid TEXT NOT NULL,
        media_url TEXT NOT NULL,
        channels INTEGER NOT NULL DEFAULT 1,
        filed_at DOUBLE PRECISION NOT NULL,
        upload_token TEXT,
        upload_url TEXT,
        uploaded_at DOUBLE PRECISION
    );
    CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # v4: dedupe keys are forgotten after a day, oldest first.
    """
    CREATE INDEX seen_by_age ON seen (at);
    """,
]

# A dependency still pending, looked up by its unique key one need at a time: as `key = ANY (needs)` the
# planner scanned the pending rows for every candidate, and a backlog of 2,000 made each claim take 0.8 s.
_READY = """
    a.status = 'pending' AND a.next_at <= $1 AND a.lease_until <= $1
    AND NOT EXISTS (SELECT 1 FROM unnest(a.needs) AS n (key)
                    WHERE (SELECT d.status FROM actions AS d WHERE d.key = n.key) = 'pending')
"""
# bridge.store.is_urgent in SQL: derived from the kind (and a create's pop), so no column or migration.
_URGENT = """(a.kind IN ('find_caller', 'display_user', 'display_ticket')
    OR (a.kind = 'create_ticket' AND a.payload::jsonb -> 'display_to_agent' IS NOT NULL))"""
_INSERT_ACTION = """
    INSERT INTO actions (key, kind, call_sid, payload, needs, next_at, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key) DO NOTHING
"""
_REVIVE = """
    UPDATE actions SET status = 'pending', next_at = $2, created_at = $2, lease_until = 0, updated_at = $2
    WHERE key = $1 AND status IN ('dead', 'dropped')
"""
_CANCEL = """
    UPDATE actions SET status = 'dropped', last_error = 'no longer needed', updated_at = $2
    WHERE key = $1 AND status = 'pending'
"""
_SAVE_CALL = """
    INSERT INTO calls (call_sid, state, finished, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
    ON CONFLICT (call_sid) DO UPDATE SET state = excluded.state, finished = excluded.finished,
    updated_at = excluded.updated_at
"""
_SETTLE = """
    UPDATE actions SET status = $2, result = $3, last_error = COALESCE($4, last_error), lease_until = 0,
    updated_at = $5 WHERE id = $1
"""


def _dsn(url: str) -> str:
    """Accept Heroku's `postgres://` as well as `postgresql://`."""
    return "postgresql://" + url.split("://", 1)[1] if url.startswith("postgres://") else url


async def _execute(conn: PoolConnectionProxy[asyncpg.Record], step: Step, moment: datetime) -> object:
    """Run one step of the ingest plan; return what the plan asked for."""
    now = to_epoch(moment)
    match step:
        case MarkSeen(key=key):
            fresh = await conn.fetchval(
                "INSERT INTO seen (key, at) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1", key, now
            )
            return fresh is not None
        case SaveEvent(event=event):
            await conn.execute(
                "INSERT INTO events (call_sid, kind, body, received_at) VALUES ($1, $2, $3, $4)",
                event.call_sid,
                event.kind.value,
                event.model_dump_json(exclude_none=True),
                now,
            )
        case LoadCall(call_sid=call_sid):
            state = await conn.fetchval("SELECT state FROM calls WHERE call_sid = $1", call_sid)
            return Call.model_validate_json(state) if state else None
        case SaveCall(call=call):
            await conn.execute(_SAVE_CALL, call.sid, call.model_dump_json(), call.finished, now)
        case QueueActions(actions=actions):
            await conn.executemany(_INSERT_ACTION, [action_values(a, moment) for a in actions])
        case Revive(keys=keys):
            await conn.executemany(_REVIVE, [(key, now) for key in keys])
        case Cancel(keys=keys):
            await conn.executemany(_CANCEL, [(key, now) for key in keys])
        case SettleDone(action_id=action_id):
            await conn.execute(_SETTLE, action_id, DONE, None, None, now)
    return None


class PostgresStore:
    """A Store on a PostgreSQL database, shared safely by several instances."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        """Wrap an open pool (use `open`)."""
        self._pool = pool

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True, pool_size: int = 10) -> PostgresStore:
        """Connect a pool to DATABASE_URL and apply pending migrations."""
        pool = await asyncpg.create_pool(_dsn(url), min_size=1, max_size=pool_size)
        store = cls(pool)
        if migrate:
            await store.migrate()
        return store

    async def schema_version(self) -> int:
        """Return the applied schema version (0 for an empty database)."""
        async with self._pool.acquire() as conn:
            exists = await conn.fetchval("SELECT to_regclass('bridge_schema') IS NOT NULL")
            return int(await conn.fetchval("SELECT version FROM bridge_schema")) if exists else 0

    async def migrate(self) -> int:
        """Apply every migration not yet applied, one instance at a time; return the resulting version."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS bridge_schema (version INTEGER NOT NULL)")
            version = await conn.fetchval("SELECT version FROM bridge_schema")
            if version is None:
                await conn.execute("INSERT INTO bridge_schema (version) VALUES (0)")
                version = 0
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                await conn.execute(script)
                await conn.execute("UPDATE bridge_schema SET version = $1", number)
        return len(MIGRATIONS)

    async def ingest(
        self,
        keys: Sequence[str],
        event: CallEvent,
        reduce: Reducer,
        *,
        now: datetime,
        finish_action: int | None = None,
    ) -> Ingested:
        """Store an event unless a key was seen, fold it into its call, and queue the actions it causes."""
        plan = ingest_plan(keys, event, reduce, finish_action)
        async with self._pool.acquire() as conn, conn.transaction():
            # Events of one call may reach two instances at once: fold them one after the other.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", event.call_sid)
            result: object = None
            try:
                while True:
                    result = await _execute(conn, plan.send(result), now)
            except StopIteration as stop:
                return cast(Ingested, stop.value)

    async def claim(self, now: datetime, limit: int, lease: float, *, urgent_only: bool = False) -> list[ActionRow]:
        """Lease due actions whose dependencies are settled, urgent first; rows another worker holds are skipped."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""WITH ready AS (
                        SELECT a.id FROM actions AS a WHERE {_READY} AND (NOT $4 OR {_URGENT})
                        ORDER BY {_URGENT} DESC, a.next_at, a.id LIMIT $2 FOR UPDATE SKIP LOCKED
                    )
                    UPDATE actions SET lease_until = $1 + $3, attempts = actions.attempts + 1
                    FROM ready WHERE actions.id = ready.id
                    RETURNING actions.id, actions.key, actions.kind, actions.call_sid, actions.payload,
                              actions.needs, actions.status, actions.attempts - 1 AS attempts, actions.next_at,
                              actions.created_at, actions.last_error, actions.result""",
                to_epoch(now),
                limit,
                lease,
                urgent_only,
            )
        return sorted((action_row(row) for row in rows), key=lambda row: (not row.urgent, row.next_at, row.id))

    async def bring_forward(self, now: datetime) -> int:
        """Make every action waiting out a failure's backoff due now; return how many."""
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                """UPDATE actions SET next_at = $1, updated_at = $1 WHERE status = 'pending' AND next_at > $1
                   AND kind != 'timer' AND last_error IS NOT NULL""",
                to_epoch(now),
            )
        return int(status.split()[-1])

    async def next_due(self) -> datetime | None:
        """Return when the earliest pending action with settled dependencies becomes due (or its lease ends)."""
        async with self._pool.acquire() as conn:
            value = await conn.fetchval(
                f"SELECT MIN(GREATEST(a.next_at, a.lease_until)) FROM actions AS a WHERE {_READY}",
                float("inf"),
            )
        return from_epoch(value) if value is not None else None

    async def results(self, keys: Sequence[str]) -> dict[str, ActionRow]:
        """Return the named actions."""
        if not keys:
            return {}
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM actions WHERE key = ANY ($1)", list(keys))
        return {row["key"]: action_row(row) for row in rows}

    async def finish(
        self, action_id: int, status: str, *, result: dict[str, Any] | None, error: str | None, now: datetime
    ) -> None:
        """Settle an action as done, dead or dropped."""
        encoded = json.dumps(result) if result is not None else None
        async with self._pool.acquire() as conn:
            await conn.execute(_SETTLE, action_id, status, encoded, error, to_epoch(now))

    async def retry_later(self, action_id: int, *, next_at: datetime, error: str, now: datetime) -> None:
        """Schedule the next attempt."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE actions SET next_at = $2, last_error = $3, lease_until = 0, updated_at = $4 WHERE id = $1",
                action_id,
                to_epoch(next_at),
                error,
                to_epoch(now),
            )

    async def update_result(self, key: str, result: dict[str, Any], *, now: datetime) -> None:
        """Replace a done action's result."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE actions SET result = $2, updated_at = $3 WHERE key = $1", key, json.dumps(result), to_epoch(now)
            )

    async def add_actions(self, actions: Sequence[Action], *, now: datetime) -> None:
        """Queue further actions."""
        async with self._pool.acquire() as conn:
            await conn.executemany(_INSERT_ACTION, [action_values(a, now) for a in actions])

    async def release(self, action_id: int) -> None:
        """Give a leased action back untouched."""
        async with self._pool.acquire() as conn:
            await conn.execute("UPDATE actions SET lease_until = 0 WHERE id = $1", action_id)

    async def stats(self, now: datetime) -> OutboxStats:
        """Count pending and dead actions."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT COUNT(*) FILTER (WHERE status = 'pending') AS pending,
                          COUNT(*) FILTER (WHERE status = 'dead') AS dead,
                          MIN(created_at) FILTER (WHERE status = 'pending') AS oldest FROM actions"""
            )
        assert row is not None
        oldest = row["oldest"]
        return OutboxStats(
            pending=int(row["pending"]),
            dead=int(row["dead"]),
            oldest_pending_age=max(0.0, to_epoch(now) - oldest) if oldest is not None else None,
        )

    async def list_actions(self, statuses: Sequence[str], limit: int = 100) -> list[ActionRow]:
        """List actions in the given statuses, newest first."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM actions WHERE status = ANY ($1) ORDER BY id DESC LIMIT $2", list(statuses), limit
            )
        return [action_row(row) for row in rows]

    async def revive(self, action_id: int, now: datetime) -> bool:
        """Make a dead or dropped action pending again, due now, with a fresh age."""
        async with self._pool.acquire() as conn:
            done = await conn.execute(
                """UPDATE actions SET status = 'pending', next_at = $2, created_at = $2, lease_until = 0,
                   updated_at = $2 WHERE id = $1 AND status = ANY ($3)""",
                action_id,
                to_epoch(now),
                [DEAD, DROPPED],
            )
        return done.endswith(" 1")

    async def drop(self, action_id: int, now: datetime, reason: str) -> bool:
        """Give up on a pending or dead action."""
        async with self._pool.acquire() as conn:
            done = await conn.execute(
                """UPDATE actions SET status = 'dropped', last_error = $3, updated_at = $2
                   WHERE id = $1 AND status = ANY ($4)""",
                action_id,
                to_epoch(now),
                reason,
                [PENDING, DEAD],
            )
        return done.endswith(" 1")

    async def stale_calls(self, before: datetime, limit: int) -> list[str]:
        """Return calls with no final outcome whose last event is older than `before`."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT call_sid FROM calls WHERE NOT finished AND updated_at < $1 ORDER BY updated_at LIMIT $2",
                to_epoch(before),
                limit,
            )
        return [row["call_sid"] for row in rows]

    async def touch_call(self, call_sid: str, now: datetime) -> None:
        """Postpone a call's next reconciliation."""
        async with self._pool.acquire() as conn:
            await conn.execute("UPDATE calls SET updated_at = $2 WHERE call_sid = $1", call_sid, to_epoch(now))

    async def forget_seen(self, before: datetime, limit: int) -> int:
        """Forget up to `limit` dedupe keys first seen before `before`; return how many."""
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM seen WHERE key IN (SELECT key FROM seen WHERE at < $1 LIMIT $2)", to_epoch(before), limit
            )
        return int(status.split()[-1])

    async def get_call(self, call_sid: str) -> Call | None:
        """Return a call's state."""
        async with self._pool.acquire() as conn:
            state = await conn.fetchval("SELECT state FROM calls WHERE call_sid = $1", call_sid)
        return Call.model_validate_json(state) if state else None

    async def link_secret(self, candidate: bytes) -> bytes:
        """Return the recording-link signing secret, keeping `candidate` if none was stored before."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO secrets (name, value) VALUES ('recording_links', $1) ON CONFLICT DO NOTHING",
                candidate.hex(),
            )
            value = await conn.fetchval("SELECT value FROM secrets WHERE name = 'recording_links'")
        return bytes.fromhex(value)

    async def file_recording(self, recording: FiledRecording) -> FiledRecording:
        """Remember a recording the bridge links to (a second filing keeps the first); return it."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO recordings (sid, account_sid, call_sid, media_url, channels, filed_at)
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sid) DO NOTHING""",
                recording.sid,
                recording.account_sid,
                recording.call_sid,
                recording.media_url,
                recording.channels,
                to_epoch(recording.filed_at),
            )
            row = await conn.fetchrow("SELECT * FROM recordings WHERE sid = $1", recording.sid)
        assert row is not None
        return filed_recording(row)

    async def filed_recording(self, sid: str) -> FiledRecording | None:
        """Return a filed recording by its RecordingSid."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM recordings WHERE sid = $1", sid)
        return filed_recording(row) if row else None

    async def save_upload(self, sid: str, token: str, url: str, *, now: datetime) -> None:
        """Remember the Zendesk upload that holds a filed recording."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE recordings SET upload_token = $2, upload_url = $3, uploaded_at = $4 WHERE sid = $1",
                sid,
                token,
                url,
                to_epoch(now),
            )

    async def count_events(self) -> int:
        """Count stored webhook events."""
        async with self._pool.acquire() as conn:
            return int(await conn.fetchval("SELECT COUNT(*) FROM events"))

    async def ping(self) -> None:
        """Answer a trivial query."""
        async with self._pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def close(self) -> None:
        """Close the pool."""
        await self._pool.close()
