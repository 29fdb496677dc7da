"""Calls in progress, played through Twilio's stand-in: holds, and the agent coming back to the room."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from bridge.appkeys import DESK, HELD_WATCH, INGEST, ROOM_CONTROL
from bridge.core.calls import Call as CallState
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge, local_bridge
from bridge.devtools.fake_twilio.state import Call
from bridge.devtools.queue_demo import ALICE, DANA, TEAM, choose, finished, twilio
from bridge.devtools.waiting import wait_until
from tests.queue_flows import GREETING_SECONDS, TWO_LINES, write_recordings
from webhooks.names import Route, route_url


async def state(bridge: LocalBridge, call: Call) -> CallState:
    """Return the bridge's record of a call."""
    found = await bridge.app[INGEST].current(call.sid)
    assert found is not None
    return found


async def answered(bridge: LocalBridge) -> Call:
    """Dana calls; alice answers after 4 s."""
    fake = twilio(bridge)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    leg = await fake.ringing(ALICE)
    await fake.advance(4)
    await fake.answer(leg)
    return call


async def rejoin(bridge: LocalBridge, call: Call, agent: str = ALICE) -> Call:
    """Bring an agent back into the call's room from their softphone (its Resume), and wait until they are in."""
    fake = twilio(bridge)
    app = fake.application(route_url(bridge.url, Route.OUTGOING), route_url(bridge.url, Route.STATUS))
    joined = await fake.call_out(agent, "", app, Room=call.sid)
    room = fake.conference(call.sid)
    await wait_until(lambda: room is not None and len(room.participants) >= 2, what="the agent in the room")
    return joined


async def held(bridge: LocalBridge, talked: float) -> Call:
    """Dana calls; alice answers after 4 s, talks `talked` s and holds her: Dana hears the hold music in the room."""
    fake = twilio(bridge)
    call = await answered(bridge)
    await fake.advance(talked)
    await bridge.app[ROOM_CONTROL].hold(await state(bridge, call), "hold-1", None)
    await fake.settle()
    return call


async def held_then_resumed(bridge: LocalBridge) -> list[Call]:
    """Dana talks with alice 20 s; alice holds her 30 s (hold music), resumes, talks 40 s, and hangs up."""
    fake = twilio(bridge)
    call = await held(bridge, 20)
    await fake.advance(30)
    _, must_join = await bridge.app[ROOM_CONTROL].resume(await state(bridge, call), "resume-1")
    assert must_join
    agent_leg = await rejoin(bridge, call)
    await fake.advance(40)
    await fake.hang_up(agent_leg)
    await finished(bridge, call)
    return [call]


async def hung_up_on_hold(bridge: LocalBridge) -> list[Call]:
    """Dana talks with alice 15 s; alice holds her; Dana hangs up after 50 s of hold music."""
    fake = twilio(bridge)
    call = await held(bridge, 15)
    await fake.advance(50)
    await fake.hang_up(call)
    await finished(bridge, call)
    return [call]


async def ended_on_hold(bridge: LocalBridge) -> list[Call]:
    """Dana talks with alice 15 s; alice holds her, and 20 s later hangs up her phone: the call ends for Dana."""
    fake = twilio(bridge)
    call = await held(bridge, 15)
    await fake.advance(20)
    await bridge.app[ROOM_CONTROL].end(await state(bridge, call), ALICE)
    await finished(bridge, call)
    return [call]


async def left_on_hold(bridge: LocalBridge) -> list[Call]:
    """alice holds Dana after 10 s and closes her softphone; a minute on, Dana goes back to Support's queue.

    bob, free, is rung into her room at once; he answers after 5 s, talks 30 s and hangs up.
    """
    fake = twilio(bridge)
    call = await held(bridge, 10)
    await bridge.app[DESK].goodbye(ALICE)
    # Exactly a PRESENCE_TIMEOUT later (not a moment before, whenever the watch looks): the line has her back.
    await fake.advance(bridge.settings.presence_timeout_seconds)
    await bridge.app[HELD_WATCH].give_back()
    return await bob_takes(bridge, call, after=5)


