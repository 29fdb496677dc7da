"""The people on the calls of the routing benchmarks: callers who wait, agents who answer, talk, and come and go.

Runs inside the Twilio process (`bench.twilio`), on the stand-in's calls, and measures what Twilio sees:

- **offer latency**: from an agent becoming offerable to Twilio receiving the Calls update that moves a
  waiting caller to them. Offerable means the agent hung up a call (the moment they hang up, before Twilio
  sends the leg's `completed` to the bridge) or chose `available` (the moment the request leaves for the
  bridge). The clock stops when the Calls update arrives at the REST API, before Twilio's latency.
- **double offers**: a leg ringing an agent who already has a leg ringing or answered.
- offers made on arrival (a caller rung without a move) while the queue is meant to be full.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from bridge.devtools.fake_twilio import Call
from bridge.devtools.waiting import wait_until

if TYPE_CHECKING:
    from bench.twilio import Limits, LiveStandIn

NUMBER = "+16505550100"  # the number callers dial
FIRST_AGENT_ID = 5001  # the Zendesk user ids the bench gives its agents, in order


def agent_identity(n: int) -> str:
    """Return the n-th agent's identity (AGENTS names them in this order)."""
    return f"client:agent{n:03d}"


@dataclass(frozen=True)
class Plan:
    """The scenario: how many agents and waiting callers, for how long, and how people behave."""

    agents: int = 300
    callers: int = 500  # callers kept waiting in the queue: new ones arrive as others are taken
    seconds: float = 300.0  # how long agents free up at random
    seed: int = 1
    ring: tuple[float, float] = (1.0, 4.0)  # seconds an agent lets an offer ring before answering
    talk: tuple[float, float] = (20.0, 120.0)  # seconds a conversation lasts
    away_after_call: float = 0.15  # the share of calls after which the agent takes a break (away, then available)
    away_for: tuple[float, float] = (5.0, 30.0)
    arrivals_per_second: float = 50.0  # the fastest callers arrive, filling or topping up the queue

    @property
    def ramp(self) -> float:
        """Return the seconds over which the agents come available at the start of the shift."""
        return min(60.0, self.seconds / 2)


def summary(values: list[float]) -> dict[str, float]:
    """Summarise latencies (seconds) as a count and percentiles in milliseconds."""
    ordered = sorted(values)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 1) if ordered else float("nan")

    return {"count": len(ordered), "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99),
            "max_ms": round(ordered[-1] * 1000, 1) if ordered else float("nan"),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 1) if ordered else float("nan")}  # fmt: skip


