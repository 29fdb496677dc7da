"""The PostgreSQL store (asyncpg, a connection pool): for Heroku and for several instances.

The same statements and transactions as the SQLite store (`bridge.store.sql`). Two things matter only
when several instances share the database, and the statements say them in PostgreSQL's fragments: each
webhook's transaction takes an advisory lock on its CallSid, so events of one call arriving at different
instances fold into one consistent state; and the outbox is claimed with `FOR UPDATE SKIP LOCKED` plus a
lease, so two workers never hold one action, and a dead instance's claims are taken over once their
lease runs out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

from bridge.store.dialect import POSTGRES, Execute, ExecuteMany, Finished, Op, Query, T, Work, next_op
from bridge.store.sql import SqlStore

_SQL = POSTGRES.index
if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[asyncpg.Record]  # generic only in asyncpg's stubs


def _dsn(url: str) -> str:
    """Accept Heroku's `postgres://` as well as `postgresql://`."""
    return "postgresql://" + url.split("://", 1)[1] if url.startswith("postgres://") else url


async def _run(conn: Connection, op: Op) -> Any:
    """Run one statement of a transaction; return what `Work` is sent back for it."""
    text, names = op.statement.texts[_SQL], op.statement.names[_SQL]
    match op:
        case Query(params=params):
            return await conn.fetch(text, *[params[name] for name in names]) if text else []
        case Execute(params=params):
            if not text:
                return 0
            status = await conn.execute(text, *[params[name] for name in names])
            count = status.rsplit(" ", 1)[-1]  # "INSERT 0 1", "UPDATE 3", "CREATE TABLE"
            return int(count) if count.isdigit() else 0
        case ExecuteMany(rows=rows):
            if text:
                await conn.executemany(text, [tuple(row[name] for name in names) for row in rows])
    return None


async def _drive(conn: Connection, work: Work[T]) -> T:
    """Carry a transaction's work out to its end; return its result."""
    result: Any = None
    while not isinstance(op := next_op(work, result), Finished):
        result = await _run(conn, op)
    return op.value


class PostgresStore(SqlStore):
    """A Store on a PostgreSQL database, shared safely by several instances."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        """Wrap an open pool (use `open`)."""
        super().__init__()
        self._pool = pool

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True, pool_size: int = 10) -> PostgresStore:
        """Connect a pool to DATABASE_URL and apply pending migrations."""
        pool = await asyncpg.create_pool(_dsn(url), min_size=1, max_size=pool_size)
        store = cls(pool)
        if migrate:
            await store.migrate()
        return store

    async def _write(self, work: Work[T]) -> T:
        """Run `work` in a transaction of its own."""
        async with self._pool.acquire() as conn, conn.transaction():
            return await _drive(conn, work)

    async def _read(self, work: Work[T]) -> T:
        """Run a read on a pooled connection."""
        async with self._pool.acquire() as conn:
            return await _drive(conn, work)

    async def close(self) -> None:
        """Close the pool."""
        await self._pool.close()
