"""The wait to expect, replayed: a generated day of calls, the bridge's estimator, and how far it was off.

A day from 08:00 to 18:00 is generated with a seed: arrivals a Poisson stream whose rate follows the hours
(a morning and an afternoon peak), handle times log-normal (median 4 minutes, as support calls go), agents
staffed by the hour, callers giving up after a patience of their own. The queue is served first come,
first served by whoever frees up. Each caller who has to wait hears the estimate at their first announcement,
computed exactly as the bridge does (`bridge.core.estimate`): from the handle times the agents kept of their
last calls (kept when a call ends, never before), how long each agent's call has lasted so far, the agents
working and the caller's place. The estimate's error is measured, for every caller who heard one, against
the wait they then had until an agent took them (callers who gave up first have no wait to compare with).

`python -m bench.wait` prints the figures; `make bench` puts them in bench/RESULTS.md.
"""

from __future__ import annotations

import heapq
import json
import math
import random
import statistics
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.core import estimate
from bridge.core.presence import Agent, PresencePolicy

SEED = 27
OPEN, CLOSE = 8, 18  # the day's hours
# Calls an hour and agents staffed, hour by hour from 08:00: busy enough that callers wait minutes at the peaks.
RATES = (45, 70, 85, 80, 60, 55, 75, 85, 70, 45)
STAFF = (4, 6, 6, 6, 5, 5, 6, 6, 6, 4)
HANDLE_MEDIAN, HANDLE_SIGMA = 240.0, 0.5  # seconds; log-normal
PATIENCE = 900.0  # mean seconds a caller waits before giving up (exponential)
TARGET = 0.25  # the estimate is announced only if its median error on the day is within this
T0 = datetime(2026, 12, 7, OPEN, 0, tzinfo=UTC)


@dataclass
class Caller:
    """One generated call: when it came, how long it takes, how long the caller would wait."""

    number: int
    arrived: float
    handle: float
    patience: float
    estimate: float | None = None
    heard: bool = False
    waited: float | None = None  # until an agent took them (None: gave up, or never waited)
    queued: bool = False


