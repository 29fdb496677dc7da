"""The queue, end to end: Twilio's stand-in follows the bridge's TwiML and REST moves, Zendesk's sandbox records."""

from __future__ import annotations

import pytest

from bridge.appkeys import DESK
from bridge.devtools.demo import DEMO_NUMBER, calls_mode
from bridge.devtools.waiting import wait_until
from tests import queue_flows as flows
from tests.conftest import BridgeFactory, Rig, call_outcome, call_records, flow_rig, voice_comments


@pytest.fixture
def rig(make_bridge: BridgeFactory, database_url: str) -> Rig:
    """Run one flow's bridge on either store, in calls mode, with its settings."""
    return flow_rig(make_bridge, database_url, flows.FLOWS, flows.TEAM)


async def test_a_caller_waits_in_the_queue_and_rings_the_agent_who_frees_up(rig: Rig) -> None:
    """Nobody available: Dana waits; alice chooses available; Dana rings her and she answers."""
    async with rig("queued_then_answered") as bridge:
        (call,) = await flows.queued_then_answered(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["via_id"] == 45
    assert ticket["assignee_id"] == 1001
    (record,) = call_records(snapshot, call.sid)
    assert record["completion_status"] == "completed"
    assert record["queue_time"] == 40
    assert record["wait_time"] == 45  # 40 s in line, then 5 s ringing alice
    assert record["time_to_answer"] == 45


async def test_a_caller_who_hangs_up_in_the_queue_is_a_missed_call_that_says_how_long(rig: Rig) -> None:
    """Dana gives up after 75 s in line: a missed-call ticket saying so, a record abandoned in the queue."""
    async with rig("queued_then_hung_up") as bridge:
        (call,) = await flows.queued_then_hung_up(bridge)
        assert await bridge.app[DESK].waiting() == []
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert "missed_call" in ticket["tags"]
    notes = " ".join(comment["body"] for comment in ticket["comments"] if comment["type"] == "Comment")
    assert "waited 75 s in the queue, number 1 in line," in notes
    (record,) = call_records(snapshot, call.sid)
    assert record["completion_status"] == "abandoned_in_queue"
    assert record["call_abandoned_position"] == 1
    assert record["queue_time"] == 75


async def test_a_caller_still_waiting_at_queue_max_wait_goes_to_voicemail(rig: Rig) -> None:
    """QUEUE_MAX_WAIT_SECONDS after the call arrived, the caller is moved to voicemail and leaves a message."""
    async with rig("queue_timeout") as bridge:
        (call,) = await flows.queue_timeout(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["via_id"] == 44
    assert len(voice_comments(ticket)) == 1
    (record,) = call_records(snapshot, call.sid)
    assert record["exceeded_queue_time"] is True
    assert record["voicemail"] is True
    assert record["wait_time"] == 120


async def test_a_caller_who_finds_the_queue_full_goes_straight_to_voicemail(rig: Rig) -> None:
    """QUEUE_MAX_SIZE=1: Dana waits; Erin, behind her, hears the voicemail greeting at once (`overflowed`)."""
    async with rig("queue_full") as bridge:
        second, first = await flows.queue_full(bridge)
        snapshot = bridge.sandbox.snapshot()
    (record,) = call_records(snapshot, second.sid)
    assert record["overflowed"] is True
    assert record["completion_status"] == "abandoned_in_voicemail"
    (first_record,) = call_records(snapshot, first.sid)
    assert first_record["completion_status"] == "abandoned_in_queue"


async def test_a_caller_whose_offer_rang_out_keeps_their_place(rig: Rig) -> None:
    """Dana rings alice, who lets it ring out; Erin came meanwhile; bob frees up and gets Dana, not Erin."""
    async with rig("rang_out_keeps_place") as bridge:
        dana, erin = await flows.rang_out_keeps_place(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, dana.sid)
    assert ticket["assignee_id"] == 1002
    (record,) = call_records(snapshot, erin.sid)
    assert record["completion_status"] == "abandoned_in_queue"


async def test_an_agent_set_away_mid_ring_is_not_offered_the_caller_again(rig: Rig) -> None:
    """longest_idle: alice rings, is set away while ringing and does not answer; the caller rings bob."""
    async with rig("agent_away_mid_ring") as bridge:
        (call,) = await flows.agent_away_mid_ring(bridge)
        alice = await bridge.app[DESK].agent(flows.ALICE)
        snapshot = bridge.sandbox.snapshot()
    assert alice.chosen == "away"
    assert alice.busy is None
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["assignee_id"] == 1002


async def test_an_agent_who_ends_wrap_up_early_puts_its_length_on_the_record(make_bridge: BridgeFactory) -> None:
    """WRAP_UP_SECONDS=60: alice talks, ends her wrap-up 12 s later in the softphone; the record says 12."""
    settings = {"agents": dict(flows.TEAM), "wrap_up_seconds": 60, **calls_mode()}
    async with make_bridge(stand_in=True, virtual_time=True, **settings) as bridge:
        fake = flows.twilio(bridge)
        await flows.choose(bridge, "away", flows.BOB)
        call = await fake.incoming(flows.DANA, DEMO_NUMBER)
        leg = await fake.ringing(flows.ALICE)
        await fake.answer(leg)
        await fake.advance(30)
        await fake.hang_up(leg)

        async def wrapping_up() -> bool:
            return (await bridge.app[DESK].agent(flows.ALICE)).busy == "wrap_up"

        await wait_until(wrapping_up, what="alice in wrap-up")  # the record waits for its wrap-up's end
        await fake.advance(12)
        await bridge.app[DESK].end_wrap_up(flows.ALICE)
        await bridge.settle()
        (record,) = call_records(bridge.sandbox.snapshot(), call.sid)
    assert record["wrap_up_time"] == 12
