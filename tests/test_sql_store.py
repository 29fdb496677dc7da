"""The SQL written once: released schemas still rendered, every statement valid in both dialects, one urgency rule."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bridge.core import presence
from bridge.core.action_codec import encode
from bridge.core.actions import (
    TELEPHONY_KINDS,
    Action,
    ActionKind,
    AddNote,
    AddVoiceComment,
    CreateCallRecord,
    CreateTicket,
    DisplayTicket,
    DisplayUser,
    FindCaller,
    LookUpCustomer,
    MoveCall,
    PlaceCallback,
    Timer,
    UpdateCallRecord,
)
from bridge.core.clock import from_epoch
from bridge.core.routing import RoutingPolicy, Waiting
from bridge.dispatch import Routes
from bridge.ops.connections import open_store
from bridge.ops.settings import Settings
from bridge.store import URGENT_KINDS, URGENT_WHEN_SET, is_urgent
from bridge.store import statements as s
from bridge.store.dialect import LOCK_BY_NAME, LOCK_BY_NUMBER, POSTGRES, SQLITE, Statement
from bridge.store.routing_rows import ParsedRows, agent_text, waiting_text
from bridge.store.schema import MIGRATIONS
from bridge.store.sqlite import SqliteStore
from schemas.zendesk import CallComment, CallRecord, VoiceComment, VoiceTicket
from tests import released_schema

STATEMENTS = [value for value in vars(s).values() if isinstance(value, Statement)] + [LOCK_BY_NAME, LOCK_BY_NUMBER]
TICKET = VoiceTicket(via_id=45, subject="Call", external_id="CA1")
COMMENT = VoiceComment(from_="+14155550123", to="+16505550100", started_at="2026-09-15T14:02:07Z", call_duration=5)


def examples() -> list[Action]:
    """Return an action of every kind (a create both popping and not), each its own call and number."""
    sid = [f"CA{n:032d}" for n in range(12)]
    phone = [f"+1415555{n:04d}" for n in range(12)]
    actions: list[Action] = [
        FindCaller(sid[0], phone[0]),
        DisplayUser(sid[1], 1001, phone[1]),
        CreateTicket(sid[2], TICKET, requester_phone=phone[2], display_to_agent=1001),
        CreateTicket(sid[3], TICKET, requester_phone=phone[3]),
        AddVoiceComment(sid[4], COMMENT),
        DisplayTicket(sid[5], 1002),
        AddNote(sid[6], "transcription", "Transcription: hi"),
        Timer(sid[7], "recording_wait", from_epoch(0.0)),
        CreateCallRecord(sid[8], CallRecord(from_line=phone[8]), CallComment(title="t", call_fields=[])),
        UpdateCallRecord(sid[9], "ended", CallRecord(duration=3)),
        MoveCall(sid[10], 1),
        LookUpCustomer(sid[11], phone[11]),
        PlaceCallback(sid[11], 1, "client:alice"),
    ]
    assert {action.kind for action in actions} == set(ActionKind)
    return actions


def test_the_urgency_rule_reads_the_field_the_payload_stores() -> None:
    """A field the rule names is stored under that name, so the SQL derived from the rule reads what Python reads."""
    for kind, field in URGENT_WHEN_SET.items():
        for action in (a for a in examples() if a.kind is kind):
            assert encode(action).get(field) == getattr(action, field), (kind, field)
    assert set(URGENT_KINDS).isdisjoint(URGENT_WHEN_SET)


async def insert_raw(database_url: str, rows: Sequence[tuple[str, str, str, dict[str, Any]]]) -> None:
    """Write outbox rows as an earlier version might have (key, kind, call, payload), around the store."""
    values = [(key, kind, sid, json.dumps(payload)) for key, kind, sid, payload in rows]
    if database_url.startswith("sqlite:"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            db.executemany(
                "INSERT INTO actions (key, kind, call_sid, payload, next_at, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 0, 0, 0)",
                values,
            )
        return
    conn = await asyncpg.connect(database_url)
    try:
        await conn.executemany(
            "INSERT INTO actions (key, kind, call_sid, payload, next_at, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, 0, 0, 0)",
            values,
        )
    finally:
        await conn.close()


async def test_claims_take_exactly_the_actions_is_urgent_names_first(database_url: str) -> None:
    """The SQL of urgency agrees with `is_urgent` on every kind, a create with a JSON null pop included."""
    store = await open_store(Settings(database_url=database_url))
    actions = examples()
    await store.add_actions(actions, now=from_epoch(1.0))
    # A create queued by an earlier version, its pop written out as null: not urgent, as it decodes.
    ticket = {"ticket": TICKET.wire(), "display_to_agent": None}
    await insert_raw(database_url, [("CN:ticket", "create_ticket", "CN", ticket)])
    urgent = await store.claim(from_epoch(2.0), 100, lease=60, urgent_only=True)
    assert [row.action for row in urgent] == [a for a in actions if is_urgent(a)]
    rest = await store.claim(from_epoch(2.0), 100, lease=60)
    assert not any(row.urgent for row in rest)
    zendesk = {a.key for a in actions if not is_urgent(a) and a.kind not in TELEPHONY_KINDS}
    assert {row.key for row in rest} == zendesk | {"CN:ticket"}
    # The telephony worker's moves are claimed by it alone.
    moves = await store.claim(from_epoch(2.0), 100, lease=60, telephony=True)
    assert {row.key for row in moves} == {a.key for a in actions if a.kind in TELEPHONY_KINDS}
    await store.close()


async def test_every_statement_is_valid_in_both_dialects(database_url: str) -> None:
    """Each statement, as its dialect renders it, compiles against the migrated schema (rare paths included)."""
    store = await open_store(Settings(database_url=database_url))
    await store.close()
    for statement in STATEMENTS:
        if statement.text(SQLITE) and statement.text(POSTGRES):
            assert set(statement.names[SQLITE.index]) == set(statement.names[POSTGRES.index])
        assert ":" not in statement.text(POSTGRES).replace("::", "")
    if database_url.startswith("sqlite:"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            for statement in STATEMENTS:
                if text := statement.text(SQLITE):
                    db.execute(f"EXPLAIN {text}", dict.fromkeys(statement.names[SQLITE.index]))
        return
    conn = await asyncpg.connect(database_url)
    try:
        for statement in STATEMENTS:
            await conn.prepare(statement.text(POSTGRES))
    finally:
        await conn.close()


def sqlite_schema(db: sqlite3.Connection) -> list[tuple[str, str, str, str | None]]:
    """Return every table and index as its CREATE statement, whitespace aside."""
    rows = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()
    return [(kind, name, table, " ".join(sql.split()) if sql else None) for kind, name, table, sql in rows]


def test_each_released_sqlite_version_is_rendered_as_released(tmp_path: Path) -> None:
    """Version by version, the one migrations list renders for SQLite what the SQLite store applied."""
    assert len(released_schema.SQLITE) <= len(MIGRATIONS)
    with sqlite3.connect(tmp_path / "released.db") as released, sqlite3.connect(tmp_path / "rendered.db") as ours:
        for number, script in enumerate(released_schema.SQLITE):
            released.executescript(script)
            for statement in MIGRATIONS[number]:
                if text := statement.text(SQLITE):
                    ours.execute(text)
            assert sqlite_schema(ours) == sqlite_schema(released), f"v{number + 1}"


async def postgres_schema(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Return the current schema's columns, indexes and constraints, its name left out, the version table too."""
    schema = await conn.fetchval("SELECT current_schema()")
    columns = await conn.fetch(
        """SELECT table_name, column_name, ordinal_position, data_type, is_nullable, column_default
           FROM information_schema.columns WHERE table_schema = $1 AND table_name != 'bridge_schema'
           ORDER BY table_name, ordinal_position""",
        schema,
    )
    indexes = await conn.fetch(
        "SELECT tablename, indexname, replace(indexdef, $1 || '.', '') FROM pg_indexes WHERE schemaname = $1"
        " ORDER BY indexname",
        schema,
    )
    constraints = await conn.fetch(
        """SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE connamespace = $1::regnamespace ORDER BY conname""",
        schema,
    )
    return {"columns": [tuple(r) for r in columns], "indexes": [tuple(r) for r in indexes],
            "constraints": [tuple(r) for r in constraints]}  # fmt: skip


