"""The SQLite store: one transaction per webhook, dedupe, dependency-ordered claims, durable timers."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from bridge.core.actions import (
    Action,
    AddNote,
    AddVoiceComment,
    CreateCallRecord,
    CreateTicket,
    DisplayUser,
    FindCaller,
    Timer,
    UpdateCallRecord,
    call_record_key,
    ticket_key,
)
from bridge.core.calls import RECORDING_WAIT, Call, Outcome, Policy, advance, step
from bridge.core.clock import from_epoch
from bridge.core.events import CallEvent, EventKind
from bridge.ops.connections import open_store
from bridge.ops.settings import Settings
from bridge.store import DEAD, DONE, DROPPED, FiledRecording, Store
from bridge.store.schema import MIGRATIONS
from bridge.store.sqlite import SqliteStore
from schemas.zendesk import CallRecord, VoiceComment, VoiceTicket
from tests import released_schema
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


def at(seconds: float) -> datetime:
    """Return a moment as the stores count it: seconds since the epoch."""
    return from_epoch(seconds)


def reduce(call: Call | None, event: CallEvent) -> Outcome:
    """The real state machine with a fixed clock."""
    return step(call, event, T0, Policy())


async def open_db(url: str) -> Store:
    """Open the store a DATABASE_URL names."""
    return await open_store(Settings(database_url=url))


async def test_a_failed_webhook_leaves_the_call_as_committed(database_url: str) -> None:
    """A reducer that changed the call in place and then failed does not leak its change to the next event."""
    store = await open_db(database_url)
    await store.ingest(["k1"], EVENT, reduce, now=at(1.0))

    def half_done(call: Call | None, event: CallEvent) -> Outcome:
        assert call is not None
        call.from_number = "+19995550000"  # the state machine changes the call it is given in place
        # An action the store cannot write: the call is saved, then the webhook fails and rolls back.
        return Outcome(call, [cast(Any, "not an action")], [], [], [])

    seen: list[str | None] = []

    def looking(call: Call | None, event: CallEvent) -> Outcome:
        seen.append(call.from_number if call is not None else None)
        return advance(call, event, T0, Policy())

    later = EVENT.model_copy(update={"kind": EventKind.CALL_STATUS, "status": "in-progress", "sequence": 1})
    # Sent together, so that a store that commits webhooks in batches has them in one: the failing one
    # is handed the state the first one has just written, uncommitted.
    results = await asyncio.gather(
        store.ingest(["k2"], later, reduce, now=at(2.0)),
        store.ingest(["k3"], later, half_done, now=at(2.0)),
        return_exceptions=True,
    )
    assert isinstance(results[1], Exception)
    await store.ingest(["k4"], later, looking, now=at(3.0))
    await store.ingest(["k5"], later, looking, now=at(4.0))
    assert seen == ["+14155550123", "+14155550123"]
    await store.close()


async def test_event_state_and_actions_commit_together(database_url: str) -> None:
    """A reducer that fails leaves nothing behind: no event, no call, no action, no dedupe key."""
    store = await open_db(database_url)

    def broken(call: Call | None, event: CallEvent) -> Outcome:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        await store.ingest(["k1"], EVENT, broken, now=at(1.0))
    assert await store.count_events() == 0
    assert await store.get_call(EVENT.call_sid) is None
    assert (await store.stats(at(1.0))).pending == 0
    ingested = await store.ingest(["k1"], EVENT, reduce, now=at(1.0))
    assert not ingested.duplicate
    assert ingested.outcome is not None
    assert [a.kind for a in ingested.outcome.actions] == ["find_caller"]
    again = await store.ingest(["k2", "k1"], EVENT, reduce, now=at(2.0))
    assert again.duplicate
    assert await store.count_events() == 1
    assert (await store.stats(at(3.0))).pending == 1
    await store.close()


async def test_claims_wait_for_dependencies_and_leases(database_url: str) -> None:
    """An action is claimable only once what it needs has settled; a claim is leased and counted as an attempt."""
    store = await open_db(database_url)
    sid = EVENT.call_sid
    ticket = CreateTicket(sid, VoiceTicket(via_id=45, subject="Call", external_id=sid))
    comment = AddVoiceComment(sid, VoiceComment(from_="x", to="y", started_at="", call_duration=0))
    await store.add_actions([comment, ticket, ticket], now=at(1.0))  # the same key twice is one action
    claimed = await store.claim(at(2.0), 10, lease=60)
    assert [row.kind for row in claimed] == ["create_ticket"]
    assert claimed[0].attempts == 0
    assert await store.claim(at(3.0), 10, lease=60) == []  # leased, and the comment still waits
    assert await store.next_due() == at(62.0)
    (retaken,) = await store.claim(at(63.0), 10, lease=60)  # a dead worker's claim is taken over after its lease
    assert retaken.id == claimed[0].id
    assert retaken.attempts == 1
    await store.finish(claimed[0].id, DONE, result={"ticket_id": 7}, error=None, now=at(64.0))
    (next_row,) = await store.claim(at(65.0), 10, lease=60)
    assert next_row.kind == "add_voice_comment"
    deps = await store.results(next_row.needs)
    assert deps[ticket_key(sid)].result == {"ticket_id": 7}
    await store.retry_later(next_row.id, next_at=at(100.0), error="HTTP 503", now=at(66.0))
    assert await store.claim(at(99.0), 10, lease=60) == []
    assert await store.next_due() == at(100.0)
    (again,) = await store.claim(at(100.0), 10, lease=60)
    assert again.last_error == "HTTP 503"
    assert again.attempts == 1
    await store.finish(again.id, DEAD, result=None, error="HTTP 422", now=at(101.0))
    stats = await store.stats(at(101.0))
    assert (stats.pending, stats.dead) == (0, 1)
    assert [row.id for row in await store.list_actions([DEAD])] == [again.id]
    assert await store.revive(again.id, at(102.0))
    assert not await store.revive(again.id, at(102.0))
    (revived,) = await store.claim(at(102.0), 10, lease=60)
    assert revived.attempts == 2  # still known to have been tried: a revived create looks before it creates
    await store.finish(revived.id, DEAD, result=None, error="HTTP 422", now=at(102.5))
    assert await store.drop(again.id, at(103.0), "operator")
    assert [row.status for row in await store.list_actions([DROPPED])] == ["dropped"]
    await store.update_result(ticket_key(sid), {"ticket_id": 8}, now=at(104.0))
    assert (await store.results([ticket_key(sid)]))[ticket_key(sid)].result == {"ticket_id": 8}
    await store.close()


async def test_a_correction_waits_only_on_an_update_still_pending(database_url: str) -> None:
    """One that follows an update never queued, or one given up on, goes once the record is made: never stuck."""
    store = await open_db(database_url)
    sid = EVENT.call_sid
    record = CreateCallRecord(sid, CallRecord(from_line="+14155550123", to_line="+16505550100"))
    first = UpdateCallRecord(sid, "correction:1", CallRecord(hold_time=5), after=f"{call_record_key(sid)}:ended")
    second = UpdateCallRecord(sid, "correction:2", CallRecord(hold_time=9), after=first.key)
    await store.add_actions([record, first, second], now=at(1.0))
    (made,) = await store.claim(at(2.0), 10, lease=60)
    assert made.action == record
    await store.finish(made.id, DONE, result={"call_id": 77}, error=None, now=at(3.0))
    (row,) = await store.claim(at(4.0), 10, lease=60)  # the second still waits for the first
    assert row.action == first
    await store.finish(row.id, DEAD, result=None, error="HTTP 422", now=at(5.0))
    assert [row.action for row in await store.claim(at(6.0), 10, lease=60)] == [second]
    await store.close()


async def test_a_dead_caller_look_up_is_retried_when_a_new_call_needs_it(database_url: str) -> None:
    """Queuing an action twice is a no-op, except a caller look-up that died: a new call revives it."""
    store = await open_db(database_url)

    def call_from_same_number(n: int) -> CallEvent:
        return EVENT.model_copy(update={"call_sid": f"CA{n:032d}"})

    await store.ingest(["c1"], call_from_same_number(1), reduce, now=at(1.0))
    (row,) = await store.claim(at(2.0), 10, lease=60)
    await store.finish(row.id, DEAD, result=None, error="gave up", now=at(3.0))
    await store.add_actions([FindCaller("CA2", "+14155550123")], now=at(4.0))  # a plain queue revives nothing
    assert await store.claim(at(4.5), 10, lease=60) == []
    await store.ingest(["c2"], call_from_same_number(2), reduce, now=at(5.0))
    (again,) = await store.claim(at(5.0), 10, lease=60)
    assert again.id == row.id
    await store.finish(again.id, DONE, result={"user_id": 2001}, error=None, now=at(6.0))
    await store.ingest(["c3"], call_from_same_number(3), reduce, now=at(7.0))
    assert await store.claim(at(8.0), 10, lease=60) == []  # a done look-up is the cache: not redone
    await store.close()


async def test_concurrent_claims_never_share_an_action(database_url: str) -> None:
    """Several workers (two stores on one database: two instances) claim disjoint sets."""
    first, second = await open_db(database_url), await open_db(database_url)
    await first.add_actions([FindCaller("CA1", f"+1415555{n:04d}") for n in range(60)], now=at(1.0))
    batches = await asyncio.gather(*(store.claim(at(2.0), 7, lease=60) for store in (first, second) * 5))
    ids = [row.id for batch in batches for row in batch]
    assert len(ids) == len(set(ids)) == 60
    await first.close()
    await second.close()


async def test_events_of_one_call_from_two_instances_fold_consistently(database_url: str) -> None:
    """Legs of one call ingested at once through two stores: none of them is lost from the call's state."""
    first, second = await open_db(database_url), await open_db(database_url)
    legs = [
        CallEvent(kind=EventKind.LEG_STATUS, call_sid=EVENT.call_sid, at=T0, leg_sid=f"CA{n:032d}", leg_to="client:x",
                  status="ringing", sequence=1)
        for n in range(20)
    ]  # fmt: skip
    await asyncio.gather(
        *((first, second)[n % 2].ingest([f"leg{n}"], leg, reduce, now=at(1.0)) for n, leg in enumerate(legs))
    )
    call = await first.get_call(EVENT.call_sid)
    assert call is not None
    assert len(call.legs) == 20
    assert await first.count_events() == 20
    await first.close()
    await second.close()


