"""`bridge demo`'s callback: a waiting caller asks to be called back, keeping their place, and is called back.

Twilio is the stand-in on virtual time (docs/callbacks.md): the wait music offers a callback after
CALLBACK_OFFER_SECONDS; Dana presses 1 and confirms her number, and the call ends. When alice frees up, the
bridge calls alice first, then dials Dana from the line's number; she presses 1 and they talk.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TextIO

from bridge.appkeys import DESK
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge, local_bridge, render
from bridge.devtools.fake_twilio.state import Call
from bridge.devtools.queue_demo import ALICE, BOB, DANA, TEAM, choose, finished, queued, say, twilio
from bridge.devtools.waiting import wait_until

OFFER_SECONDS = 30


async def callback_requested_and_completed(bridge: LocalBridge, out: TextIO | None = None) -> list[Call]:
    """Dana waits, asks to be called back, hangs up; alice frees up, is rung, and the bridge dials Dana."""
    fake = twilio(bridge)
    await choose(bridge, "away", ALICE, BOB)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await queued(bridge, call)
    say(out, f"alice and bob are away; Dana waits in the queue; after {OFFER_SECONDS} s the music offers a callback")
    await fake.advance(OFFER_SECONDS + 15)
    await fake.press(call, "1")
    await fake.press(call, "1#")  # her own number, confirmed
    await fake.advance(10)
    rows = await bridge.app[DESK].waiting()
    say(out, f"Dana pressed 1 and confirmed her number; her call ended; the line: {len(rows)} callback kept")
    await fake.advance(60)
    await choose(bridge, "available", ALICE)
    agent = await fake.ringing(ALICE)
    say(out, "a minute later alice chooses Available: the bridge calls alice first, Dana's ticket pops")
    await fake.answer(agent)
    await fake.advance(8)  # the whisper: whose callback, waiting since when
    customer = await fake.ringing(DANA)
    await fake.answer(customer)
    await fake.press(customer, "1")
    say(out, "alice heard the whisper; the bridge dialled Dana from the line's number; she pressed 1")
    await fake.advance(40)
    await fake.hang_up(customer)

    async def closed() -> bool:
        await fake.settle()
        return all(row.call_sid != call.sid for row in await bridge.app[DESK].waiting())

    await wait_until(closed, what="the callback request closed")
    await finished(bridge, call)
    say(out, "they talked 40 s; what Zendesk received (one ticket: the request, and the conversation on it):\n")
    return [call]


async def run_callback_demo(out: TextIO) -> int:
    """Show a callback requested in the queue and completed when an agent frees up; return an exit code."""
    with tempfile.TemporaryDirectory(prefix="bridge-callback-demo-") as tmp:
        async with local_bridge(
            Path(tmp) / "callback.db", stand_in=True, virtual_time=True, agents=dict(TEAM),
            callback_offer_seconds=OFFER_SECONDS,
        ) as bridge:  # fmt: skip
            (call,) = await callback_requested_and_completed(bridge, out)
            snapshot = bridge.sandbox.snapshot()
    ours = {**snapshot, "tickets": [t for t in snapshot["tickets"] if t["external_id"] == call.sid]}
    print(render(ours), file=out)
    return 0