async def test_each_released_postgres_version_is_rendered_as_released(pg_url: str) -> None:
    """Version by version, the one migrations list renders for PostgreSQL what the PostgreSQL store applied."""
    schema = pg_url.rsplit("search_path=", 1)[1]
    released_url = pg_url.replace(f"search_path={schema}", f"search_path={schema}_released")
    admin = await asyncpg.connect(pg_url)
    await admin.execute(f'CREATE SCHEMA "{schema}_released"')
    ours, released = await asyncpg.connect(pg_url), await asyncpg.connect(released_url)
    try:
        for number, script in enumerate(released_schema.POSTGRES):
            await released.execute(script)
            for statement in MIGRATIONS[number]:
                if text := statement.text(POSTGRES):
                    await ours.execute(text)
            assert await postgres_schema(ours) == await postgres_schema(released), f"v{number + 1}"
    finally:
        await ours.close()
        await released.close()
        await admin.execute(f'DROP SCHEMA "{schema}_released" CASCADE')
        await admin.close()


async def test_a_new_database_is_migrated_to_the_released_schema(database_url: str, tmp_path: Path) -> None:
    """The store's migrate on an empty database gives the released schema and records its version."""
    store = await open_store(Settings(database_url=database_url))
    assert await store.schema_version() == len(MIGRATIONS)
    await store.close()
    if database_url.startswith("sqlite:"):
        with sqlite3.connect(tmp_path / "released.db") as released:
            for script in released_schema.SQLITE:
                released.executescript(script)
            with sqlite3.connect(database_url.removeprefix("sqlite:///")) as ours:
                assert sqlite_schema(ours) == sqlite_schema(released)
        return
    conn = await asyncpg.connect(database_url)
    try:
        migrated = await postgres_schema(conn)
        await conn.execute("DROP TABLE seen, events, calls, actions, recordings, secrets, agents, waiting, pacer")
        for script in released_schema.POSTGRES:
            await conn.execute(script)
        assert migrated == await postgres_schema(conn)
    finally:
        await conn.close()


