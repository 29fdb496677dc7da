"""The SQLite store (WAL, durable commits): the default for one instance.

One connection, owned by one thread of the store's own: every statement runs there, and each call into
it (a batch of writes, a read) is one hop. Every write joins the next group commit: concurrent writes
share one transaction and one durable commit, each in its own savepoint, so one that fails rolls back
alone. A webhook's ingest, the outbox's claims and settles, an operator's revive all go that way.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from queue import SimpleQueue
from typing import Any

from bridge.store import statements as s
from bridge.store.dialect import SQLITE, Execute, ExecuteMany, Finished, Op, Query, T, TextList, Work, execute, next_op
from bridge.store.sql import SqlStore

# A list parameter is JSON text in SQLite (json_each reads it back); `needs` was always stored this way.
sqlite3.register_adapter(TextList, lambda texts: json.dumps(list(texts)))

_SQL = SQLITE.index


def _run(conn: sqlite3.Connection, op: Op) -> Any:
    """Run one statement of a transaction; return what `Work` is sent back for it."""
    text = op.statement.texts[_SQL]
    match op:
        case Query(params=params):
            return conn.execute(text, params).fetchall() if text else []
        case Execute(params=params):
            return conn.execute(text, params).rowcount if text else 0
        case ExecuteMany(rows=rows):
            if text:
                conn.executemany(text, rows)
    return None


def _drive(conn: sqlite3.Connection, work: Work[T]) -> T:
    """Carry a transaction's work out to its end; return its result."""
    result: Any = None
    while not isinstance(op := next_op(work, result), Finished):
        result = _run(conn, op)
    return op.value


@dataclass
class _Pending:
    """A write (a webhook's ingest, a claim, a settle) waiting for its batch's commit."""

    work: Work[Any]
    future: asyncio.Future[Any]


def _write_batch(conn: sqlite3.Connection, batch: list[_Pending]) -> list[Any]:
    """Run a batch of writes in one transaction, each in its own savepoint; return each one's result or error."""
    results: list[Any] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for item in batch:
            conn.execute("SAVEPOINT work")
            try:
                results.append(_drive(conn, item.work))
            except Exception as exc:  # this write fails alone; the batch goes on
                conn.execute("ROLLBACK TO work")
                results.append(exc)
            conn.execute("RELEASE work")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results


def _connect(path: str) -> sqlite3.Connection:
    """Open (creating if needed) the database file, in WAL mode with durable commits."""
    conn = sqlite3.connect(path, isolation_level=None)  # transactions are ours: BEGIN IMMEDIATE … COMMIT
    try:
        conn.row_factory = sqlite3.Row
        # WAL lets readers run beside the writer; synchronous=FULL makes every acknowledged webhook
        # survive a power cut, not only a process crash.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
    except BaseException:
        conn.close()
        raise
    return conn


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """Hand a call's outcome to its caller (on the event loop), unless the caller gave up."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _Thread:
    """The one thread that owns the connection: calls into it run one at a time, in order.

    Ours rather than a library's: a batch must run as one function call in the connection's thread (one
    hop, not one per statement), and aiosqlite offers that only through private attributes.
    """

    def __init__(self) -> None:
        """Start the thread."""
        self._calls: SimpleQueue[tuple[asyncio.Future[Any], Callable[[], Any]] | None] = SimpleQueue()
        self._stopped = False
        self._thread = threading.Thread(target=self._serve, name="bridge-sqlite", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        """Run calls until told to stop."""
        while (call := self._calls.get()) is not None:
            future, function = call
            result, error = None, None
            try:
                result = function()
            except BaseException as exc:  # handed to the caller, whatever it is
                error = exc
            with suppress(RuntimeError):  # the caller's event loop is gone: nobody is waiting
                future.get_loop().call_soon_threadsafe(_settle, future, result, error)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function(*args)` in the thread; return its result."""
        if self._stopped:
            raise sqlite3.ProgrammingError("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._calls.put((future, partial(function, *args)))
        return await future

    def stop(self) -> None:
        """Let the thread end once the calls already queued are done."""
        if not self._stopped:
            self._stopped = True
            self._calls.put(None)


class SqliteStore(SqlStore):
    """A Store on one SQLite file: one connection in its own thread, writes committed in batches."""

    def __init__(self, thread: _Thread, conn: sqlite3.Connection) -> None:
        """Wrap a connection its thread opened (use `open`)."""
        super().__init__()
        self._thread = thread
        self._conn = conn
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: str, *, migrate: bool = True) -> SqliteStore:
        """Open (creating if needed) the database file, and apply pending migrations."""
        thread = _Thread()
        try:
            conn = await thread.run(_connect, path)
        except BaseException:
            thread.stop()
            raise
        store = cls(thread, conn)
        if migrate:
            try:
                await store.migrate()
            except BaseException:
                await store.close()
                raise
        return store

    async def _read(self, work: Work[T]) -> T:
        """Run a read in the connection's thread in one hop (statements and fetches together)."""
        return await self._thread.run(_drive, self._conn, work)

    async def _write(self, work: Work[T]) -> T:
        """Run `work` in the next batch's transaction (group commit) and return its result once committed.

        Each write as its own transaction was a durable commit and several hops into the connection's
        thread, and every webhook's batch queued behind the outbox's claims and settles.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(work, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches())
        return await future

    async def _write_batches(self) -> None:
        """Commit queued writes batch by batch until none are left."""
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                results = await self._thread.run(_write_batch, self._conn, batch)
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

    async def release_leases(self) -> None:
        """Free every lease: at start-up, the process that held them is gone (one process owns the file)."""
        await self._write(execute(s.RELEASE_LEASES))

    async def close(self) -> None:
        """Let the last batch commit, then close the connection and end its thread."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        with suppress(sqlite3.ProgrammingError):  # closed before
            try:
                await self._thread.run(self._conn.close)
            finally:
                self._thread.stop()
