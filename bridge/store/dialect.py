"""SQL written once for SQLite and PostgreSQL: the dialects' fragments, statements, and the work a store runs.

A `Statement` is a function of the dialect returning SQL with named parameters (`:name`); it is rendered
for both dialects once, when it is defined: SQLite keeps the names, PostgreSQL gets `$1, $2, …` in order
of first use. A rendering of "" means the statement has nothing to do in that dialect (an advisory lock
on SQLite, whose batch already holds the database's one write lock).

A store's transaction is `Work`: a generator that yields `Query`, `Execute` and `ExecuteMany` and gets back
rows, a row count and nothing. Each store drives it with its own driver (SQLite synchronously in the
connection's thread, PostgreSQL with awaits), so what a transaction does is written once.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")

_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")  # `:name`, never a PostgreSQL `::cast`


class Dialect(ABC):
    """What differs between the two databases, as SQL fragments; `SQLITE` and `POSTGRES` are the two."""

    name: str
    index: int  # where a statement keeps this dialect's rendering
    # Column types and defaults, as the first released schema spelled them.
    real: str  # epoch seconds
    serial_key: str  # a generated integer primary key
    boolean: str
    false: str
    texts: str  # a list of strings (an action's `needs`)
    no_texts: str  # the empty list, as a column default
    without_rowid: str  # a table clustered on its primary key, where the dialect has the choice
    # Queries.
    greatest: str  # the larger of two values (a scalar function)
    for_update: str  # lock the selected rows until commit (routing decisions between instances)
    skip_locked: str  # the same, passing over rows another transaction holds (claims)
    lock_by_name: str  # a transaction-scoped lock on a string's hash (`:key`)
    lock_by_number: str  # the same on a 64-bit number (`:key`)
    # Where the schema version is kept.
    version_table: str  # make sure it exists ("" where the database file keeps it)
    version_row: str  # make sure it holds a version
    version_known: str  # one row: is a version kept at all?
    version_read: str

    @abstractmethod
    def each(self, texts: str, alias: str) -> str:
        """Return a FROM item with one row per element of a list of strings, its column `value`."""

    @abstractmethod
    def json_field(self, column: str, field: str) -> str:
        """Return a top-level field of a JSON text column; SQL NULL when absent or JSON null."""

    @abstractmethod
    def version_write(self, number: int) -> str:
        """Return the statement recording the schema version."""

    @abstractmethod
    def placeholders(self, sql: str) -> tuple[str, tuple[str, ...]]:
        """Return the SQL as the driver takes it and the parameters' names in the order it binds them."""


class _Sqlite(Dialect):
    """SQLite 3.24 or later with JSON1: lists are JSON text, timestamps REAL, one writer at a time."""

    name, index = "sqlite", 0
    real, serial_key, boolean, false = "REAL", "INTEGER PRIMARY KEY", "INTEGER", "0"
    texts, no_texts, without_rowid = "TEXT", "'[]'", " WITHOUT ROWID"
    greatest, for_update, skip_locked = "MAX", "", ""
    # A write transaction on SQLite holds the whole database, so there is nothing more to lock.
    lock_by_name = lock_by_number = ""
    version_table = version_row = ""  # PRAGMA user_version: in the file's header, 0 for a new file
    version_known = "SELECT 1"
    version_read = "PRAGMA user_version"

    def each(self, texts: str, alias: str) -> str:
        """Return `json_each` of a JSON array."""
        return f"json_each({texts}) AS {alias}"

    def json_field(self, column: str, field: str) -> str:
        """Return `json_extract`, which gives SQL NULL for JSON null too."""
        return f"json_extract({column}, '$.{field}')"

    def version_write(self, number: int) -> str:
        """Return the PRAGMA (it takes no parameter)."""
        return f"PRAGMA user_version = {int(number)}"

    def placeholders(self, sql: str) -> tuple[str, tuple[str, ...]]:
        """Keep the names: the sqlite3 module binds `:name` from a mapping."""
        return sql, tuple(dict.fromkeys(_PARAMETER.findall(sql)))


