"""The queue's real-world flows, played through Twilio's stand-in: the tests check them, the recordings keep them.

Each flow drives one bridge (its Twilio the stand-in, on the stand-in's virtual time) and returns the
callers' calls; `capture` writes each caller's webhooks as a file of tests/recordings/.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.appkeys import DESK
from bridge.core.actions import ActionKind
from bridge.core.clock import Clock
from bridge.core.presence import busy_now
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge, local_bridge
from bridge.devtools.fake_twilio import TwilioStandIn
from bridge.devtools.fake_twilio.state import Call
from bridge.devtools.queue_demo import (
    ALICE,
    BOB,
    DANA,
    ENDED,
    ERIN,
    TEAM,
    choose,
    finished,
    out_of_line,
    queued,
    queued_then_answered,
    twilio,
)
from bridge.devtools.waiting import wait_until
from bridge.dispatch import Desk
from bridge.store import PENDING, Store

__all__ = ["ALICE", "BOB", "DANA", "ENDED", "ERIN", "TEAM", "choose", "finished", "out_of_line", "queued", "twilio"]


async def quiet(fake: TwilioStandIn, store: Store, clock: Clock) -> None:
    """Wait until Twilio's stand-in has nothing in flight and no move of a waiting caller is due or being sent.

    A move is sent by the bridge's own worker, outside the stand-in's sight; it stays pending (due) until
    Twilio answered it, and Twilio answers once the redirect it caused has run its course.
    """

    async def moves_due() -> bool:
        now = clock()
        rows = await store.list_actions([PENDING], limit=10_000)
        return any(row.kind == ActionKind.MOVE_CALL.value and row.next_at <= now for row in rows)

    async def at_rest() -> bool:
        for _ in range(2):  # twice: what a finished move started must not have queued another
            await fake.settle()
            if await moves_due():
                return False
        return True

    await wait_until(at_rest, what="Twilio and the moves at rest")


def live_legs(twilio: TwilioStandIn) -> dict[str, list[Call]]:
    """Return the legs ringing or answered now, by the agent they ring."""
    out: dict[str, list[Call]] = {}
    for call in twilio.account.calls.values():
        if call.parent is not None and call.status in ("queued", "initiated", "ringing", "in-progress"):
            out.setdefault(call.to, []).append(call)
    return out


async def agents_match_the_legs(twilio: TwilioStandIn, desk: Desk, store: Store) -> None:
    """Check that the agents rows say what Twilio does: ringing, or on a call, for the caller whose leg it is.

    An agent may also be held for a caller whose move waits to be tried again (Twilio failed it).
    """
    legs = live_legs(twilio)
    now = twilio.clock()
    moving = {row.call_sid for row in await store.list_actions([PENDING], limit=10_000)
              if row.kind == ActionKind.MOVE_CALL.value}  # fmt: skip
    for agent in await desk.agents():
        (leg,) = legs.get(agent.identity) or [None]
        if leg is None:
            held = (busy_now(agent, now), agent.busy_call in moving)
            assert held in ((None, False), (None, True), ("ringing", True)), agent
            continue
        assert leg.parent is not None
        expected = "on_call" if leg.status == "in-progress" else "ringing"
        assert (busy_now(agent, now), agent.busy_call) == (expected, leg.parent.sid), agent


def no_agent_offered_two_calls(twilio: TwilioStandIn) -> None:
    """Check every agent's legs, in the order Twilio placed them: each began after the one before had ended."""
    by_agent: dict[str, list[Call]] = {}
    for call in twilio.account.calls.values():
        if call.parent is not None:
            by_agent.setdefault(call.to, []).append(call)
    for agent, legs in by_agent.items():
        for before, after in itertools.pairwise(legs):
            assert before.ended is not None, (agent, before.sid, after.sid)
            assert after.created >= before.ended, (agent, before.sid, after.sid)


async def queued_then_hung_up(bridge: LocalBridge) -> list[Call]:
    """Nobody available: Dana waits 75 s, first in line, and hangs up."""
    fake = twilio(bridge)
    await choose(bridge, "away", ALICE, BOB)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await queued(bridge, call)
    await fake.advance(75)
    await fake.hang_up(call)
    await finished(bridge, call)
    return [call]


