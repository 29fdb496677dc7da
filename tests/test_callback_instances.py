"""Two bridges sharing one PostgreSQL database call back: each turn placed once, the calls paced account-wide."""

from __future__ import annotations

import asyncio

from bridge.appkeys import DESK, STORE
from bridge.devtools.fake_twilio import TwilioStandIn
from bridge.devtools.fake_twilio.state import Call
from bridge.store import PENDING
from tests.callback_flows import OFFER
from tests.conftest import call_outcome, eventually, voice_comments
from tests.test_two_instances import AGENTS, NUMBERS, _settled, instances

CALLERS = ("+14155550123", "+14155550199")


async def ask(twilio: TwilioStandIn, call: Call) -> None:
    """Wait past the offer, press 1 and confirm the number the caller calls from; the call ends."""
    await twilio.advance(OFFER + 15)
    await twilio.press(call, "1")
    await twilio.press(call, "1#")
    await twilio.advance(10)
    assert call.status == "completed"


def placed(twilio: TwilioStandIn) -> list[Call]:
    """Return the calls the bridges placed through the REST API (callbacks' turns), oldest first."""
    return sorted((call for call in twilio.account.calls.values() if call.direction == "outbound-api"),
                  key=lambda call: call.created)  # fmt: skip


async def test_two_instances_call_each_request_back_once_and_pace_their_calls(pg_url: str) -> None:
    """Two requests in line; every agent frees up on both instances at once, both sweeping.

    Each request gets exactly one turn, placed by one instance, one agent each; the two calls leave a second
    apart (TWILIO_CALLS_PER_SECOND=1, one pacer in the database); both customers talk, each logged once.
    """
    async with instances(pg_url, callback_offer_seconds=OFFER) as (twilio, sandbox, (one, two)):
        await asyncio.gather(*(one.desk.choose(agent, "away", by="test") for agent in AGENTS))
        callers = [await twilio.incoming(caller, number) for caller, number in zip(CALLERS, NUMBERS, strict=True)]
        await asyncio.gather(*(ask(twilio, call) for call in callers))
        assert sorted(row.callback or "" for row in await one.app[DESK].waiting()) == sorted(CALLERS)
        await asyncio.gather(
            *(instance.desk.choose(agent, "available", by="test") for agent in AGENTS for instance in (one, two)),
            one.desk.sweep(),
            two.desk.sweep(),
        )

        async def one_placed_one_paced() -> bool:
            rows = await one.app[STORE].list_actions([PENDING], limit=100)
            paced = [row for row in rows if row.kind == "place_callback" and row.last_error == "paced"]
            return len(placed(twilio)) == 1 and len(paced) == 1

        await eventually(one_placed_one_paced, within=30)  # the second waits for the pacer's next slot
        await twilio.advance(1)
        await eventually(lambda: len(placed(twilio)) == 2, within=30)
        for _ in range(5):  # both instances keep deciding while the turns ring: nothing is decided twice
            await asyncio.gather(one.desk.sweep(), two.desk.sweep())
        await twilio.advance(5)
        first, second = placed(twilio)
        assert (second.created - first.created).total_seconds() >= 1  # one call a second, account-wide
        assert first.to != second.to  # one agent each
        for agent_call in (first, second):
            await twilio.answer(agent_call)
        await twilio.advance(8)
        for customer in CALLERS:
            leg = await twilio.ringing(customer)
            await twilio.answer(leg)
            await twilio.press(leg, "1")
        await twilio.advance(30)
        for call in list(twilio.account.calls.values()):
            if call.status == "in-progress":
                await twilio.hang_up(call)
        await twilio.advance(5)
        assert len(placed(twilio)) == 2  # nothing placed twice, by either instance
        await eventually(lambda: _settled(one), within=60)
        snapshot = sandbox.snapshot()
    for call in callers:
        (ticket,) = call_outcome(snapshot, call.sid)
        assert "callback_requested" in ticket["tags"]
        assert len(voice_comments(ticket)) == 1
