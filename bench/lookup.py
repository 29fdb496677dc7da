"""The look-up in time: the share of calls routed with the caller's Zendesk data, at Zendesk latencies of 100-500 ms.

One bridge (SQLite) with Twilio's stand-in and the sandbox answering every request in the given latency, in one
process on loopback. Every caller has an open ticket assigned to bob; alice and bob are free, and the line rings
everyone at once (`ring_all`) with PREFERRED_AGENT_SECONDS set: a call routed with the caller's data rings bob
alone, one routed without it rings both. LOOKUP_BUDGET_MS is the default, 300.

- **known callers**: the bridge found the caller on an earlier call, so the look-up is what routing reads of
  them: their user and their tickets, two requests sent together (one round trip).
- **first calls**: a customer Zendesk knows by phone, calling for the first time: the bridge's external id
  look-up and the phone search go out together (a round trip), then their user and tickets (another).

Two figures for known callers: the share whose fresh data came within the budget, and the share routed with
data at all, the last look-up's standing in for a late one (`bridge.dispatch.customers`).

`python -m bench.lookup` prints the figures; `make bench` puts them in bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bridge.appkeys import INGEST, STORE
from bridge.core.events import EventKind
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge, local_bridge
from bridge.devtools.fake_twilio.state import Call
from bridge.devtools.sandbox.config import SandboxConfig
from bridge.devtools.waiting import wait_until

ALICE, BOB = "client:alice", "client:bob"
TEAM = {ALICE: 1001, BOB: 1002}
LATENCIES_MS = (100, 200, 300, 400, 500)
LINE = f"""
[[line]]
number = "{DEMO_NUMBER}"
agents = ["{ALICE}", "{BOB}"]
preferred_agent_seconds = 10
"""


def phone(n: int) -> str:
    """Return the n-th caller's number."""
    return f"+1415555{1000 + n:04d}"


async def one_call(bridge: LocalBridge, number: str, order: dict[str, list[EventKind]]) -> tuple[bool, bool]:
    """Place a call and let the caller hang up once it rings; return whether it was routed with their data, and
    whether that data was fresh (the look-up's answer was in before the call started)."""
    fake = bridge.stand_in
    assert fake is not None
    call: Call = await fake.incoming(number, DEMO_NUMBER)
    kinds = order.get(call.sid, [])
    fresh = EventKind.CUSTOMER_FOUND in kinds and kinds.index(EventKind.CUSTOMER_FOUND) < kinds.index(
        EventKind.CALL_STARTED
    )
    state = await bridge.app[STORE].get_call(call.sid)
    assert state is not None
    first = state.offers[0].agents if state.offers else []
    await fake.hang_up(call)

    async def over() -> bool:
        await fake.settle()
        done = await bridge.app[STORE].get_call(call.sid)
        return call.status == "completed" and done is not None and not done.waiting

    await wait_until(over, what="the call over")
    await bridge.settle()
    return first == [BOB], fresh


async def at_latency(work: Path, latency_ms: int, callers: int) -> dict[str, Any]:
    """Call `callers` customers twice each (a first call, then as known callers) with Zendesk this slow."""
    config = SandboxConfig(latency_seconds=latency_ms / 1000, search_index_delay=0.0)
    async with local_bridge(work / f"lookup{latency_ms}.db", sandbox_config=config, stand_in=True, virtual_time=True,
                            agents=dict(TEAM), lines=LINE) as bridge:  # fmt: skip
        order: dict[str, list[EventKind]] = {}
        bridge.app[INGEST].on_ingested(lambda event: order.setdefault(event.call_sid, []).append(event.kind))
        sandbox = bridge.sandbox
        numbers = [phone(n) for n in range(callers)]
        for n, number in enumerate(numbers):
            user = sandbox.create_user({"user": {"name": f"Customer {n}", "phone": number}})
            sandbox.open_ticket(int(user["id"]), TEAM[BOB])
        started = time.monotonic()
        first = [await one_call(bridge, number, order) for number in numbers]
        known = [await one_call(bridge, number, order) for number in numbers]
        seconds = time.monotonic() - started
    return {
        "latency_ms": latency_ms,
        "callers": callers,
        "first_calls_with_data_pct": round(100 * sum(routed for routed, _ in first) / callers, 1),
        "known_callers_fresh_pct": round(100 * sum(fresh for _, fresh in known) / callers, 1),
        "known_callers_with_data_pct": round(100 * sum(routed for routed, _ in known) / callers, 1),
        "seconds": round(seconds, 1),
    }


def measure(callers: int = 20) -> dict[str, Any]:
    """Run every latency; return the shares."""

    async def run() -> list[dict[str, Any]]:
        with tempfile.TemporaryDirectory(prefix="bridge-bench-lookup-") as tmp:
            return [await at_latency(Path(tmp), latency, callers) for latency in LATENCIES_MS]

    return {"budget_ms": 300, "by_latency": asyncio.run(run())}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
