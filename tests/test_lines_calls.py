"""Lines end to end: Twilio's stand-in calls two numbers, the bridge routes each to its line, Zendesk's sandbox records.

Each line's agents, queue, greeting, group, brand, nickname and caller id, through the real bridge
(tests/queue_flows.py plays the flow; tests/recordings/lines_overlapping_agents_*.jsonl keep it).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from bridge.devtools.demo import DEMO_NUMBER, LocalBridge, calls_mode
from bridge.devtools.queue_demo import ALICE, BOB, DANA, ERIN, TEAM, choose, finished, twilio
from tests import queue_flows as flows
from tests.conftest import BridgeFactory, call_outcome, call_records

Rig = Callable[..., AbstractAsyncContextManager[LocalBridge]]
SUPPORT_GREETING = "Thanks for calling Acme support."
CUSTOMER = "+14155550188"


@pytest.fixture
def rig(make_bridge: BridgeFactory, database_url: str) -> Rig:
    """Run a bridge with the two lines (Support: alice and bob; Sales: bob) on either store, in calls mode."""

    @asynccontextmanager
    async def running(**settings: Any) -> AsyncIterator[LocalBridge]:
        options = {"agents": dict(TEAM), "lines": flows.TWO_LINES, **calls_mode(), **settings}
        async with make_bridge(stand_in=True, virtual_time=True, database_url=database_url, **options) as bridge:
            yield bridge

    return running


def said(bridge: LocalBridge, call: Any) -> list[str]:
    """Return what a caller heard said (Twilio <Say>)."""
    return [prompt.text for prompt in twilio(bridge).heard(call) if prompt.verb == "Say"]


async def test_each_line_routes_to_its_agents_and_its_tickets_and_records_are_its_own(rig: Rig) -> None:
    """Sales' caller waits for bob (alice is free but not Sales'), who frees up and takes the longest waiting."""
    async with rig() as bridge:
        dana, erin, frank = await flows.lines_overlapping_agents(bridge)
        snapshot = bridge.sandbox.snapshot()
        heard = {call.sid: said(bridge, call) for call in (dana, erin, frank)}
    (sales,) = call_outcome(snapshot, dana.sid)
    assert (sales["assignee_id"], sales["brand_id"]) == (1002, 6002)  # bob; Sales' brand
    (sales_record,) = call_records(snapshot, dana.sid)
    assert (sales_record["to_line_nickname"], sales_record["brand_id"]) == ("Sales", 6002)
    assert sales_record["to_line"] == flows.SALES_NUMBER
    (support,) = call_outcome(snapshot, erin.sid)
    assert (support["assignee_id"], support["brand_id"]) == (1001, 6001)
    (support_record,) = call_records(snapshot, erin.sid)
    assert (support_record["to_line_nickname"], support_record["brand_id"]) == ("Support", 6001)
    (missed,) = call_outcome(snapshot, frank.sid)
    assert "missed_call" in missed["tags"]
    assert (missed["group_id"], missed["brand_id"]) == (5001, 6001)  # nobody assigned: Support's group
    (missed_record,) = call_records(snapshot, frank.sid)
    assert missed_record["completion_status"] == "abandoned_in_queue"
    assert missed_record["to_line_nickname"] == "Support"
    assert SUPPORT_GREETING in heard[erin.sid]
    assert SUPPORT_GREETING in heard[frank.sid]
    assert SUPPORT_GREETING not in heard[dana.sid]  # Sales has no greeting


async def test_an_agent_on_two_lines_is_offered_the_longest_waiting_caller_of_either(rig: Rig) -> None:
    """bob serves both lines: Erin (Support) waits before Dana (Sales), so bob gets Erin, then Dana.

    Each waits in their own line's queue, hearing its hold music (Sales has its own)."""
    sales_music = "https://example.com/acme-sales-hold.mp3"
    lines = flows.TWO_LINES.replace("caller_id = true", f'caller_id = true\nhold_music_url = "{sales_music}"')
    async with rig(lines=lines) as bridge:
        fake = twilio(bridge)
        flows.own_sales(bridge)
        await choose(bridge, "away", ALICE, BOB)
        erin = await fake.incoming(ERIN, DEMO_NUMBER)
        await fake.advance(flows.GREETING_SECONDS)
        await flows.queued(bridge, erin)
        await fake.advance(10)
        dana = await fake.incoming(DANA, flows.SALES_NUMBER)
        await flows.queued(bridge, dana)
        await fake.advance(10)
        await choose(bridge, "available", BOB)
        first = await fake.ringing(BOB)
        assert first.parent is erin
        await fake.answer(first)
        await fake.advance(20)
        await fake.hang_up(first)
        second = await fake.ringing(BOB)  # free again: the one left, on his other line
        assert second.parent is dana
        await fake.answer(second)
        await fake.advance(20)
        await fake.hang_up(second)
        await finished(bridge, erin, dana)
        snapshot = bridge.sandbox.snapshot()
        played = {call.sid: {p.text for p in fake.heard(call) if p.verb == "Play"} for call in (erin, dana)}
    assert [call_outcome(snapshot, call.sid)[0]["brand_id"] for call in (erin, dana)] == [6001, 6002]
    assert played[dana.sid] == {sales_music}
    assert played[erin.sid] == {bridge.settings.hold_music_url}


