"""Delivery results: each class stores exactly the JSON earlier versions wrote, and their rows still read."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.core.actions import ActionKind, CreateTicket, FindCaller, caller_key, ticket_key
from bridge.store import DEAD, DONE, PENDING, ActionRow
from bridge.store.sqlite import SqliteStore
from bridge.zendesk.outbox.results import (
    CallerCreated,
    CallerFound,
    CommentAdded,
    CommentFound,
    CommentMoved,
    Needs,
    Popped,
    RecordFound,
    RecordMade,
    RecordUpdated,
    Result,
    TicketFound,
    TicketMade,
    TicketReused,
    decode,
)
from schemas.zendesk import VoiceTicket

SID = "CA" + "7" * 32
T0 = datetime(2026, 9, 15, 14, 2, 7, tzinfo=UTC)

# The `result` column as the outbox wrote it before results were typed (json.dumps of its dicts), byte for byte.
ROWS: list[tuple[ActionKind, str, Result]] = [
    (ActionKind.FIND_CALLER, '{"user_id": 3001}', CallerFound(3001)),
    (ActionKind.FIND_CALLER, '{"user_id": 3002, "created": true}', CallerCreated(3002)),
    (ActionKind.CREATE_TICKET, '{"ticket_id": 12, "via_id": 45}', TicketMade(12, 45)),
    (ActionKind.CREATE_TICKET, '{"ticket_id": 12, "found": true, "via_id": 44}', TicketFound(12, 44)),
    (ActionKind.CREATE_TICKET, '{"ticket_id": 7, "existing": true}', TicketReused(7)),
    (ActionKind.CREATE_TICKET, '{"ticket_id": 7}', TicketMade(7, None)),  # stored before the via was kept
    (ActionKind.CREATE_TICKET, '{"ticket_id": 7, "found": true}', TicketFound(7, None)),
    (ActionKind.ADD_VOICE_COMMENT, '{"ticket_id": 12}', CommentAdded(12)),
    (ActionKind.ADD_VOICE_COMMENT, '{"ticket_id": 15, "found": true}', CommentFound(15)),
    (ActionKind.ADD_VOICE_COMMENT, '{"ticket_id": 15, "moved_from": 12}', CommentMoved(15, 12)),
    (ActionKind.ADD_NOTE, '{"ticket_id": 12}', CommentAdded(12)),
    (ActionKind.ADD_NOTE, '{"ticket_id": 16, "moved_from": 12}', CommentMoved(16, 12)),
    (ActionKind.CREATE_CALL_RECORD, '{"call_id": 9001, "ticket_id": 12}', RecordMade(9001, 12)),
    (ActionKind.CREATE_CALL_RECORD, '{"call_id": 9001, "ticket_id": 15, "found": true}', RecordFound(9001, 15)),
    (ActionKind.CREATE_CALL_RECORD, '{"call_id": 9002}', RecordMade(9002, None)),  # a record without a ticket
    (ActionKind.UPDATE_CALL_RECORD, '{"call_id": 9001}', RecordUpdated(9001)),
    (ActionKind.DISPLAY_USER, "{}", Popped()),
    (ActionKind.DISPLAY_TICKET, "{}", Popped()),
]


@pytest.mark.parametrize(("kind", "stored", "result"), ROWS, ids=[f"{kind.value}:{raw}" for kind, raw, _ in ROWS])
def test_todays_rows_decode_and_encode_byte_for_byte(kind: ActionKind, stored: str, result: Result) -> None:
    """A row written before results were typed decodes to its class, which writes the very same bytes."""
    assert decode(kind, json.loads(stored)) == result
    assert json.dumps(result.encode()) == stored


def test_a_timer_leaves_no_result() -> None:
    """A timer settles inside its own transaction and stores nothing for dependants."""
    assert decode(ActionKind.TIMER, {}) is None


def test_a_row_without_its_field_is_named_in_the_error() -> None:
    """A stored result missing the id its kind must carry is refused with the kind and the row, not read as None."""
    with pytest.raises(ValueError, match="create_ticket result has no integer ticket_id"):
        decode(ActionKind.CREATE_TICKET, {"via_id": 45})
    with pytest.raises(ValueError, match="find_caller result has no integer user_id"):
        decode(ActionKind.FIND_CALLER, {"user_id": True})


def row(action: FindCaller | CreateTicket, status: str, result: str | None) -> ActionRow:
    """Return a stored action with a raw `result` column."""
    return ActionRow(1, action, (), status, 1, T0, T0, None, json.loads(result) if result else None)


def test_needs_reads_only_done_dependencies_by_type() -> None:
    """A dependency reads as its typed result once done; pending, dead or absent it reads as None."""
    phone = "+14155550142"
    ticket = CreateTicket(SID, VoiceTicket(via_id=46, subject="Call", external_id=SID))
    done = Needs({caller_key(phone): row(FindCaller(SID, phone), DONE, '{"user_id": 3001}'),
                  ticket_key(SID): row(ticket, DONE, '{"ticket_id": 12, "via_id": 46}')})  # fmt: skip
    assert done.caller(phone) == CallerFound(3001)
    assert done.ticket(SID) == TicketMade(12, 46)
    assert done.record(SID) is None
    assert done.caller(None) is None
    dead = Needs({ticket_key(SID): row(ticket, DEAD, None)})
    assert dead.ticket(SID) is None
    assert dead.status(ticket_key(SID)) == DEAD
    assert dead.status(caller_key(phone)) is None
    assert Needs({ticket_key(SID): row(ticket, PENDING, None)}).ticket(SID) is None


async def test_the_store_keeps_todays_bytes_and_reads_rows_an_earlier_version_wrote(tmp_path: Path) -> None:
    """Through a real store: a typed result is stored as the old JSON, and a row written by the old code still reads."""
    path = tmp_path / "results.db"
    store = await SqliteStore.open(str(path))
    phone = "+14155550142"
    look_up = FindCaller(SID, phone)
    ticket = CreateTicket(SID, VoiceTicket(via_id=45, subject="Call", external_id=SID))
    await store.add_actions([look_up, ticket], now=T0)
    claimed = {row.key: row for row in await store.claim(T0, 10, lease=60)}
    await store.finish(claimed[look_up.key].id, DONE, result=CallerCreated(3002).encode(), error=None, now=T0)
    await store.finish(claimed[ticket.key].id, DONE, result=TicketMade(12, 45).encode(), error=None, now=T0)
    with sqlite3.connect(path) as raw:
        stored = dict(raw.execute("SELECT key, result FROM actions").fetchall())
        assert stored == {
            look_up.key: '{"user_id": 3002, "created": true}',
            ticket.key: '{"ticket_id": 12, "via_id": 45}',
        }
        # What a version that did not keep the via wrote:
        raw.execute("UPDATE actions SET result = ? WHERE key = ?", ('{"ticket_id": 7}', ticket.key))
    needs = Needs(await store.results([look_up.key, ticket.key]))
    assert needs.caller(phone) == CallerCreated(3002)
    assert needs.ticket(SID) == TicketMade(7, None)
    await store.close()


def test_a_caller_row_keeping_the_last_look_up_decodes_as_the_caller_and_leaves_no_result_of_its_own() -> None:
    """What routing's last look-up found rides beside the caller's user; the look-up itself stores nothing."""
    stored = {"user_id": 3001, "customer": {"user_id": 3001, "organization_id": None, "tags": ["vip"], "tickets": []}}
    assert decode(ActionKind.FIND_CALLER, stored) == CallerFound(3001)
    assert decode(ActionKind.LOOK_UP_CUSTOMER, {}) is None