async def test_finished_calls_drop_their_timers_and_stop_being_stale(database_url: str) -> None:
    """Timers of a call that reached its outcome are dropped; only unfinished calls are reconciled."""
    store = await open_db(database_url)
    call = EVENT.call_sid
    await store.ingest(["start"], EVENT, reduce, now=at(1.0))
    assert await store.stale_calls(at(2.0), 10) == [call]
    await store.touch_call(call, at(5.0))
    assert await store.stale_calls(at(2.0), 10) == []
    over = EVENT.model_copy(update={"kind": EventKind.CALL_STATUS, "status": "completed"})
    waiting = (await store.ingest(["over"], over, reduce, now=at(5.5))).outcome
    assert waiting is not None
    assert [a.kind for a in waiting.actions] == ["timer"]  # over, but no verdict yet: a bounded wait
    hung_up = CallEvent(kind=EventKind.DIAL_ENDED, call_sid=call, at=T0, direction="inbound",
                        from_number="+14155550123", to_number="+16505550100", status="completed",
                        dial_status="no-answer", dial_bridged=False)  # fmt: skip
    outcome = (await store.ingest(["hung-up"], hung_up, reduce, now=at(6.0))).outcome
    assert outcome is not None
    assert outcome.call.finished
    assert [row.kind for row in await store.list_actions([DROPPED])] == ["timer"]
    assert await store.stale_calls(at(100.0), 10) == []
    assert await store.schema_version() == await store.migrate() >= 1
    await store.close()