async def queue_timeout(bridge: LocalBridge) -> list[Call]:
    """Nobody available: QUEUE_MAX_WAIT_SECONDS after the call came, Dana is moved to voicemail; 15 s message."""
    fake = twilio(bridge)
    await choose(bridge, "away", ALICE, BOB)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await queued(bridge, call)
    await fake.advance(bridge.settings.queue_max_wait_seconds)
    await out_of_line(bridge, call)
    await fake.advance(25)  # the greeting, the beep, a 15-second message
    await fake.hang_up(call)
    await finished(bridge, call)
    return [call]


async def queue_full(bridge: LocalBridge) -> list[Call]:
    """QUEUE_MAX_SIZE=1: Dana waits; Erin finds the line full and hears the voicemail greeting; both hang up."""
    fake = twilio(bridge)
    await choose(bridge, "away", ALICE, BOB)
    first = await fake.incoming(DANA, DEMO_NUMBER)
    await queued(bridge, first)
    second = await fake.incoming(ERIN, DEMO_NUMBER)
    assert second.queue is None
    await fake.advance(10)
    await fake.hang_up(second)
    await fake.hang_up(first)
    await finished(bridge, first, second)
    return [second, first]


async def rang_out_keeps_place(bridge: LocalBridge) -> list[Call]:
    """Dana rings alice, who lets it ring out; Erin came meanwhile; bob frees up and gets Dana, not Erin."""
    fake = twilio(bridge)
    await choose(bridge, "away", BOB)
    dana = await fake.incoming(DANA, DEMO_NUMBER)
    ring = await fake.ringing(ALICE)
    await fake.advance(5)
    erin = await fake.incoming(ERIN, DEMO_NUMBER)
    await queued(bridge, erin)
    await fake.advance(bridge.settings.dial_timeout)  # alice's ring runs out
    await queued(bridge, dana)
    assert ring.status == "no-answer"
    assert [row.call_sid for row in await bridge.app[DESK].waiting()] == [dana.sid, erin.sid]
    await choose(bridge, "available", BOB)
    leg = await fake.ringing(BOB)
    assert leg.parent is dana
    await fake.answer(leg)
    await fake.advance(30)
    await fake.hang_up(leg)
    await fake.hang_up(erin)
    await finished(bridge, dana, erin)
    return [dana, erin]


async def agent_away_mid_ring(bridge: LocalBridge) -> list[Call]:
    """longest_idle: alice rings, is set away while ringing and lets it ring out; the caller rings bob, who answers."""
    fake = twilio(bridge)
    await choose(bridge, "available", ALICE)  # alice idle longest: bob chooses after her
    await fake.advance(1)
    await choose(bridge, "available", BOB)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    ring = await fake.ringing(ALICE)
    await choose(bridge, "away", ALICE)
    await fake.advance(bridge.settings.agent_ring_seconds)
    assert ring.status == "no-answer"
    leg = await fake.ringing(BOB)
    await fake.answer(leg)
    await fake.advance(20)
    await fake.hang_up(leg)
    await finished(bridge, call)
    return [call]


# Two lines sharing bob (docs/lines.md): Support is the demo number, with a greeting; Sales is bob's alone.
SALES_NUMBER = "+16505550101"
FRANK = "+15035550147"  # user 2003 in the sandbox (his phone is saved as "(503) 555-0147")
GREETING_SECONDS = 3  # Support's greeting, said before the call rings anyone or waits
TWO_LINES = f"""
[[line]]
number = "{DEMO_NUMBER}"
name = "Support"
group_id = 5001
brand_id = 6001
agents = ["{ALICE}", "{BOB}"]
greeting = "Thanks for calling Acme support."

[[line]]
number = "{SALES_NUMBER}"
name = "Sales"
group_id = 5002
brand_id = 6002
agents = ["{BOB}"]
caller_id = true
"""


def own_sales(bridge: LocalBridge) -> None:
    """Point the Sales number at the bridge too, as the console would."""
    twilio(bridge).own(
        SALES_NUMBER, f"{bridge.url}/twilio/voice/incoming", status_callback=f"{bridge.url}/twilio/voice/status"
    )


