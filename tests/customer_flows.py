"""Routing that knows the customer, played through Twilio's stand-in: the tests check them, the recordings keep them.

Each flow sets up the caller in Zendesk's sandbox (their open tickets, organization, tags), drives one bridge on
the stand-in's virtual time and returns the callers' calls; `capture` writes each caller's webhooks as a file of
tests/recordings/ (python -m tests.customer_flows).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.appkeys import ROUTES, STORE
from bridge.core.presence import Agent
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge
from bridge.devtools.fake_twilio.state import Call
from bridge.devtools.sandbox.faults import FaultRule
from bridge.devtools.waiting import wait_until
from tests.queue_flows import (
    ALICE,
    BOB,
    DANA,
    ERIN,
    FRANK,
    TEAM,
    choose,
    finished,
    queued,
    record,
    twilio,
    write_recordings,
)

DANA_ID, ERIN_ID = 2001, 2002  # the sandbox's users for these numbers
VIP_ORGANIZATION = 7001
PREFERRED_SECONDS = 10


def line(**extra: str) -> str:
    """Return LINES: the demo number, alice and bob, with the caller's own agent first and calls logged on tickets."""
    keys = "".join(f"{key} = {value}\n" for key, value in extra.items())
    return f"""
[[line]]
number = "{DEMO_NUMBER}"
name = "Support"
agents = ["{ALICE}", "{BOB}"]
preferred_agent_seconds = {PREFERRED_SECONDS}
log_on_open_ticket = true
priority_organizations = [{VIP_ORGANIZATION}]
priority_tags = ["vip"]
{keys}"""


async def knows(bridge: LocalBridge, call: Call) -> None:
    """Wait until the call's state holds what Zendesk says of the caller."""

    async def known() -> bool:
        state = await bridge.app[STORE].get_call(call.sid)
        return state is not None and state.customer is not None

    await wait_until(known, what=f"{call.sid}'s caller known")


async def talk(bridge: LocalBridge, agent: str, seconds: float = 30) -> Call:
    """Let the agent's ringing leg be answered, talk, and hang up; return the leg."""
    fake = twilio(bridge)
    leg = await fake.ringing(agent)
    await fake.answer(leg)
    await fake.advance(seconds)
    await fake.hang_up(leg)
    return leg


async def own_agent_first(bridge: LocalBridge) -> list[Call]:
    """Dana has an open ticket of bob's: bob alone rings, shown that ticket, answers; the call goes on it."""
    bridge.sandbox.open_ticket(DANA_ID, TEAM[BOB])
    fake = twilio(bridge)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    leg = await fake.ringing(BOB)
    assert leg.parent is call
    assert fake.legs(call) == [leg]  # alice, free too, does not ring: bob first
    await fake.answer(leg)
    await fake.advance(30)
    await fake.hang_up(leg)
    await finished(bridge, call)
    return [call]


async def own_agent_away(bridge: LocalBridge) -> list[Call]:
    """Dana's open ticket is bob's, but bob is away: the line's usual distribution at once (alice), a new ticket."""
    bridge.sandbox.open_ticket(DANA_ID, TEAM[BOB])
    await choose(bridge, "away", BOB)
    fake = twilio(bridge)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await talk(bridge, ALICE)
    await finished(bridge, call)
    return [call]


async def two_open_tickets(bridge: LocalBridge) -> list[Call]:
    """Dana has alice's ticket and, updated since, bob's; a later one is solved, another assigned to no agent of the
    line: bob's wins, and he is shown it."""
    bridge.sandbox.open_ticket(DANA_ID, TEAM[ALICE], status="pending", updated_at="2026-09-01T09:00:00Z")
    bridge.sandbox.open_ticket(DANA_ID, TEAM[BOB], status="open", updated_at="2026-09-02T09:00:00Z")
    bridge.sandbox.open_ticket(DANA_ID, TEAM[ALICE], status="solved", updated_at="2026-09-03T09:00:00Z")
    bridge.sandbox.open_ticket(DANA_ID, 1003, status="open", updated_at="2026-09-04T09:00:00Z")  # carol: no agent
    fake = twilio(bridge)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await talk(bridge, BOB)
    await finished(bridge, call)
    return [call]