async def test_filed_recordings_and_the_link_secret(database_url: str) -> None:
    """The link secret is created once and shared; a recording is filed once; its Zendesk upload is kept."""
    first, second = await open_db(database_url), await open_db(database_url)
    assert await first.schema_version() == len(MIGRATIONS)
    secret = await first.link_secret(b"\x01" * 32)
    assert secret == b"\x01" * 32
    assert await second.link_secret(b"\x02" * 32) == secret  # another instance, or a restart: the same secret
    sid = "RE" + "a" * 32
    assert await first.filed_recording(sid) is None
    filed = FiledRecording(sid, "AC" + "b" * 32, EVENT.call_sid, "https://api.twilio.com/x", 2, at(10.0))
    assert await first.file_recording(filed) == filed
    again = await second.file_recording(FiledRecording(sid, "AC" + "c" * 32, "CA2", "https://y", 1, at(20.0)))
    assert again == filed  # the first filing stands: its time is what a link's lifetime counts from
    await second.save_upload(sid, "tok1", "https://z/attachments/token/tok1/", now=at(30.0))
    stored = await first.filed_recording(sid)
    assert stored is not None
    assert (stored.upload_token, stored.upload_url, stored.uploaded_at) == (
        "tok1",
        "https://z/attachments/token/tok1/",
        at(30.0),
    )
    await first.close()
    await second.close()