class Floor:
    """Callers and agents on the stand-in's calls, and what Twilio sees of the bridge's routing."""

    def __init__(self, fake: LiveStandIn, limits: Limits, bridge_url: str, plan: Plan) -> None:
        """Own the number on the bridge, and listen to the stand-in's rings and the REST API's moves."""
        self.fake = fake
        self.bridge = bridge_url.rstrip("/")
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.agents = [agent_identity(n) for n in range(plan.agents)]
        fake.own(NUMBER, f"{self.bridge}/twilio/voice/incoming", status_callback=f"{self.bridge}/twilio/voice/status")
        self.freed: dict[str, tuple[float, str]] = {}  # agent -> when they became offerable, and how
        self.live: dict[str, Call] = {}  # the leg ringing or answered at each agent
        self.moved: dict[str, float] = {}  # caller -> when Twilio received the Calls update that moved them
        self.samples: list[tuple[float, str]] = []  # (seconds from offerable to the move received, how)
        self.counts = {"offers": 0, "double_offers": 0, "direct_offers": 0, "answered": 0, "placed": 0,
                       "negative": 0, "moves_received": 0, "status_changes": 0}  # fmt: skip
        self.doubles: list[str] = []
        self.arriving: list[Call] = []
        self.waiting_seen: list[int] = []
        self.lags: list[float] = []  # how late this process's event loop ran a 10 ms timer (its own load)
        self.measuring = False
        self.tasks: set[asyncio.Task[Any]] = set()
        self.session: aiohttp.ClientSession | None = None
        limits.listeners.append(self._moved)
        progress = fake.account.progress

        async def hooked(call: Call, status: str) -> None:
            await progress(call, status)
            if status == "ringing" and call.direction == "outbound-dial":
                self._rang(call)

        fake.account.progress = hooked  # type: ignore[method-assign]

    # --- what Twilio sees ----------------------------------------------------------------------------------

    def _moved(self, at: float, call_sid: str) -> None:
        """Note when a caller's move reached Twilio."""
        self.moved[call_sid] = at
        if self.measuring:
            self.counts["moves_received"] += 1

    def _rang(self, leg: Call) -> None:
        """An agent's phone rings: check they had no other call, time the move that brought it, answer it."""
        agent = leg.to
        self.counts["offers"] += 1
        other = self.live.get(agent)
        if other is not None and not other.over:
            self.counts["double_offers"] += 1
            self.doubles.append(f"{agent}: {other.parent.sid if other.parent else '?'} and {leg.parent.sid}")
        self.live[agent] = leg
        assert leg.parent is not None
        received = self.moved.get(leg.parent.sid)
        freed = self.freed.pop(agent, None)
        if self.measuring and received is None:
            self.counts["direct_offers"] += 1
        elif self.measuring and freed is not None and received is not None:
            if received < freed[0]:
                self.counts["negative"] += 1  # moved before the agent was free: a decision made on stale presence
            else:
                self.samples.append((received - freed[0], freed[1]))
        self._spawn(self._take(leg))

    # --- the people ---------------------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run a person's next steps as a tracked task."""
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _take(self, leg: Call) -> None:
        """Let the offer ring a little, answer, talk, hang up; sometimes take a break after the call."""
        agent = leg.to
        await asyncio.sleep(self.rng.uniform(*self.plan.ring))
        if leg.over or leg.parent is None:
            return
        leg.parent.post("leg", (leg, "answer", None))
        self.counts["answered"] += 1
        await asyncio.sleep(self.rng.uniform(*self.plan.talk))
        if leg.over:
            return
        away = self.measuring and self.rng.random() < self.plan.away_after_call
        if away:
            await self._choose(agent, "away")
        else:
            self.freed[agent] = (time.monotonic(), "call_end")
        leg.parent.post("leg", (leg, "hangup", None))
        if away:
            await asyncio.sleep(self.rng.uniform(*self.plan.away_for))
            await self._available(agent)

    async def _available(self, agent: str) -> None:
        """The agent chooses `available`: offerable from the moment the request leaves."""
        self.freed[agent] = (time.monotonic(), "status")
        await self._choose(agent, "available")

    async def _choose(self, agent: str, status: str) -> None:
        """Set the agent's status through a bridge instance (the Desk, as a click in the softphone would)."""
        assert self.session is not None
        async with self.session.post(f"{self.bridge}/bench/agents/{agent}", data={"status": status}) as response:
            response.raise_for_status()
        if self.measuring:
            self.counts["status_changes"] += 1

    def waiting(self) -> int:
        """Return how many callers wait in Twilio's queues."""
        return sum(len(queue.members) for queue in self.fake.account.queues.values())

    async def _place(self) -> None:
        """A new caller dials in."""
        self.counts["placed"] += 1
        number = f"+1415{self.counts['placed']:07d}"
        self.arriving.append(await self.fake.incoming(number, NUMBER))

    async def _top_up(self) -> None:
        """Keep `callers` waiting: new callers arrive as others are taken, at most `arrivals_per_second`."""
        tick = 0.1
        most = max(1, int(self.plan.arrivals_per_second * tick))
        while True:
            self.arriving = [call for call in self.arriving if call.queue is None and not call.over
                             and not self.fake.legs(call)]  # fmt: skip
            waiting = self.waiting()
            if self.measuring:
                self.waiting_seen.append(waiting)
            for _ in range(min(most, self.plan.callers - waiting - len(self.arriving))):
                await self._place()
            await asyncio.sleep(tick)

    async def _watch_lag(self) -> None:
        """Note how late the event loop wakes: a late loop notes moves late and sends hang-ups late."""
        while True:
            began = time.monotonic()
            await asyncio.sleep(0.01)
            if self.measuring:
                self.lags.append(time.monotonic() - began - 0.01)

    # --- the scenario ---------------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Set every agent away, fill the queue, then let agents free up at random for the plan's seconds."""
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as self.session:
            await wait_until(self._bridge_up, within=60, what="the bridge")
            gate = asyncio.Semaphore(16)

            async def away(agent: str) -> None:
                async with gate:
                    await self._choose(agent, "away")

            await asyncio.gather(*(away(agent) for agent in self.agents))
            self._spawn(self._top_up())
            filling = time.monotonic()
            await wait_until(lambda: self.waiting() >= self.plan.callers, within=300, what="the queue to fill")
            fill_seconds = time.monotonic() - filling
            self.measuring = True
            self._spawn(self._watch_lag())
            began, cpu = time.monotonic(), time.process_time()
            for agent in self.agents:
                self._spawn(self._arrive(agent, self.rng.uniform(0, self.plan.ramp)))
            await asyncio.sleep(self.plan.seconds)
            self.measuring = False
            elapsed, cpu = time.monotonic() - began, time.process_time() - cpu
            await asyncio.sleep(3.0)  # moves decided at the end land, and their rings are timed
            unoffered = sum(1 for at, _ in self.freed.values() if at < began + elapsed - 2.0)
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        errors = sum(len(call.errors) for call in self.fake.account.calls.values())
        return {
            "agents": self.plan.agents, "callers": self.plan.callers, "seconds": round(elapsed, 1),
            "fill_seconds": round(fill_seconds, 1), **self.counts,
            "latency": summary([s for s, _ in self.samples]),
            "latency_status": summary([s for s, how in self.samples if how == "status"]),
            "latency_call_end": summary([s for s, how in self.samples if how == "call_end"]),
            "freed_unoffered": unoffered, "waiting_min": min(self.waiting_seen, default=0),
            "waiting_max": max(self.waiting_seen, default=0), "twiml_errors": errors,
            "twilio_cpu_share": round(cpu / elapsed, 2), "twilio_loop_lag": summary(self.lags),
            "doubles": self.doubles[:20],
        }  # fmt: skip

    async def _arrive(self, agent: str, after: float) -> None:
        """The agent starts their shift: available after a while."""
        await asyncio.sleep(after)
        await self._available(agent)

    async def _bridge_up(self) -> bool:
        """Tell whether the bridge answers."""
        assert self.session is not None
        with contextlib.suppress(aiohttp.ClientError):
            async with self.session.get(f"{self.bridge}/healthz") as response:
                return response.status == 200
        return False
