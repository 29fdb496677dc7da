"""Calls in progress, played through Twilio's stand-in: holds, and the agent coming back to the room."""

from __future__ import annotations

from bridge.appkeys import INGEST, ROOM_CONTROL
from bridge.core.calls import Call as CallState
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge
from bridge.devtools.fake_twilio.state import Call
from bridge.devtools.queue_demo import ALICE, DANA, finished, twilio
from bridge.devtools.waiting import wait_until
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


async def held_then_resumed(bridge: LocalBridge) -> list[Call]:
    """Dana talks with alice 20 s; alice holds her 30 s (hold music), resumes, talks 40 s, and hangs up."""
    fake = twilio(bridge)
    call = await answered(bridge)
    await fake.advance(20)
    control = bridge.app[ROOM_CONTROL]
    await control.hold(await state(bridge, call), "hold-1", None)
    await fake.settle()
    await fake.advance(30)
    _, must_join = await control.resume(await state(bridge, call), "resume-1")
    assert must_join
    agent_leg = await rejoin(bridge, call)
    await fake.advance(40)
    await fake.hang_up(agent_leg)
    await finished(bridge, call)
    return [call]


async def hung_up_on_hold(bridge: LocalBridge) -> list[Call]:
    """Dana talks with alice 15 s; alice holds her; Dana hangs up after 50 s of hold music."""
    fake = twilio(bridge)
    call = await answered(bridge)
    await fake.advance(15)
    await bridge.app[ROOM_CONTROL].hold(await state(bridge, call), "hold-1", None)
    await fake.settle()
    await fake.advance(50)
    await fake.hang_up(call)
    await finished(bridge, call)
    return [call]