async def test_dedupe_keys_are_forgotten_oldest_first_a_batch_at_a_time(database_url: str) -> None:
    """Keys first seen before the cut-off go, at most `limit` a call; newer ones stay; a forgotten key is new again."""
    store = await open_db(database_url)
    for n in range(5):
        event = EVENT.model_copy(update={"call_sid": f"CA{n:032x}"})
        assert not (await store.ingest([f"old|{n}"], event, reduce, now=at(100.0 + n))).duplicate
    assert not (await store.ingest(["new"], EVENT, reduce, now=at(1000.0))).duplicate
    assert [await store.forget_seen(at(500.0), limit=3) for _ in range(3)] == [3, 2, 0]
    assert (await store.ingest(["new"], EVENT, reduce, now=at(1001.0))).duplicate
    assert not (await store.ingest(["old|0"], EVENT, reduce, now=at(1002.0))).duplicate
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
        db.executescript(released_schema.SQLITE[0])
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
    (row,) = await store.claim(at(5.0), 10, lease=60)
    assert row.action == FindCaller(EVENT.call_sid, "+14155550123")
    assert await store.stale_calls(at(10.0), 10) == [EVENT.call_sid]
    assert not (await store.ingest(["k"], EVENT, reduce, now=at(20.0))).duplicate
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
    from bridge.devtools.demo import local_bridge
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


async def test_an_outbox_written_before_typed_actions_is_still_delivered(tmp_path: Path) -> None:
    """Rows as the untyped code stored them (dependencies named in the payload) decode and deliver as before."""
    from bridge.devtools.demo import local_bridge
    from tests.conftest import FAST_RETRY

    path = tmp_path / "untyped.db"
    store = await SqliteStore.open(str(path))  # create and migrate the file
    await store.close()
    sid, user, ticket = "CA" + "5" * 32, "tel:+14155550123:user", "CA" + "5" * 32 + ":ticket"
    voice = {
        "from": "+14155550123",
        "to": "+16505550100",
        "started_at": "2026-09-15T14:02:15Z",
        "call_duration": 95,
        "recording_url": "https://api.twilio.com/x/RE1.mp3",
        "answered_by_id": 1001,
    }
    created = {
        "via_id": 45,
        "subject": "Call from +14155550123",
        "external_id": sid,
        "assignee_id": 1001,
        "comment": {"body": "Inbound call", "public": False},
    }
    rows = [
        (user, "find_caller", {"phone": "+14155550123"}, []),
        (f"{sid}:display_user:1001", "display_user", {"agent_id": 1001, "user_from": user}, [user]),
        (ticket, "create_ticket", {"ticket": created, "display_to_agent": 1001, "requester_from": user}, [user]),
        (f"{sid}:voice_comment", "add_voice_comment", {"voice_comment": voice, "ticket_from": ticket}, [ticket]),
        (f"{sid}:note:transcription", "add_note", {"body": "Transcription: hi", "ticket_from": ticket}, [ticket]),
        (f"{sid}:timer:recording_wait", "timer", {"timer": "recording_wait"}, []),
    ]
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO actions (key, kind, call_sid, payload, needs, next_at, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 0, strftime('%s', 'now'), 0)",
            [(key, kind, sid, json.dumps(payload), json.dumps(needs)) for key, kind, payload, needs in rows],
        )
    async with local_bridge(path, retry=FAST_RETRY) as bridge:
        await bridge.settle()
        assert (await bridge.store.stats(bridge.clock())).dead == 0
        snapshot = bridge.sandbox.snapshot()
    (made,) = call_outcome(snapshot, sid)
    assert (made["requester_id"], made["assignee_id"]) == (2001, 1001)
    assert voice_comments(made) == [voice]
    assert [c["body"] for c in made["comments"] if c["type"] == "Comment"][-1] == "Transcription: hi"
    assert {(pop["kind"], pop["agent_id"]) for pop in snapshot["displays"]} == {("user", 1001), ("ticket", 1001)}


