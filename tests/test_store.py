"""The SQLite store: one transaction per webhook, dedupe, dependency-ordered claims, durable timers."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge import actions as act
from bridge.calls import Call, Outcome, Policy, step
from bridge.events import CallEvent, EventKind
from bridge.store import DONE
from bridge.store.sqlite import MIGRATIONS, SqliteStore
from tests.conftest import call_outcome, parent_sid, recording, voice_comments

T0 = datetime(2026, 9, 15, 14, 2, 7, tzinfo=UTC)
EVENT = CallEvent(
    kind=EventKind.CALL_STARTED,
    call_sid="CA" + "1" * 32,
    at=T0,
    direction="inbound",
    from_number="+14155550123",
    to_number="+16505550100",
)


def reduce(call: Call | None, event: CallEvent) -> Outcome:
    """The real state machine with a fixed clock."""
    return step(call, event, T0, Policy())


async def test_event_state_and_actions_commit_together(tmp_path: Path) -> None:
    """A reducer that fails leaves nothing behind: no event, no call, no action, no dedupe key."""
    store = await SqliteStore.open(str(tmp_path / "b.db"))

    def broken(call: Call | None, event: CallEvent) -> Outcome:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        await store.ingest(["k1"], EVENT, broken, now=1.0)
    assert await store.count_events() == 0
    assert await store.get_call(EVENT.call_sid) is None
    ingested = await store.ingest(["k1"], EVENT, reduce, now=1.0)
    assert not ingested.duplicate
    assert ingested.outcome is not None
    assert [a.kind for a in ingested.outcome.actions] == ["find_caller"]
    again = await store.ingest(["k2", "k1"], EVENT, reduce, now=2.0)
    assert again.duplicate
    assert await store.count_events() == 1
    await store.close()


async def test_claims_wait_for_dependencies_and_leases(tmp_path: Path) -> None:
    """An action is claimable only once what it needs has settled, and a claimed one is leased."""
    store = await SqliteStore.open(str(tmp_path / "b.db"))
    sid = EVENT.call_sid
    ticket = act.create_ticket(sid, {"via_id": 45}, requester_from=None, display_to_agent=None)
    comment = act.add_voice_comment(sid, {"from": "x"})
    await store.add_actions([comment, ticket], now=1.0)
    claimed = await store.claim(2.0, 10, lease=60)
    assert [row.kind for row in claimed] == ["create_ticket"]
    assert await store.claim(3.0, 10, lease=60) == []  # leased, and the comment still waits
    await store.finish(claimed[0].id, DONE, result={"ticket_id": 7}, error=None, now=4.0)
    (next_row,) = await store.claim(5.0, 10, lease=60)
    assert next_row.kind == "add_voice_comment"
    deps = await store.results(next_row.needs)
    assert deps[act.ticket_key(sid)].result == {"ticket_id": 7}
    await store.close()


async def test_migrations_are_versioned(tmp_path: Path) -> None:
    """A new file is migrated to the latest version; opening it again changes nothing."""
    path = tmp_path / "b.db"
    store = await SqliteStore.open(str(path))
    assert await store.schema_version() == len(MIGRATIONS)
    await store.close()
    store = await SqliteStore.open(str(path))
    assert await store.migrate() == len(MIGRATIONS)
    await store.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_database_of_the_first_released_schema_is_upgraded(tmp_path: Path) -> None:
    """A file written by schema v1, with a call and a pending action in it, upgrades and keeps working."""
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0])
        db.execute("PRAGMA user_version=1")
        db.execute(
            "INSERT INTO calls (call_sid, state, finished, created_at, updated_at) VALUES (?, ?, 0, 1, 1)",
            (EVENT.call_sid, Call(sid=EVENT.call_sid).model_dump_json()),
        )
        db.execute(
            "INSERT INTO actions (key, kind, call_sid, payload, next_at, created_at, updated_at)"
            " VALUES ('tel:+14155550123:user', 'find_caller', ?, '{\"phone\": \"+14155550123\"}', 0, 1, 1)",
            (EVENT.call_sid,),
        )
    store = await SqliteStore.open(str(path))
    assert await store.schema_version() == len(MIGRATIONS) > 1
    assert await store.get_call(EVENT.call_sid) == Call(sid=EVENT.call_sid)
    (row,) = await store.claim(5.0, 10, lease=60)
    assert row.payload == {"phone": "+14155550123"}
    assert await store.stale_calls(10.0, 10) == [EVENT.call_sid]
    assert not (await store.ingest(["k"], EVENT, reduce, now=20.0)).duplicate
    await store.close()


async def test_unwritable_database_fails_loudly(tmp_path: Path) -> None:
    """A database in a missing directory is an error at start-up, not a silent loss."""
    with pytest.raises(sqlite3.OperationalError):
        await SqliteStore.open(str(tmp_path / "missing" / "b.db"))


async def test_transcription_wait_survives_a_restart(tmp_path: Path) -> None:
    """A voicemail waiting for its transcription is still ticketed after the bridge restarts."""
    path = recording("voicemail_transcription_late")
    head = tmp_path / "head.jsonl"
    head.write_text("".join(line + "\n" for line in path.read_text().splitlines() if "/transcription" not in line))
    database = tmp_path / "restart.db"
    from bridge.demo import local_bridge
    from tests.conftest import FAST_RETRY

    async with local_bridge(database, transcription_wait_seconds=3600, retry=FAST_RETRY) as bridge:
        assert (await bridge.replay([head])).ok
        token = bridge.auth_token
        assert call_outcome(bridge.sandbox.snapshot(), parent_sid(path)) == []
    # The timer is in the file: shorten it as an operator would never need to, then restart.
    with sqlite3.connect(database) as db:
        db.execute("UPDATE actions SET next_at = 0 WHERE kind = 'timer'")
    async with local_bridge(database, twilio_auth_token=token, retry=FAST_RETRY) as bridge:
        await bridge.settle()
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), parent_sid(path))
        assert ticket["via_id"] == 44
        assert "transcription_text" not in voice_comments(ticket)[0]
