"""Routing that knows the customer, end to end: Twilio's stand-in, the real bridge, Zendesk's sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.appkeys import STORE
from bridge.devtools.demo import DEMO_NUMBER, calls_mode
from tests import customer_flows as flows
from tests.conftest import BridgeFactory, Rig, call_outcome, call_records, flow_rig, voice_comments
from tests.menu_flows import MENU_LINES, in_menu
from tests.queue_flows import own_sales


@pytest.fixture
def rig(make_bridge: BridgeFactory, database_url: str) -> Rig:
    """Run one flow's bridge on either store, with its settings."""
    return flow_rig(make_bridge, database_url, flows.FLOWS, flows.TEAM, calls=False)


def displays(snapshot: dict[str, Any], agent_id: int) -> list[tuple[str, int]]:
    """Return what was popped to an agent, in order: (user or ticket, its id)."""
    return [(pop["kind"], pop["id"]) for pop in snapshot["displays"] if pop["agent_id"] == agent_id]


async def test_a_caller_with_an_open_ticket_rings_its_agent_first_and_the_call_goes_on_it(rig: Rig) -> None:
    """bob's open ticket: bob alone rings, is shown that ticket, and the answered call is logged on it."""
    async with rig("own_agent_first") as bridge:
        (call,) = await flows.own_agent_first(bridge)
        snapshot = bridge.sandbox.snapshot()
        state = await bridge.app[STORE].get_call(call.sid)
    (ticket,) = [ticket for ticket in snapshot["tickets"] if ticket["requester_id"] == flows.DANA_ID]
    assert state is not None
    assert state.open_ticket == ticket["id"]
    assert state.offers[0].agents == [flows.BOB]
    assert state.offers[0].seconds == flows.PREFERRED_SECONDS
    assert ("ticket", ticket["id"]) in displays(snapshot, 1002)
    assert call_outcome(snapshot, call.sid) == []  # no new ticket: the open one took the call
    assert len(voice_comments(ticket)) == 1
    notes = [comment["body"] for comment in ticket["comments"] if comment["type"] == "Comment"]
    assert any("answered by" in note for note in notes)


async def test_with_call_records_the_record_goes_on_the_open_ticket_too(rig: Rig) -> None:
    """ZENDESK_API=calls: the answered call's record is shown on the caller's open ticket, not a new one."""
    async with rig("own_agent_first", **calls_mode()) as bridge:
        (call,) = await flows.own_agent_first(bridge)
        snapshot = bridge.sandbox.snapshot()
        state = await bridge.app[STORE].get_call(call.sid)
    assert state is not None
    (record,) = call_records(snapshot, call.sid)
    assert record["ticket_id"] == state.open_ticket
    assert record["completion_status"] == "completed"
    assert call_outcome(snapshot, call.sid) == []


async def test_an_away_assignee_leaves_the_caller_to_the_usual_distribution(rig: Rig) -> None:
    """bob away: alice rings at once, and the call becomes its own ticket."""
    async with rig("own_agent_away") as bridge:
        (call,) = await flows.own_agent_away(bridge)
        snapshot = bridge.sandbox.snapshot()
        state = await bridge.app[STORE].get_call(call.sid)
    assert state is not None
    assert state.open_ticket is None
    assert state.offers[0].agents == [flows.ALICE]
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["assignee_id"] == 1001


async def test_of_two_open_tickets_the_latest_updated_of_an_agent_of_the_line_wins(rig: Rig) -> None:
    """alice's pending ticket, bob's newer open one, a newer solved one, the newest one assigned outside the line."""
    async with rig("two_open_tickets") as bridge:
        (call,) = await flows.two_open_tickets(bridge)
        snapshot = bridge.sandbox.snapshot()
        state = await bridge.app[STORE].get_call(call.sid)
    bobs = [t for t in snapshot["tickets"] if t["requester_id"] == flows.DANA_ID and t["assignee_id"] == 1002]
    (ticket,) = bobs
    assert state is not None
    assert state.open_ticket == ticket["id"]
    assert ("ticket", ticket["id"]) in displays(snapshot, 1002)
    assert len(voice_comments(ticket)) == 1