async def lines_overlapping_agents(bridge: LocalBridge) -> list[Call]:
    """Two lines sharing bob: alice is never offered Sales' caller; bob frees up and gets the longest waiting.

    bob away. Dana calls Sales and waits (alice, free, serves Support only); Erin calls Support 10 s later,
    hears its greeting and rings alice, who answers; Frank calls Support and waits. bob comes back: Dana,
    waiting longest on either of his lines, rings him; he answers. Frank hangs up waiting; the calls end.
    """
    fake = twilio(bridge)
    own_sales(bridge)
    await choose(bridge, "away", BOB)
    dana = await fake.incoming(DANA, SALES_NUMBER)
    await queued(bridge, dana)
    assert dana.queue is not None
    assert dana.queue.queue.name == "bridge-sales"
    assert fake.legs(dana) == []  # alice is free, but not a Sales agent
    await fake.advance(10)
    erin = await fake.incoming(ERIN, DEMO_NUMBER)
    await fake.advance(GREETING_SECONDS)
    ring = await fake.ringing(ALICE)
    assert ring.parent is erin
    await fake.advance(5)
    await fake.answer(ring)
    await fake.advance(5)
    frank = await fake.incoming(FRANK, DEMO_NUMBER)
    await fake.advance(GREETING_SECONDS)
    await queued(bridge, frank)
    assert frank.queue is not None
    assert frank.queue.queue.name == "bridge-support"
    await fake.advance(10)
    await choose(bridge, "available", BOB)
    leg = await fake.ringing(BOB)
    assert leg.parent is dana  # waiting since 0 s on Sales, before Frank (20 s) on Support
    await fake.advance(5)
    await fake.answer(leg)
    await fake.advance(15)
    await fake.hang_up(frank)
    await fake.advance(10)
    await fake.hang_up(leg)
    await fake.advance(15)
    await fake.hang_up(ring)
    await finished(bridge, dana, erin, frank)
    return [dana, erin, frank]


Flow = Callable[[LocalBridge], Awaitable[list[Call]]]
# name → (the flow, its settings, the recordings it writes: of the first callers the flow returns, in order)
FLOWS: dict[str, tuple[Flow, dict[str, Any], tuple[str, ...]]] = {
    "queued_then_answered": (queued_then_answered, {}, ("queue_answered",)),
    "queued_then_hung_up": (queued_then_hung_up, {}, ("queue_hung_up",)),
    "queue_timeout": (queue_timeout, {"queue_max_wait_seconds": 120}, ("queue_timeout",)),
    "queue_full": (queue_full, {"queue_max_size": 1}, ("queue_full",)),
    "rang_out_keeps_place": (rang_out_keeps_place, {}, ("queue_rang_out_keeps_place",)),
    "agent_away_mid_ring": (
        agent_away_mid_ring,
        {"routing": "longest_idle", "agent_ring_seconds": 15},
        ("queue_agent_away_mid_ring",),
    ),
    "lines_overlapping_agents": (
        lines_overlapping_agents,
        {"lines": TWO_LINES},
        ("lines_overlapping_agents_sales", "lines_overlapping_agents_support", "lines_overlapping_agents_missed"),
    ),
}


async def record(
    folder: Path,
    work: Path,
    name: str,
    flow: Flow,
    settings: dict[str, Any],
    *,
    seed: int,
    start: datetime,
    files: Sequence[str],
) -> list[Path]:
    """Play one flow on a fresh bridge and write its first callers' webhooks to `folder`, one file each.

    The stand-in's sids follow `seed` and its clock starts at `start`, so a file written twice is the same;
    each capture module keeps its own range of seeds, so no two recordings share a sid.
    """
    async with local_bridge(
        work / f"{name}.db", stand_in=True, virtual_time=True, stand_in_seed=seed, stand_in_start=start, **settings
    ) as bridge:
        calls = await flow(bridge)
        return [twilio(bridge).write(folder / f"{file}.jsonl", call) for call, file in zip(calls, files, strict=False)]


def write_recordings(capture: Callable[[Path, Path], Awaitable[list[Path]]]) -> None:
    """Run a capture module's flows into tests/recordings and print the files written (python -m tests.X_flows)."""
    with tempfile.TemporaryDirectory() as scratch:
        for path in asyncio.run(capture(Path(__file__).parent / "recordings", Path(scratch))):
            print(path)


async def capture(folder: Path, work: Path) -> list[Path]:
    """Play every flow once and write its callers' webhooks to `folder`, each file on its own day and sids."""
    written = []
    for number, (name, (flow, settings, files)) in enumerate(FLOWS.items()):
        start = datetime(2026, 9, 17, 9 + number, 0, 0, tzinfo=UTC)
        options = {"agents": dict(TEAM), **settings}
        written += await record(folder, work, name, flow, options, seed=100 + number, start=start, files=files)
    return written


if __name__ == "__main__":
    write_recordings(capture)