async def priority_after_ordinary(bridge: LocalBridge) -> list[Call]:
    """Everyone busy: Dana waits; Erin, a VIP, calls 20 s later and waits ahead of her; alice frees up for Erin."""
    bridge.sandbox.set_customer(ERIN_ID, tags=("vip",))
    await choose(bridge, "away", ALICE, BOB)
    fake = twilio(bridge)
    dana = await fake.incoming(DANA, DEMO_NUMBER)
    await queued(bridge, dana)
    await fake.advance(20)
    erin = await fake.incoming(ERIN, DEMO_NUMBER)
    await queued(bridge, erin)
    await fake.advance(10)
    await choose(bridge, "available", ALICE)
    leg = await talk(bridge, ALICE)
    assert leg.parent is erin
    await fake.hang_up(dana)
    await finished(bridge, dana, erin)
    return [erin, dana]


GWEN = "+15035550148"  # user 2004 in the sandbox ("+1 503-555-0148")
AGING_SECONDS = 60


async def aging_under_priority_stream(bridge: LocalBridge) -> list[Call]:
    """alice alone; PRIORITY_AGING_SECONDS=60. Dana (ordinary) waits from 0 s; VIPs keep coming: Erin at 10 s,
    Frank at 40 s, Gwen at 70 s, each talking 30 s. Erin and Frank go ahead of Dana; at 90 s Dana has aged into
    a priority caller who came before Gwen, so she is next."""
    for user in (ERIN_ID, 2003, 2004):
        bridge.sandbox.set_customer(user, tags=("vip",))
    await choose(bridge, "away", ALICE, BOB)
    fake = twilio(bridge)
    dana = await fake.incoming(DANA, DEMO_NUMBER)
    await queued(bridge, dana)
    await fake.advance(10)
    erin = await fake.incoming(ERIN, DEMO_NUMBER)
    await queued(bridge, erin)
    await fake.advance(10)
    await choose(bridge, "available", ALICE)  # 20 s
    first = await fake.ringing(ALICE)
    assert first.parent is erin
    await fake.answer(first)
    await fake.advance(20)
    frank = await fake.incoming(FRANK, DEMO_NUMBER)  # 40 s
    await queued(bridge, frank)
    await fake.advance(10)
    await fake.hang_up(first)  # 50 s: Dana has waited 50 s, not yet 60: Frank first
    second = await fake.ringing(ALICE)
    assert second.parent is frank
    await fake.answer(second)
    await fake.advance(20)
    gwen = await fake.incoming(GWEN, DEMO_NUMBER)  # 70 s
    await queued(bridge, gwen)
    await fake.advance(20)
    await fake.hang_up(second)  # 90 s: Dana has waited 90 s: a priority caller since 60 s, before Gwen
    third = await fake.ringing(ALICE)
    assert third.parent is dana
    await fake.answer(third)
    await fake.advance(30)
    await fake.hang_up(third)
    await fake.hang_up(gwen)
    await finished(bridge, dana, erin, frank, gwen)
    return [dana, gwen]


async def slow_look_up(bridge: LocalBridge) -> list[Call]:
    """Zendesk answers the look-up late: alice (idle longest) rings first; the data comes; at the ring-out, bob's
    open ticket sends the caller to bob."""
    bridge.sandbox.open_ticket(DANA_ID, TEAM[BOB])
    await choose(bridge, "available", ALICE)  # alice idle longest: bob chooses after her
    await twilio(bridge).advance(1)
    await choose(bridge, "available", BOB)
    bridge.sandbox.add_faults([FaultRule("GET", f"/api/v2/users/{DANA_ID}/tickets", "hang")])
    fake = twilio(bridge)
    call = await fake.incoming(DANA, DEMO_NUMBER)  # /incoming answers after LOOKUP_BUDGET_MS, without the data
    ring = await fake.ringing(ALICE)
    bridge.sandbox.release_hangs()
    await knows(bridge, call)
    await fake.advance(bridge.settings.agent_ring_seconds)  # alice lets it ring out
    assert ring.status == "no-answer"
    await talk(bridge, BOB)
    await finished(bridge, call)
    return [call]