async def bob_takes(bridge: LocalBridge, call: Call, *, after: float) -> list[Call]:
    """bob, rung into Dana's room, answers after `after` s, talks 30 s and hangs up; the call ends."""
    fake = twilio(bridge)
    bob = await fake.ringing(BOB)
    await fake.advance(after)
    await fake.answer(bob)
    await fake.advance(30)
    await fake.hang_up(bob)
    await finished(bridge, call)
    return [call]


BOB = "client:bob"
OUTSIDE = "+14155550177"


async def room_of(bridge: LocalBridge, call: Call) -> None:
    """Wait until the bridge knows the customer's room at Twilio (its first report came in)."""

    async def known() -> bool:
        await twilio(bridge).settle()
        found = await state(bridge, call)
        return found.room is not None and found.room.provider_id is not None

    await wait_until(known, what="the customer in their room")


async def transferred_cold(bridge: LocalBridge) -> list[Call]:
    """alice talks with Dana 20 s and transfers her to bob; Dana holds 6 s while bob rings; bob talks 30 s."""
    fake = twilio(bridge)
    call = await answered(bridge)
    await fake.advance(20)
    await bridge.app[ROOM_CONTROL].transfer(await state(bridge, call), BOB, "transfer-1")
    await fake.settle()
    return await bob_takes(bridge, call, after=6)


async def consulted(bridge: LocalBridge, *, complete: bool) -> list[Call]:
    """alice holds Dana, comes back in, consults bob (he answers after 5 s, they talk 15 s), then completes or cancels.

    Completed: bob talks with Dana 30 s and hangs up. Cancelled: alice talks with Dana 30 s more and hangs up.
    """
    fake = twilio(bridge)
    control = bridge.app[ROOM_CONTROL]
    call = await answered(bridge)
    await fake.advance(20)
    _, join_first = await control.consult(await state(bridge, call), BOB, "consult-1", None)
    assert join_first
    await fake.settle()
    alice = await rejoin(bridge, call)
    await room_of(bridge, call)
    _, join_first = await control.consult(await state(bridge, call), BOB, "consult-2", None)
    assert not join_first
    await fake.settle()
    bob = await fake.ringing(BOB)
    await fake.advance(5)
    await fake.answer(bob)
    await fake.advance(15)
    if complete:
        await control.complete(await state(bridge, call), ALICE, "complete-1")
        await fake.settle()
        await fake.advance(30)
        await fake.hang_up(bob)
    else:
        await control.cancel(await state(bridge, call), "cancel-1")
        await fake.settle()
        await fake.advance(30)
        await fake.hang_up(alice)
    await finished(bridge, call)
    return [call]


async def three_way(bridge: LocalBridge) -> list[Call]:
    """alice holds Dana, comes back in and adds an outside number: the three talk 25 s; alice hangs up."""
    fake = twilio(bridge)
    fake.outcome(OUTSIDE, "answered", after=4)
    control = bridge.app[ROOM_CONTROL]
    call = await answered(bridge)
    await fake.advance(10)
    _, join_first = await control.add(await state(bridge, call), OUTSIDE, "add-1", None)
    assert join_first
    await fake.settle()
    alice = await rejoin(bridge, call)
    await room_of(bridge, call)
    await control.add(await state(bridge, call), OUTSIDE, "add-2", None)
    await fake.settle()
    await fake.advance(30)
    await fake.hang_up(alice)
    await finished(bridge, call)
    return [call]


SALES = "Sales"  # the line of TWO_LINES whose only agent is bob (group 5002)


async def sent_to_sales(bridge: LocalBridge) -> Call:
    """bob away; Dana calls Support, hears its greeting; alice answers after 4 s, talks 20 s, transfers her to Sales."""
    fake = twilio(bridge)
    await choose(bridge, "away", BOB)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await fake.advance(GREETING_SECONDS)
    alice = await fake.ringing(ALICE)
    await fake.advance(4)
    await fake.answer(alice)
    await fake.advance(20)
    await bridge.app[ROOM_CONTROL].transfer_to_line(await state(bridge, call), SALES, "line-1")
    await fake.settle()
    return call