def test_statements_render_named_parameters_per_dialect() -> None:
    """SQLite keeps `:name`; PostgreSQL numbers names in order of first use and leaves casts alone."""
    statement = Statement(lambda d: f"SELECT :b, :a::TEXT, :b FROM t{d.skip_locked}")
    assert statement.text(SQLITE) == "SELECT :b, :a::TEXT, :b FROM t"
    assert statement.text(POSTGRES) == "SELECT $1, $2::TEXT, $1 FROM t FOR UPDATE SKIP LOCKED"
    assert statement.names[POSTGRES.index] == ("b", "a")


async def test_a_closed_sqlite_store_refuses_work_instead_of_waiting(tmp_path: Path) -> None:
    """Its thread is gone: a read or a write after close fails at once; closing twice is harmless."""
    store = await SqliteStore.open(str(tmp_path / "closed.db"))
    await store.close()
    await store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        await store.count_events()
    with pytest.raises(sqlite3.ProgrammingError):
        await store.touch_call("CA1", from_epoch(1.0))


async def test_a_file_that_is_not_a_database_fails_at_open(tmp_path: Path) -> None:
    """DATABASE_URL naming some other file is an error at start-up, and the file is left as it was."""
    path = tmp_path / "notes.txt"
    path.write_bytes(b"not a database, " * 512)
    with pytest.raises(sqlite3.DatabaseError):
        await SqliteStore.open(str(path))
    assert path.read_bytes() == b"not a database, " * 512


async def test_an_agent_another_instance_changed_is_read_afresh(database_url: str) -> None:
    """Routing rows are parsed once per text: an unchanged row is reused, a row another instance wrote is not."""
    agents = {"client:alice": 1001, "client:bob": 1002}
    one = await open_store(Settings(database_url=database_url))
    two = await open_store(Settings(database_url=database_url))
    now = from_epoch(1000.0)
    await one.add_agents(agents, now)
    first = await one.agents()
    assert [a is b for a, b in zip(first, await one.agents(), strict=True)] == [True, True]
    away = await two.change_agent(
        "client:alice",
        lambda agent: presence.choose(agent, "away", now, "test"),
        Routes(RoutingPolicy(), agents).at(now),
    )
    assert away is not None
    assert {agent.identity: agent.chosen for agent in await one.agents()} == {
        "client:alice": "away",
        "client:bob": "available",
    }
    await one.close()
    await two.close()


def test_parsed_rows_keep_only_the_last_read() -> None:
    """A row parsed before is reused while its text is unchanged; rows gone from the last read are forgotten."""
    parsed = ParsedRows()
    ann, bea = Waiting("CAann", from_epoch(1.0)), Waiting("CAbea", from_epoch(2.0))
    texts = [waiting_text(ann), waiting_text(bea)]
    first = parsed.waiting(texts)
    assert first == (ann, bea)
    assert parsed.waiting(texts[1:])[0] is first[1]
    assert parsed.waiting(texts)[0] is not first[0]  # forgotten by the read that did not see it: parsed again
    alice = presence.Agent("client:alice", 1001, chosen_at=from_epoch(1.0))
    row = ("client:alice", agent_text(alice))
    assert parsed.agents([row]) == (alice,)
    moved = presence.choose(alice, "away", from_epoch(2.0), "test")
    assert parsed.agents([("client:alice", agent_text(moved))]) == (moved,)