async def test_a_call_to_a_number_no_line_names_goes_to_the_first_line(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """A number pointed at the bridge but in no line: the first line's agents, queue and brand; logged, masked."""
    stray = "+16505550177"
    with caplog.at_level(logging.WARNING, logger="bridge"):
        async with rig() as bridge:
            fake = twilio(bridge)
            fake.own(stray, f"{bridge.url}/twilio/voice/incoming", status_callback=f"{bridge.url}/twilio/voice/status")
            await choose(bridge, "away", BOB)
            call = await fake.incoming(DANA, stray)
            await fake.advance(flows.GREETING_SECONDS)
            leg = await fake.ringing(ALICE)
            assert leg.parent is call
            await fake.answer(leg)
            await fake.advance(10)
            await fake.hang_up(leg)
            await finished(bridge, call)
            snapshot = bridge.sandbox.snapshot()
            heard = said(bridge, call)
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["brand_id"] == 6001
    (record,) = call_records(snapshot, call.sid)
    assert record["to_line_nickname"] == "Support"
    assert SUPPORT_GREETING in heard
    warned = [r.getMessage() for r in caplog.records if "is on no line" in r.getMessage()]
    assert warned == [f"call {call.sid}: call to …0177 is on no line: it goes to the first, Support"]
    assert stray not in caplog.text


async def test_calls_out_show_the_chosen_lines_caller_id_and_only_the_agents_own(rig: Rig) -> None:
    """bob calls from Sales (caller_id = true: its number) or, choosing nothing, from Support (CALLER_ID);
    alice may not call from Sales, which is not hers."""
    async with rig() as bridge:
        fake = twilio(bridge)
        app = fake.application(f"{bridge.url}/twilio/voice/outgoing", f"{bridge.url}/twilio/voice/status")
        from_sales = await fake.call_out(BOB, CUSTOMER, app, CallFrom=flows.SALES_NUMBER)
        customer = await fake.ringing(CUSTOMER)
        assert customer.from_ == flows.SALES_NUMBER
        await fake.answer(customer)
        await fake.advance(10)
        await fake.hang_up(customer)
        from_support = await fake.call_out(BOB, ERIN, app)
        callee = await fake.ringing(ERIN)
        assert callee.from_ == DEMO_NUMBER  # Support has no caller_id of its own: CALLER_ID
        await fake.answer(callee)
        await fake.advance(10)
        await fake.hang_up(callee)
        refused = await fake.call_out(ALICE, CUSTOMER, app, CallFrom=flows.SALES_NUMBER)
        await fake.advance(10)  # what the bridge says before it hangs up
        await fake.advance(bridge.settings.recording_wait_seconds)  # a call only its status told of: waited for
        await finished(bridge, from_sales, from_support, refused)
        snapshot = bridge.sandbox.snapshot()
        heard = said(bridge, refused)
    assert fake.legs(refused) == []
    assert any("cannot call from that line" in text for text in heard)
    (ticket,) = call_outcome(snapshot, from_sales.sid)
    assert (ticket["via_id"], ticket["assignee_id"], ticket["brand_id"]) == (46, 1002, 6002)
    (record,) = call_records(snapshot, from_sales.sid)
    assert (record["from_line"], record["from_line_nickname"]) == (flows.SALES_NUMBER, "Sales")
    (other,) = call_records(snapshot, from_support.sid)
    assert (other["from_line"], other["from_line_nickname"]) == (DEMO_NUMBER, "Support")
    (attempt,) = call_records(snapshot, refused.sid)  # as any refused call out: an attempt nobody answered
    assert attempt["from_line_nickname"] == "Support"  # alice's own line, never the one she could not use
