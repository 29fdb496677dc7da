"""`bridge demo`'s queue: a caller waits while nobody is free and rings the agent who frees up.

Twilio is the stand-in of bridge.devtools.fake_twilio on virtual time: the wait and the talk take no real
time. The tests' queue flows (tests/queue_flows.py) are built from the same steps.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TextIO

from bridge.appkeys import DESK
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge, local_bridge, render
from bridge.devtools.fake_twilio import TwilioStandIn
from bridge.devtools.fake_twilio.state import Call
from bridge.devtools.waiting import wait_until

DANA, ERIN = "+14155550123", "+14155550199"
ALICE, BOB = "client:alice", "client:bob"
TEAM = {ALICE: 1001, BOB: 1002}
ENDED = ("completed", "busy", "no-answer", "failed", "canceled")


def twilio(bridge: LocalBridge) -> TwilioStandIn:
    """Return the bridge's Twilio stand-in."""
    assert bridge.stand_in is not None
    return bridge.stand_in


async def choose(bridge: LocalBridge, status: str, *agents: str) -> None:
    """Set agents' chosen status, as the softphone or `bridge agents set` would."""
    for agent in agents:
        await bridge.app[DESK].choose(agent, status, by="test")  # type: ignore[arg-type]


async def queued(bridge: LocalBridge, call: Call) -> None:
    """Wait until the caller hears the hold music of the line's queue (Twilio <Enqueue>)."""
    fake = twilio(bridge)

    async def waiting() -> bool:
        await fake.settle()
        return call.queue is not None and any(row.call_sid == call.sid for row in await bridge.app[DESK].waiting())

    await wait_until(waiting, what=f"{call.sid} waiting in the queue")


async def out_of_line(bridge: LocalBridge, call: Call) -> None:
    """Wait until the caller was moved out of the queue (Twilio's REST API, Calls update)."""
    fake = twilio(bridge)

    async def moved() -> bool:
        await fake.settle()
        return call.queue is None

    await wait_until(moved, what=f"{call.sid} moved out of the queue")


async def finished(bridge: LocalBridge, *calls: Call) -> None:
    """Wait until the callers' calls ended at Twilio and their outcomes reached Zendesk."""
    fake = twilio(bridge)

    async def ended() -> bool:
        await fake.settle()
        return all(call.status in ENDED for call in calls)

    await wait_until(ended, what="the calls ending")
    await bridge.settle_calls()


async def queued_then_answered(bridge: LocalBridge, out: TextIO | None = None) -> list[Call]:
    """Nobody available: Dana waits 40 s; alice chooses available; Dana rings her, she answers and talks 60 s."""
    fake = twilio(bridge)
    await choose(bridge, "away", ALICE, BOB)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await queued(bridge, call)
    say(out, "alice and bob are away; Dana calls and waits in the queue, hearing hold music and her place")
    await fake.advance(40)
    await choose(bridge, "available", ALICE)
    say(out, "40 s later alice chooses Available: the bridge moves Dana out of the queue to ring her")
    leg = await fake.ringing(ALICE)
    await fake.advance(5)
    await fake.answer(leg)
    await fake.advance(60)
    await fake.hang_up(leg)
    await finished(bridge, call)
    say(out, "alice answered after 5 s and talked 60 s; what Zendesk received:\n")
    return [call]


def say(out: TextIO | None, text: str) -> None:
    """Narrate a step of the demo (tests pass no `out`)."""
    if out is not None:
        print(text, file=out, flush=True)


async def run_queue_demo(out: TextIO) -> int:
    """Show a caller waiting in the queue and answered when an agent frees up; return an exit code."""
    with tempfile.TemporaryDirectory(prefix="bridge-queue-demo-") as tmp:
        async with local_bridge(Path(tmp) / "queue.db", stand_in=True, virtual_time=True, agents=dict(TEAM)) as bridge:
            (call,) = await queued_then_answered(bridge, out)
            snapshot = bridge.sandbox.snapshot()
    ours = {**snapshot, "tickets": [t for t in snapshot["tickets"] if t["external_id"] == call.sid]}
    print(render(ours), file=out)
    return 0