async def test_a_priority_caller_waits_ahead_of_an_ordinary_one_who_came_first(rig: Rig) -> None:
    """Erin (tag vip) calls 20 s after Dana: alice, freeing up, gets Erin."""
    async with rig("priority_after_ordinary") as bridge:
        erin, dana = await flows.priority_after_ordinary(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, erin.sid)
    assert ticket["assignee_id"] == 1001
    (missed,) = call_outcome(snapshot, dana.sid)
    assert "missed_call" in missed["tags"]
    notes = " ".join(comment["body"] for comment in missed["comments"] if comment["type"] == "Comment")
    assert "number 2 in line" in notes or "number 1 in line" in notes


async def test_an_ordinary_caller_ages_into_priority_under_a_stream_of_priority_callers(rig: Rig) -> None:
    """PRIORITY_AGING_SECONDS=60: two VIPs who came later go first; after 60 s Dana goes before the third."""
    async with rig("aging_under_priority_stream") as bridge:
        dana, gwen = await flows.aging_under_priority_stream(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, dana.sid)
    assert ticket["assignee_id"] == 1001
    (missed,) = call_outcome(snapshot, gwen.sid)
    assert "missed_call" in missed["tags"]


async def test_a_look_up_slower_than_the_budget_applies_from_the_next_offer(rig: Rig) -> None:
    """The look-up hangs past LOOKUP_BUDGET_MS: alice rings first; at her ring-out, bob's open ticket wins."""
    async with rig("slow_look_up") as bridge:
        (call,) = await flows.slow_look_up(bridge)
        snapshot = bridge.sandbox.snapshot()
        state = await bridge.app[STORE].get_call(call.sid)
    assert state is not None
    assert [offer.agents for offer in state.offers] == [[flows.ALICE], [flows.BOB]]
    assert state.open_ticket is not None
    assert ("ticket", state.open_ticket) in displays(snapshot, 1002)
    assert call_outcome(snapshot, call.sid) == []


async def test_a_known_callers_late_look_up_routes_on_what_their_last_one_found(rig: Rig) -> None:
    """Dana called before: her look-up hangs past LOOKUP_BUDGET_MS, and bob, her ticket's agent, rings first."""
    async with rig("slow_look_up_known") as bridge:
        call, _ = await flows.slow_look_up_known(bridge)
        snapshot = bridge.sandbox.snapshot()
        state = await bridge.app[STORE].get_call(call.sid)
    assert state is not None
    assert state.offers[0].agents == [flows.BOB]
    assert state.open_ticket is not None
    (ticket,) = [ticket for ticket in snapshot["tickets"] if ticket["id"] == state.open_ticket]
    assert len(voice_comments(ticket)) == 1  # logged on her open ticket


async def test_a_waiting_caller_hears_the_wait_to_expect(rig: Rig) -> None:
    """alice on a call, four-minute calls lately: Dana, first in line, hears "about four minutes"."""
    async with rig("expected_wait") as bridge:
        dana, _ = await flows.expected_wait(bridge)
    said = " ".join(flows.spoken(dana))
    assert "You are number 1 in line." in said
    assert "Your expected wait is about four minutes." in said


async def test_a_menu_leading_to_a_line_that_knows_the_customer_looks_them_up_while_it_plays(
    make_bridge: BridgeFactory,
) -> None:
    """Support's menu (no rules of its own) leads to Sales, which rings the caller's agent first: bob alone."""
    lines = MENU_LINES.replace(f'agents = ["{flows.BOB}"]', f'agents = ["{flows.ALICE}", "{flows.BOB}"]\n'
                               "preferred_agent_seconds = 10")  # fmt: skip
    async with make_bridge(stand_in=True, virtual_time=True, agents=dict(flows.TEAM), lines=lines) as bridge:
        bridge.sandbox.open_ticket(flows.DANA_ID, flows.TEAM[flows.BOB])
        fake = flows.twilio(bridge)
        own_sales(bridge)
        call = await fake.incoming(flows.DANA, DEMO_NUMBER)
        await in_menu(bridge, call)
        await flows.knows(bridge, call)
        await fake.press(call, "1")
        leg = await fake.ringing(flows.BOB)
        assert fake.legs(call) == [leg]
        await fake.hang_up(call)
        await flows.finished(bridge, call)
        snapshot = bridge.sandbox.snapshot()
    state_ticket = [t for t in snapshot["tickets"] if t["requester_id"] == flows.DANA_ID and t["via_id"] == 0]
    assert ("ticket", state_ticket[0]["id"]) in displays(snapshot, 1002)
