"""Hold and resume, end to end: Twilio's stand-in follows the bridge's TwiML and REST requests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from bridge.appkeys import DESK, ROOM_CONTROL
from bridge.devtools.demo import LocalBridge, calls_mode
from bridge.devtools.queue_demo import TEAM
from bridge.dispatch.room import ControlFailed
from tests import room_flows as flows
from tests.conftest import BridgeFactory, call_outcome, call_records

Rig = Callable[..., AbstractAsyncContextManager[LocalBridge]]


@pytest.fixture
def rig(make_bridge: BridgeFactory, database_url: str) -> Rig:
    """Run one flow's bridge on either store, in calls mode."""

    @asynccontextmanager
    async def running(**settings: Any) -> AsyncIterator[LocalBridge]:
        options = {"agents": dict(TEAM), **calls_mode(), **settings}
        async with make_bridge(stand_in=True, virtual_time=True, database_url=database_url, **options) as bridge:
            yield bridge

    return running


async def test_a_held_call_is_resumed_and_keeps_one_ticket_with_its_hold_time(rig: Rig) -> None:
    """20 s talk, 30 s on hold, 40 s talk: one ticket, one record, hold_time 30, talk_time 60."""
    async with rig() as bridge:
        (call,) = await flows.held_then_resumed(bridge)
        fake = bridge.stand_in
        assert fake is not None
        heard = [prompt for prompt in fake.heard(call) if prompt.verb == "Play"]
        snapshot = bridge.sandbox.snapshot()
    assert heard, "the customer heard the hold music"
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["via_id"] == 45
    assert ticket["assignee_id"] == 1001
    (record,) = call_records(snapshot, call.sid)
    assert record["completion_status"] == "completed"
    assert record["hold_time"] == 30
    assert record["talk_time"] == 60
    assert record["agent_id"] == 1001


async def test_a_customer_who_hangs_up_on_hold_is_abandoned_on_hold(rig: Rig) -> None:
    """Dana hangs up after 50 s of hold music: the record says abandoned_on_hold, with the hold time."""
    async with rig() as bridge:
        (call,) = await flows.hung_up_on_hold(bridge)
        snapshot = bridge.sandbox.snapshot()
    (record,) = call_records(snapshot, call.sid)
    assert record["completion_status"] == "abandoned_on_hold"
    assert record["hold_time"] == 50


async def test_a_cold_transfer_gives_the_ticket_to_the_agent_who_took_the_call(rig: Rig) -> None:
    """alice hands Dana to bob: one ticket, reassigned to bob with a note, popped to him; the record names bob."""
    async with rig() as bridge:
        (call,) = await flows.transferred_cold(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["assignee_id"] == 1002
    notes = [c["body"] for c in ticket["comments"] if c["type"] == "Comment"]
    assert any("transferred by client:alice to client:bob" in note for note in notes), notes
    (record,) = call_records(snapshot, call.sid)
    assert record["agent_id"] == 1002
    assert record["hold_time"] == 6
    assert record["completion_status"] == "completed"


@pytest.mark.parametrize("complete", [True, False], ids=["complete", "cancel"])
async def test_a_consultation_completes_as_a_transfer_or_is_called_off(rig: Rig, complete: bool) -> None:
    """Consult bob, then complete (bob keeps Dana) or cancel (alice keeps her); consultation_time is 15 s."""
    async with rig() as bridge:
        (call,) = await flows.consulted(bridge, complete=complete)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    (record,) = call_records(snapshot, call.sid)
    assert ticket["assignee_id"] == (1002 if complete else 1001)
    assert record["agent_id"] == (1002 if complete else 1001)
    assert record["consultation_time"] == 15
    assert record["completion_status"] == "completed"


async def test_a_third_party_joins_and_the_call_stays_one_ticket(rig: Rig) -> None:
    """An outside number added: one ticket, one record, still alice's."""
    async with rig() as bridge:
        (call,) = await flows.three_way(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["assignee_id"] == 1001
    (record,) = call_records(snapshot, call.sid)
    assert record["agent_id"] == 1001
    assert record["completion_status"] == "completed"


async def test_a_transfer_to_a_number_keeps_the_ticket_and_notes_where_the_call_went(rig: Rig) -> None:
    """Dana handed to an outside number: the ticket stays alice's, with a note naming the number."""
    async with rig() as bridge:
        (call,) = await flows.transferred_to_number(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["assignee_id"] == 1001
    notes = [c["body"] for c in ticket["comments"] if c["type"] == "Comment"]
    assert any("transferred by client:alice to +14155550177" in note for note in notes), notes
    (record,) = call_records(snapshot, call.sid)
    assert record["agent_id"] == 1001
    assert record["hold_time"] == 5
    assert record["completion_status"] == "completed"


@pytest.mark.parametrize("ring_out", [False, True], ids=["answered", "rang_out"])
async def test_a_transfer_to_a_line_waits_for_its_agent_and_gives_him_the_ticket(rig: Rig, ring_out: bool) -> None:
    """alice sends Dana to Sales; bob frees up, is rung into her room (once ringing out) and takes her."""
    async with rig(lines=flows.TWO_LINES) as bridge:
        (call,) = await flows.transferred_to_line(bridge, ring_out=ring_out)
        (bob,) = [agent for agent in await bridge.app[DESK].agents() if agent.identity == flows.BOB]
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["group_id"] == 5002
    assert ticket["assignee_id"] == 1002
    notes = [c["body"] for c in ticket["comments"] if c["type"] == "Comment"]
    assert any("transferred by client:alice to the line Sales" in note for note in notes), notes
    (record,) = call_records(snapshot, call.sid)
    assert record["agent_id"] == 1002
    assert record["completion_status"] == "completed"
    assert bob.calls == 1  # answering starts the count of missed offers over: the pure tests count the ring-out


async def test_a_customer_who_hangs_up_waiting_in_a_line_abandoned_it_in_the_queue(rig: Rig) -> None:
    """Nobody of Sales was free: the record says abandoned_in_queue; the ticket stays alice's, nobody took it."""
    async with rig(lines=flows.TWO_LINES) as bridge:
        (call,) = await flows.hung_up_in_line(bridge)
        waiting = await bridge.app[DESK].waiting()
        snapshot = bridge.sandbox.snapshot()
    assert waiting == []
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["assignee_id"] == 1001
    (record,) = call_records(snapshot, call.sid)
    assert record["completion_status"] == "abandoned_in_queue"


async def test_a_transfer_to_a_line_names_a_known_line_and_a_second_click_changes_nothing(rig: Rig) -> None:
    """An unknown line is refused (404), nothing done; Sales twice is one transfer; another line meanwhile: 409."""
    async with rig(lines=flows.TWO_LINES) as bridge:
        control = bridge.app[ROOM_CONTROL]
        call = await flows.sent_to_sales(bridge)
        with pytest.raises(ControlFailed) as unknown:
            await control.transfer_to_line(await flows.state(bridge, call), "Nowhere", "line-2")
        again = await control.transfer_to_line(await flows.state(bridge, call), flows.SALES, "line-3")
        with pytest.raises(ControlFailed) as elsewhere:
            await control.transfer_to_line(await flows.state(bridge, call), "Support", "line-4")
        waiting = await bridge.app[DESK].waiting()
        stand_in = bridge.stand_in
        assert stand_in is not None
        await stand_in.hang_up(call)
    assert (unknown.value.status, elsewhere.value.status) == (404, 409)
    assert again is not None
    assert [(row.call_sid, row.line, row.room) for row in waiting] == [(call.sid, "Sales", True)]