async def slow_look_up_known(bridge: LocalBridge) -> list[Call]:
    """Dana called before; now Zendesk answers her look-up late: routed at once on what her last look-up found."""
    bridge.sandbox.open_ticket(DANA_ID, TEAM[BOB])
    fake = twilio(bridge)
    earlier = await fake.incoming(DANA, DEMO_NUMBER)
    await fake.ringing(BOB)
    await fake.hang_up(earlier)  # she hangs up while bob's phone rings
    await finished(bridge, earlier)
    bridge.sandbox.add_faults([FaultRule("GET", f"/api/v2/users/{DANA_ID}/tickets", "hang")])
    call = await fake.incoming(DANA, DEMO_NUMBER)  # /incoming answers after LOOKUP_BUDGET_MS, without fresh data
    leg = await fake.ringing(BOB)
    assert leg.parent is call
    assert fake.legs(call) == [leg]
    bridge.sandbox.release_hangs()
    await fake.answer(leg)
    await fake.advance(30)
    await fake.hang_up(leg)
    await finished(bridge, call)
    return [call, earlier]


async def expected_wait(bridge: LocalBridge) -> list[Call]:
    """alice, the line's one agent, talks with Erin; Dana waits and hears her place and the wait to expect."""
    store, routes = bridge.app[STORE], bridge.app[ROUTES]
    for identity in TEAM:  # five earlier calls of four minutes each: the line's recent handle times
        await store.change_agent(identity, _with_handled, routes.at(bridge.clock()))
    await choose(bridge, "away", BOB)
    fake = twilio(bridge)
    erin = await fake.incoming(ERIN, DEMO_NUMBER)
    leg = await fake.ringing(ALICE)
    await fake.answer(leg)
    dana = await fake.incoming(DANA, DEMO_NUMBER)
    await queued(bridge, dana)
    await fake.advance(30)
    await fake.hang_up(dana)
    await fake.hang_up(leg)
    await finished(bridge, erin, dana)
    return [dana, erin]


def spoken(call: Call) -> list[str]:
    """Return what the caller was told (every <Say>), in order."""
    return [prompt.text for prompt in call.heard if prompt.verb == "Say"]


def _with_handled(agent: Agent) -> Agent:
    """Return the agent with five handle times of four minutes."""
    return replace(agent, handled=(240.0,) * 5)


Flow = Callable[[LocalBridge], Awaitable[list[Call]]]
# name → (the flow, its settings, the recordings it writes: of the first callers the flow returns, in order)
FLOWS: dict[str, tuple[Flow, dict[str, Any], tuple[str, ...]]] = {
    "own_agent_first": (own_agent_first, {"lines": line()}, ("customer_own_agent_first",)),
    "own_agent_away": (own_agent_away, {"lines": line()}, ("customer_own_agent_away",)),
    "two_open_tickets": (two_open_tickets, {"lines": line()}, ("customer_two_open_tickets",)),
    "priority_after_ordinary": (
        priority_after_ordinary,
        {"lines": line()},
        ("customer_priority_caller", "customer_ordinary_caller"),
    ),
    "slow_look_up": (
        slow_look_up,
        {"lines": line(routing='"longest_idle"')},
        ("customer_slow_look_up",),
    ),
    "slow_look_up_known": (
        slow_look_up_known,
        {"lines": line()},
        ("customer_slow_look_up_known", "customer_slow_look_up_known_earlier"),
    ),
    "aging_under_priority_stream": (
        aging_under_priority_stream,
        {"lines": line(), "priority_aging_seconds": AGING_SECONDS},
        ("customer_aged_ordinary_caller", "customer_late_priority_caller"),
    ),
    "expected_wait": (
        expected_wait,
        {"lines": line(), "queue_announce_seconds": 60},
        ("customer_expected_wait", "customer_expected_wait_first"),
    ),
}


async def capture(folder: Path, work: Path) -> list[Path]:
    """Play every flow once and write its callers' webhooks to `folder`, each file on its own day and sids."""
    written = []
    for number, (name, (flow, settings, files)) in enumerate(FLOWS.items()):
        start = datetime(2026, 9, 18, 9 + number, 0, 0, tzinfo=UTC)
        options = {"agents": dict(TEAM), **settings}
        written += await record(folder, work, name, flow, options, seed=400 + number, start=start, files=files)
    return written


if __name__ == "__main__":
    write_recordings(capture)
