"""Twilio for the routing benchmarks: the stand-in of bridge.devtools.fake_twilio, on the wall clock.

    python -m bench.twilio --port P --bridge URL --token T [scenario options]

The stand-in executes the bridge's TwiML as Twilio does (queues, dials, status callbacks, signed webhooks)
and serves Twilio's REST API. Tests run it on virtual time, moved by hand; here time is the wall clock, so
prompts, rings and timeouts take as long as they say. Its REST API answers as production Twilio does:

- each request takes 100-300 ms (BENCH_TWILIO_LATENCY="0.1,0.3" changes the range);
- at most BENCH_TWILIO_CONCURRENCY (100) requests of the account are in flight; the next is refused with
  429 and code 20429 and not processed (Twilio docs: error 20429, "Too many requests").

Every Calls update (POST .../Calls/{Sid}.json with Url) is noted the moment it arrives, before the
latency: that is where the routing benchmarks stop the clock. The people on the calls are played by
`bench.floor`; this process prints one JSON object, the floor's report, and ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bridge.devtools.demo import serve
from bridge.devtools.fake_twilio import TwilioStandIn
from bridge.devtools.fake_twilio.clock import VirtualClock
from bridge.devtools.fake_twilio.rest import RestError
from bridge.ops.settings import TWILIO_HOLD_MUSIC

CALLS_UPDATE = re.compile(r"/Accounts/AC[0-9a-f]{32}/Calls/(CA[0-9a-f]{32})\.json$")
HOLD_MUSIC_SECONDS = 60.0  # a clip about QUEUE_ANNOUNCE_SECONDS long, as docs/routing.md advises


class WallClock(VirtualClock):
    """The stand-in's clock on real time: `now` is the wall clock and timers fire when they fall due."""

    def __init__(self) -> None:
        """Start a clock with no timers (the loop keeps them)."""
        super().__init__(self._nothing)

    @staticmethod
    async def _nothing() -> None:
        """Nothing to settle: time is not moved by hand."""

    @property  # type: ignore[override]
    def now(self) -> datetime:
        """Return the wall clock's time."""
        return datetime.now(UTC)

    @now.setter
    def now(self, value: datetime) -> None:
        """Ignore: the wall clock cannot be set."""

    def at(self, due: datetime, callback: Callable[[], None]) -> None:
        """Run `callback` when the wall clock reaches `due`."""
        delay = max(0.0, (due - datetime.now(UTC)).total_seconds())
        asyncio.get_running_loop().call_later(delay, callback)


class LiveStandIn(TwilioStandIn):
    """The stand-in on the wall clock: nothing waits for it to be idle, as nothing on real Twilio would."""

    def __init__(self, auth_token: str) -> None:
        """Set the account up on the wall clock; the hold music lasts HOLD_MUSIC_SECONDS."""
        super().__init__(auth_token)
        clock = WallClock()
        self.account.clock = clock
        self.account.sender._clock = clock  # the webhook sender dates its recording lines by it
        self.interpreter.audio_seconds[TWILIO_HOLD_MUSIC] = HOLD_MUSIC_SECONDS

    async def settle(self) -> None:
        """Let other tasks run once; the REST API and the actors never wait for the whole account to be idle."""
        await asyncio.sleep(0)


@dataclass
class Limits:
    """Twilio's REST API as production answers it: a latency, a concurrency limit, and a log of Calls updates."""

    latency: tuple[float, float] = (0.1, 0.3)
    concurrency: int = 100
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    in_flight: int = 0
    refused: int = 0
    requests: int = 0
    moves: list[tuple[float, str]] = field(default_factory=list)  # (monotonic arrival, CallSid), accepted only
    listeners: list[Callable[[float, str], None]] = field(default_factory=list)

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Note a Calls update's arrival, refuse it beyond the concurrency limit, answer after the latency."""
        arrived = time.monotonic()
        self.requests += 1
        if self.in_flight >= self.concurrency:
            self.refused += 1
            # Twilio docs: error 20429: never processed, safe to retry after backing off.
            raise RestError(429, 20429, "Too Many Requests")
        self.in_flight += 1
        try:
            match = CALLS_UPDATE.search(request.path) if request.method == "POST" else None
            if match is not None and "Url" in await request.post():
                self.moves.append((arrived, match.group(1)))
                for listener in self.listeners:
                    listener(arrived, match.group(1))
            await asyncio.sleep(self.rng.uniform(*self.latency))
            return await handler(request)
        finally:
            self.in_flight -= 1


async def start(token: str, port: int, limits: Limits) -> tuple[LiveStandIn, list[web.AppRunner]]:
    """Serve the stand-in's REST API (with Twilio's limits) on `port`, and its media host anywhere."""
    fake = LiveStandIn(token)
    api, media = fake.apps_to_serve()
    api.middlewares.insert(0, limits.middleware)
    media_runner, fake.media.media_base = await serve(media)
    runner = web.AppRunner(api, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}"
    return fake, [runner, media_runner]


def _latency() -> tuple[float, float]:
    """Return the REST API's latency range from BENCH_TWILIO_LATENCY ("low,high" seconds)."""
    low, high = (float(part) for part in os.environ.get("BENCH_TWILIO_LATENCY", "0.1,0.3").split(","))
    return low, high


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Serve Twilio, play the floor's scenario against the bridge, and return the report."""
    from bench.floor import Floor, Plan

    limits = Limits(latency=_latency(), concurrency=int(os.environ.get("BENCH_TWILIO_CONCURRENCY", "100")))
    fake, runners = await start(args.token, args.port, limits)
    try:
        plan = Plan(agents=args.agents, callers=args.callers, seconds=args.seconds, seed=args.seed)
        floor = Floor(fake, limits, args.bridge, plan)
        report = await floor.run()
    finally:
        await fake.close()
        for runner in runners:
            await runner.cleanup()
    report["twilio"] = {"requests": limits.requests, "refused_429": limits.refused,
                        "latency_ms": [round(x * 1000) for x in limits.latency],
                        "concurrency": limits.concurrency}  # fmt: skip
    return report


def main() -> int:
    """Parse the command line, run, print the report."""
    parser = argparse.ArgumentParser(prog="python -m bench.twilio")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bridge", required=True, help="the bridge's PUBLIC_URL")
    parser.add_argument("--token", required=True, help="the account's auth token (TWILIO_AUTH_TOKEN)")
    parser.add_argument("--agents", type=int, default=300)
    parser.add_argument("--callers", type=int, default=500, help="callers kept waiting in the queue")
    parser.add_argument("--seconds", type=float, default=300.0, help="how long agents free up at random")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    json.dump(asyncio.run(run(args)), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