class _Postgres(Dialect):
    """PostgreSQL: lists are TEXT[], row locks and advisory locks for several instances."""

    name, index = "postgres", 1
    real, serial_key, boolean, false = "DOUBLE PRECISION", "BIGSERIAL PRIMARY KEY", "BOOLEAN", "FALSE"
    texts, no_texts, without_rowid = "TEXT[]", "'{}'", ""
    greatest, for_update, skip_locked = "GREATEST", " FOR UPDATE", " FOR UPDATE SKIP LOCKED"
    lock_by_name = "SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"
    lock_by_number = "SELECT pg_advisory_xact_lock(:key)"
    version_table = "CREATE TABLE IF NOT EXISTS bridge_schema (version INTEGER NOT NULL)"
    version_row = "INSERT INTO bridge_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM bridge_schema)"
    version_known = "SELECT to_regclass('bridge_schema') IS NOT NULL"
    version_read = "SELECT version FROM bridge_schema"

    def each(self, texts: str, alias: str) -> str:
        """Return `unnest` of a text array (a parameter needs the cast to have a type)."""
        return f"unnest({texts}::TEXT[]) AS {alias} (value)"

    def json_field(self, column: str, field: str) -> str:
        """Return `->>`, which gives SQL NULL for JSON null too (`->` would give a JSON null, not NULL)."""
        return f"({column}::jsonb ->> '{field}')"

    def version_write(self, number: int) -> str:
        """Return the update of the one-row version table."""
        return f"UPDATE bridge_schema SET version = {int(number)}"

    def placeholders(self, sql: str) -> tuple[str, tuple[str, ...]]:
        """Number the names in order of first use: `$1`, `$2`, …"""
        names: dict[str, int] = {}

        def number(match: re.Match[str]) -> str:
            return f"${names.setdefault(match.group(1), len(names) + 1)}"

        return _PARAMETER.sub(number, sql), tuple(names)


SQLITE, POSTGRES = _Sqlite(), _Postgres()
DIALECTS: tuple[Dialect, ...] = (SQLITE, POSTGRES)


class Statement:
    """One statement, written once as a function of the dialect and rendered for each dialect up front."""

    __slots__ = ("names", "texts")

    def __init__(self, write: Callable[[Dialect], str]) -> None:
        """Render `write` for every dialect."""
        rendered = [dialect.placeholders(" ".join(write(dialect).split())) for dialect in DIALECTS]
        self.texts = tuple(text for text, _ in rendered)
        self.names = tuple(names for _, names in rendered)

    def text(self, dialect: Dialect) -> str:
        """Return the statement as `dialect` runs it ("" when it has nothing to do there)."""
        return self.texts[dialect.index]


def sql(text: str) -> Statement:
    """Return a statement that reads the same in both dialects."""
    return Statement(lambda _: text)


class TextList(tuple[str, ...]):
    """A list of strings as a parameter: TEXT[] for PostgreSQL, JSON text for SQLite (the store's adapter)."""

    __slots__ = ()


class Query:
    """Run a statement and send back its rows (read by column name)."""

    __slots__ = ("params", "statement")

    def __init__(self, statement: Statement, /, **params: Any) -> None:
        """Bind `params` to the statement's names."""
        self.statement, self.params = statement, params


class Execute:
    """Run a statement and send back how many rows it changed."""

    __slots__ = ("params", "statement")

    def __init__(self, statement: Statement, /, **params: Any) -> None:
        """Bind `params` to the statement's names."""
        self.statement, self.params = statement, params


class ExecuteMany:
    """Run a statement once per set of parameters; send back nothing."""

    __slots__ = ("rows", "statement")

    def __init__(self, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> None:
        """Bind each mapping in turn."""
        self.statement, self.rows = statement, rows


Op = Query | Execute | ExecuteMany
Work = Generator[Op, Any, T]  # a transaction: what it runs, step by step, and what it returns


@dataclass(frozen=True)
class Finished(Generic[T]):
    """A transaction's work has run to its end and returned `value`."""

    value: T


def next_op(work: Work[T], result: Any) -> Op | Finished[T]:
    """Send the last operation's result into a transaction; return its next operation, or that it finished.

    Each store's driver runs the operations its own way (asyncpg awaits them, sqlite3 runs them in its
    writer thread); stepping the generator is the same for both.
    """
    try:
        return work.send(result)
    except StopIteration as stop:
        return Finished(cast(T, stop.value))


LOCK_BY_NAME = Statement(lambda d: d.lock_by_name)
LOCK_BY_NUMBER = Statement(lambda d: d.lock_by_number)


def lock(key: str | int) -> Execute:
    """Hold a lock on `key` until the transaction ends, so instances sharing the database take turns.

    On SQLite every write transaction already excludes every other, so this runs nothing there.
    """
    return Execute(LOCK_BY_NUMBER if isinstance(key, int) else LOCK_BY_NAME, key=key)


def execute(statement: Statement, /, **params: Any) -> Work[int]:
    """Return a transaction of one statement, sending back how many rows it changed."""
    count: int = yield Execute(statement, **params)
    return count


def query(statement: Statement, /, **params: Any) -> Work[list[Any]]:
    """Return a transaction of one query, sending back its rows."""
    rows: list[Any] = yield Query(statement, **params)
    return rows