async def hung_up_in_line(bridge: LocalBridge) -> list[Call]:
    """alice transfers Dana to Sales, where nobody is free; Dana hangs up after 40 s of Sales' hold music."""
    fake = twilio(bridge)
    call = await sent_to_sales(bridge)
    await fake.advance(40)
    await fake.hang_up(call)
    await finished(bridge, call)
    return [call]


async def transferred_to_line(bridge: LocalBridge, *, ring_out: bool = False) -> list[Call]:
    """alice talks with Dana 20 s and transfers her to the line Sales; bob is away, so Dana waits with its music.

    bob comes back after 30 s and is rung into Dana's room; he answers after 5 s and talks 30 s. With `ring_out`
    he first lets that ring run out, and is rung again once his missed caller may ring him again (a minute).
    """
    fake = twilio(bridge)
    call = await sent_to_sales(bridge)
    await fake.advance(30)
    await choose(bridge, "available", BOB)
    bob = await fake.ringing(BOB)
    if ring_out:
        await fake.advance(bridge.settings.dial_timeout + 6)  # Twilio adds 5 s to a participant's Timeout
        await fake.settle()
        assert bob.status == "no-answer", (bob.status, bob.extra)
        await fake.advance(61)
        bob = await fake.ringing(BOB)
    await fake.advance(5)
    await fake.answer(bob)
    await fake.advance(30)
    await fake.hang_up(bob)
    await finished(bridge, call)
    return [call]


async def transferred_to_number(bridge: LocalBridge) -> list[Call]:
    """alice talks with Dana 10 s and transfers her to an outside number, which answers after 5 s; they talk 20 s."""
    fake = twilio(bridge)
    fake.outcome(OUTSIDE, "answered", after=5)
    call = await answered(bridge)
    await fake.advance(10)
    await bridge.app[ROOM_CONTROL].transfer(await state(bridge, call), OUTSIDE, "transfer-1")
    await fake.settle()
    await fake.advance(25)
    await fake.hang_up(call)
    await finished(bridge, call)
    return [call]


def room_calls(bridge: LocalBridge, call: Call) -> list[Call]:
    """Return the agents' calls into a call's room (their softphone's Resume)."""
    return [other for other in twilio(bridge).account.calls.values() if other.extra.get("Room") == call.sid]


FLOWS: dict[str, Callable[[LocalBridge], Awaitable[list[Call]]]] = {
    "room_held_then_resumed": held_then_resumed,
    "room_hung_up_on_hold": hung_up_on_hold,
    "room_transferred_cold": transferred_cold,
    "room_consult_completed": partial(consulted, complete=True),
    "room_consult_cancelled": partial(consulted, complete=False),
    "room_three_way": three_way,
    "room_transferred_to_line": transferred_to_line,
    "room_transferred_to_number": transferred_to_number,
    "room_ended_on_hold": ended_on_hold,
    "room_left_on_hold": left_on_hold,
}
SETTINGS: dict[str, dict[str, str]] = {"room_transferred_to_line": {"lines": TWO_LINES}}
SEED = 500  # the room's recordings keep seeds from 500 (the queue's 100, menus' 200, hours' 300, controls' 400)


async def capture(folder: Path, work: Path) -> list[Path]:
    """Play every flow once and write each call's webhooks, its room's and its agents' into one file of `folder`."""
    written = []
    for number, (name, flow) in enumerate(FLOWS.items()):
        start = datetime(2026, 9, 21, 9 + number, 0, 0, tzinfo=UTC)
        options = {"agents": dict(TEAM), **SETTINGS.get(name, {})}
        async with local_bridge(work / f"{name}.db", stand_in=True, virtual_time=True, stand_in_seed=SEED + number,
                                stand_in_start=start, **options) as bridge:  # fmt: skip
            (call,) = await flow(bridge)
            written.append(twilio(bridge).write_together(folder / f"{name}.jsonl", call, *room_calls(bridge, call)))
    return written


if __name__ == "__main__":
    write_recordings(capture)