async def test_a_postgres_database_of_the_first_released_schema_is_upgraded(pg_url: str) -> None:
    """A PostgreSQL database at v1 gains the recordings tables (v3) and keeps its outbox."""
    import asyncpg

    from bridge.store.postgres import PostgresStore

    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(released_schema.POSTGRES[0])
        await conn.execute(
            "CREATE TABLE bridge_schema (version INTEGER NOT NULL); INSERT INTO bridge_schema VALUES (1)"
        )
        await conn.execute(
            "INSERT INTO actions (key, kind, call_sid, payload, next_at, created_at, updated_at)"
            " VALUES ('tel:+14155550123:user', 'find_caller', $1, '{\"phone\": \"+14155550123\"}', 0, 1, 1)",
            EVENT.call_sid,
        )
    finally:
        await conn.close()
    store = await PostgresStore.open(pg_url)
    assert await store.schema_version() == len(MIGRATIONS)
    (row,) = await store.claim(at(5.0), 10, lease=60)
    assert row.action == FindCaller(EVENT.call_sid, "+14155550123")
    assert await store.filed_recording("RE" + "0" * 32) is None
    await store.close()


async def test_a_new_pop_is_claimed_before_a_backlog(database_url: str) -> None:
    """With voice comments and notes queued earlier, a ringing call's look-up, pop and popping create go first."""
    store = await open_db(database_url)
    backlog: list[Action] = [AddNote(f"CA{n:032d}", "late", f"note {n}") for n in range(20)]
    comment = VoiceComment(from_="+14155550123", to="+16505550100", started_at="2026-09-15T14:02:07Z",
                           call_duration=5, recording_url=None)  # fmt: skip
    backlog += [AddVoiceComment(f"CB{n:032d}", comment) for n in range(20)]
    await store.add_actions(backlog, now=at(1.0))
    sid = "CC" + "3" * 32
    ticket = VoiceTicket(via_id=45, subject="Call", external_id=sid)
    urgent = [DisplayUser(sid, 1001, "+14155550999"), CreateTicket(sid, ticket, display_to_agent=1002)]
    await store.add_actions([*urgent, CreateTicket("CD" + "4" * 32, ticket)], now=at(2.0))
    assert [row.action for row in await store.claim(at(3.0), 10, lease=60, urgent_only=True)] == urgent
    first = await store.claim(at(3.0), 1, lease=60)
    assert not first[0].urgent  # only background work is left, oldest first
    assert first[0].action == backlog[0]
    await store.close()


async def test_an_outage_backlog_is_brought_forward_but_not_timers(database_url: str) -> None:
    """Actions waiting out a failure's backoff become due at once; a durable timer keeps its time."""
    store = await open_db(database_url)
    failing = AddNote("CA" + "5" * 32, "n", "failed")
    timer = Timer("CA" + "6" * 32, RECORDING_WAIT, at(500.0))
    await store.add_actions([failing, timer], now=at(1.0))
    (failed,) = await store.claim(at(1.0), 2, lease=60)
    await store.retry_later(failed.id, next_at=at(600.0), error="HTTP 503", now=at(2.0))
    assert await store.bring_forward(at(3.0)) == 1
    assert [row.action for row in await store.claim(at(3.0), 10, lease=3600)] == [failing]
    assert await store.bring_forward(at(4.0)) == 0
    assert [row.action for row in await store.claim(at(500.0), 10, lease=60)] == [timer]
    await store.close()


async def test_the_pacer_gives_one_slot_an_interval_across_stores(database_url: str) -> None:
    """Two stores on one database (two instances) ask for call slots at once: one slot a second, all told."""
    first, second = await open_db(database_url), await open_db(database_url)
    asked = await asyncio.gather(*(store.pace(at(10.0), 1.0) for store in (first, second) * 3))
    assert asked.count(None) == 1  # one went at once
    assert [slot for slot in asked if slot is not None] == [at(11.0)] * 5  # the rest: when the next is free
    assert await second.pace(at(10.5), 1.0) == at(11.0)
    assert await first.pace(at(11.0), 1.0) is None
    await first.close()
    await second.close()
