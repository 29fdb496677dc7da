"""The load generator: a separate process that sends pre-generated, signed requests over loopback.

    python -m bench.load closed --url URL --token T --calls N --concurrency C
    python -m bench.load open   --url URL --token T --calls N --rate R
    python -m bench.load ringpop --url URL --token T --calls N --gap S
    python -m bench.load flood  --url URL --token T --calls N --rate R --addresses A
    python -m bench.load incoming --url URL --token T --calls N --rate R

It prints one JSON object: the timing summary (and, for ringpop, when each ringing was sent).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
import time
from collections import Counter

import aiohttp

from bench.common import Prepared, call_events, incoming_call, ring_all_events, summary


async def _post(session: aiohttp.ClientSession, request: Prepared) -> bool:
    """Send one request; tell whether it was acknowledged (a refused or dropped connection is not)."""
    try:
        async with session.post(request.url, data=request.body, headers=request.headers) as response:
            await response.read()
            return response.status < 300
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False


async def closed(requests: list[Prepared], concurrency: int) -> dict[str, float]:
    """Keep `concurrency` requests in flight until all are sent."""
    latencies: list[float] = []
    errors = 0
    queue = iter(requests)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            for request in queue:
                start = time.perf_counter()
                ok = await _post(session, request)
                latencies.append(time.perf_counter() - start)
                errors += not ok

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return summary(latencies, time.perf_counter() - began, errors)


async def open_loop(requests: list[Prepared], rate: float) -> dict[str, float]:
    """Send at a fixed rate whatever the answers; latency counts from each request's planned send time."""
    latencies: list[float] = []
    errors = 0
    # Up to 256 connections, like a busy Twilio edge; beyond that, requests queue in the client, and
    # the latency measured from each request's planned time includes that queueing.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def one(request: Prepared, planned: float) -> None:
            nonlocal errors
            ok = await _post(session, request)
            latencies.append(time.perf_counter() - planned)
            errors += not ok

        began = time.perf_counter()
        tasks = []
        for index, request in enumerate(requests):
            planned = began + index / rate
            delay = planned - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(request, planned)))
        await asyncio.gather(*tasks)
        return summary(latencies, time.perf_counter() - began, errors)


async def ringpop(url: str, token: str, calls: int, gap: float) -> dict[str, object]:
    """Run calls one after another; note when each ringing callback was sent (wall clock)."""
    sent: list[float] = []
    async with aiohttp.ClientSession() as session:
        for n in range(calls):
            parent, initiated, ringing = call_events(url, token, n, salt=0xB0B)
            await _post(session, parent)
            await _post(session, initiated)
            sent.append(time.time())
            await _post(session, ringing)
            await asyncio.sleep(gap)  # keeps each pop apart, so pops match calls by order
    return {"ringing_sent_at": sent}


async def burst(
    url: str, token: str, calls: int, within: float, ring_after: float, agents: list[str]
) -> dict[str, object]:
    """Calls arriving evenly over `within` s, each ringing every agent `ring_after` s after it arrives.

    Returns when each agent's ringing was sent (wall clock), per agent identity.
    """
    prepared = [ring_all_events(url, token, n, 0xB1, agents) for n in range(calls)]
    rings: list[tuple[str, float]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def one(events: list[Prepared], at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            await _post(session, events[0])  # the call arrives: the caller look-up starts here
            await asyncio.sleep(ring_after)
            await asyncio.gather(*(_post(session, e) for e in events[1::2]))  # every leg initiated

            async def ring(event: Prepared) -> None:
                sent = time.time()
                await _post(session, event)
                rings.append((event.kind, sent))

            await asyncio.gather(*(ring(e) for e in events[2::2]))

        began = time.monotonic()
        await asyncio.gather(*(one(events, began + n * within / calls) for n, events in enumerate(prepared)))
    return {"rings": rings}


async def flood(url: str, requests: int, rate: float, addresses: int) -> dict[str, object]:
    """Ask for a recording with a forged signature `requests` times at `rate` a second, from `addresses` clients.

    Each request names its client in X-Forwarded-For (the bridge runs with FORWARDED_ALLOW_IPS=*): request n
    comes from the n-th of `addresses` addresses. At most 256 are in flight, as from a busy attacker's host.
    """
    target = f"{url}/recordings/RE{'0' * 32}.mp3?sig=forged"
    first = int(ipaddress.IPv4Address("10.0.0.0"))
    statuses: Counter[str] = Counter()
    gate = asyncio.Semaphore(256)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def one(n: int) -> None:
            headers = {"X-Forwarded-For": str(ipaddress.IPv4Address(first + n % addresses))}
            try:
                async with session.get(target, headers=headers) as response:
                    await response.read()
                    statuses[str(response.status)] += 1
            except (aiohttp.ClientError, OSError, TimeoutError):
                statuses["error"] += 1
            finally:
                gate.release()

        began = time.perf_counter()
        tasks = []
        for n in range(requests):
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await gate.acquire()
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - began
    return {"requests": requests, "addresses": addresses, "seconds": round(elapsed, 1),
            "per_second": round(requests / elapsed, 1), "statuses": dict(statuses)}  # fmt: skip


def main() -> int:
    """Parse the command line, generate every request first, then time the sending."""
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("mode", choices=["closed", "open", "ringpop", "burst", "flood", "incoming"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--gap", type=float, default=0.05)
    parser.add_argument("--salt", type=int, default=1)
    parser.add_argument("--agent", default="client:alice", help="who the legs ring (client:nobody: no pops)")
    parser.add_argument("--within", type=float, default=2.0, help="burst: seconds over which the calls arrive")
    parser.add_argument("--ring-after", type=float, default=0.5, help="burst: seconds from a call's arrival to ringing")
    parser.add_argument("--agents", default="client:alice", help="burst: comma-separated identities every call rings")
    parser.add_argument("--addresses", type=int, default=1, help="flood: how many distinct client addresses")
    args = parser.parse_args()
    if args.mode == "flood":
        result = asyncio.run(flood(args.url, args.calls, args.rate, args.addresses))
    elif args.mode == "burst":
        result = asyncio.run(burst(args.url, args.token, args.calls, args.within, args.ring_after,
                                   args.agents.split(",")))  # fmt: skip
    elif args.mode == "incoming":  # calls arriving at `rate` a second: each one's /incoming, open loop
        calls = [incoming_call(args.url, args.token, n, args.salt) for n in range(args.calls)]
        result = dict(asyncio.run(open_loop(calls, args.rate)))
    elif args.mode == "ringpop":
        result: dict[str, object] = asyncio.run(ringpop(args.url, args.token, args.calls, args.gap))
    else:
        requests = [r for n in range(args.calls) for r in call_events(args.url, args.token, n, args.salt, args.agent)]
        if args.mode == "closed":
            result = dict(asyncio.run(closed(requests, args.concurrency)))
        else:
            result = dict(asyncio.run(open_loop(requests, args.rate)))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