def generate(seed: int = SEED) -> list[Caller]:
    """Return a day of calls: Poisson arrivals following RATES, log-normal handle times, exponential patience."""
    rng = random.Random(seed)
    callers: list[Caller] = []
    at = 0.0
    while True:
        hour = int(at // 3600)
        if hour >= len(RATES):
            return callers
        at += rng.expovariate(RATES[hour] / 3600)
        if at >= len(RATES) * 3600:
            return callers
        handle = rng.lognormvariate(math.log(HANDLE_MEDIAN), HANDLE_SIGMA)
        callers.append(Caller(len(callers), at, handle, rng.expovariate(1 / PATIENCE)))


def staffed(at: float) -> int:
    """Return the agents working at `at` seconds into the day."""
    return STAFF[min(int(at // 3600), len(STAFF) - 1)]


def replay(callers: list[Caller]) -> list[Caller]:
    """Serve the day first come, first served, estimating each waiting caller's wait as the bridge would."""
    agents = max(STAFF)
    free_at = [0.0] * agents  # when each agent's current call (and wrap-up) ends
    handled: list[list[float]] = [[] for _ in range(agents)]
    started = [0.0] * agents  # when each agent's current call began
    last = [0.0] * agents  # the length of each agent's current call
    queue: list[Caller] = []  # FIFO
    ends: list[tuple[float, int]] = []  # (when, agent) of calls in progress
    events = sorted(callers, key=lambda caller: caller.arrived)
    index = 0
    now = 0.0
    while index < len(events) or queue or ends:
        next_arrival = events[index].arrived if index < len(events) else math.inf
        next_end = ends[0][0] if ends else math.inf
        next_giveup = min((c.arrived + c.patience for c in queue), default=math.inf)
        now = min(next_arrival, next_end, next_giveup)
        if now == math.inf:
            break
        if now == next_end:
            _, agent = heapq.heappop(ends)
            # The bridge keeps a handle time when the call ends, never before.
            handled[agent] = (handled[agent] + [round(last[agent], 1)])[-estimate.HANDLE_SAMPLES :]
        elif now == next_giveup:
            queue = [c for c in queue if c.arrived + c.patience > now]
        else:
            caller = events[index]
            index += 1
            queue.append(caller)
        _assign(now, queue, free_at, started, last, ends)
        for caller in queue:
            if not caller.queued:
                caller.queued = True
                _estimate(caller, now, queue, free_at, started, handled)
    return callers


def _assign(now: float, queue: list[Caller], free_at: list[float], started: list[float], last: list[float],
            ends: list[tuple[float, int]]) -> None:  # fmt: skip
    """Give each free agent working now the caller waiting longest."""
    working = staffed(now)
    for agent in range(working):
        if not queue:
            return
        if free_at[agent] <= now:
            caller = queue.pop(0)
            caller.waited = now - caller.arrived if caller.queued else None
            free_at[agent] = now + caller.handle
            started[agent], last[agent] = now, caller.handle
            heapq.heappush(ends, (free_at[agent], agent))


def _estimate(caller: Caller, now: float, queue: list[Caller], free_at: list[float], started: list[float],
              handled: list[list[float]]) -> None:  # fmt: skip
    """Estimate the caller's wait as the bridge does: their place, the agents working, their handle times."""
    moment = T0 + timedelta(seconds=now)
    agents = [
        Agent(
            f"client:{n}", n, chosen="available" if n < staffed(now) else "away", handled=tuple(handled[n]),
            busy="on_call" if free_at[n] > now else None, busy_since=T0 + timedelta(seconds=started[n]),
        )
        for n in range(len(free_at))
    ]  # fmt: skip
    place = queue.index(caller) + 1
    seconds = estimate.for_line(place, agents, moment, PresencePolicy())
    caller.estimate = seconds
    caller.heard = estimate.announced(seconds) is not None


def measure(seed: int = SEED) -> dict[str, Any]:
    """Replay the generated day; return the estimate's error and the share of callers who heard one."""
    callers = replay(generate(seed))
    waited = [c for c in callers if c.queued]
    compared = [c for c in waited if c.heard and c.waited is not None and c.estimate is not None and c.waited > 0]
    errors = [abs(c.estimate - c.waited) / c.waited for c in compared if c.estimate is not None and c.waited]
    minutes_off = [abs(estimate.minutes(c.estimate) - c.waited / 60) for c in compared if c.estimate is not None]
    median = statistics.median(errors) if errors else math.inf
    return {
        "seed": seed,
        "calls": len(callers),
        "waited": len(waited),
        "heard_estimate": sum(1 for c in waited if c.heard),
        "heard_share_pct": round(100 * sum(1 for c in waited if c.heard) / max(1, len(waited)), 1),
        "compared": len(compared),
        "median_error_pct": round(100 * median, 1),
        "p90_error_pct": round(100 * statistics.quantiles(errors, n=10)[-1], 1) if len(errors) > 1 else None,
        "median_wait_s": round(statistics.median(c.waited for c in compared), 1) if compared else None,
        "median_minutes_off": round(statistics.median(minutes_off), 2) if minutes_off else None,
        "announce": median <= TARGET,
    }


def days(first: int = SEED, count: int = 10) -> dict[str, Any]:
    """Replay `count` days (seeds from `first`): the reported day, and how much the median error moves between days."""
    runs = [measure(seed) for seed in range(first, first + count)]
    medians = [run["median_error_pct"] for run in runs]
    return {
        **runs[0],
        "days": count,
        "median_error_pct_by_day": medians,
        "days_within_target": sum(1 for median in medians if median <= 100 * TARGET),
        "heard_share_pct_by_day": [run["heard_share_pct"] for run in runs],
    }


if __name__ == "__main__":
    print(json.dumps(days(int(sys.argv[1]) if len(sys.argv) > 1 else SEED), indent=2))
