"""The wait a queued caller can expect, pure: from the line's recent handle times, its agents and the callers ahead.

**The estimator.** A caller at place `k` is offered an agent when the `k`-th agent frees up from now. Each
working agent of the line frees up after what is likely left of their call (a typical call, `H`, less what
they have talked already, but never less than `RESIDUAL_FLOOR` of `H`: a call past its typical length still
takes a while), or when their wrap-up ends, or at once when free; from then on every `H` seconds, one caller
each. The estimate is when the `k`-th of those moments comes (`projected`). It is the expected wait of a
first-come first-served queue with `n` servers given the caller's place, with what the bridge knows of each
agent's call so far: with nothing known (every call just begun) and exponential handle times it is the
textbook `k * H / n`. Erlang C answers another question, the wait of a caller who has not arrived yet,
averaged over every place they might get, and needs an arrival rate the bridge would have to estimate too.

- `H` is the median of the last handle times (talk plus wrap-up) of the line's agents, at most
  `HANDLE_SAMPLES` each: the median, so one call that lasted an hour does not make everyone wait longer.
- The working agents are the line's agents who are available (Zendesk included), busy with a call or not.
  An agent away or offline ends no calls for the queue.
- No estimate without at least `MIN_SAMPLES` handle times, or without anyone working.
- Said only when it is at least `ANNOUNCE_FROM` seconds: a short wait needs no estimate, and it is where an
  estimate is least accurate. A caller told nothing more hears their place, as before.

`bench/wait.py` replays a generated day of calls through this estimator: its median error there is within
25 % (bench/RESULTS.md has the figures, and the share of callers who heard an estimate).
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from bridge.core.presence import Agent, PresencePolicy, busy_now, presence

HANDLE_SAMPLES = 20  # handle times each agent keeps, the most recent last
MIN_SAMPLES = 5  # handle times the line's agents must have between them before the bridge says a wait
RESIDUAL_FLOOR = 0.15  # of a typical call: what a call past its typical length is still expected to last
ANNOUNCE_FROM = 120.0  # seconds: a shorter expected wait is not said (only the caller's place)
ROUND_TO = 60.0  # people round a wait to the minute ("about five minutes")
NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
           "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")  # fmt: skip


def handled(before: Agent, after: Agent, now: datetime, wrap_up: float) -> Agent:
    """Keep the handle time of the call the agent just finished (talk from their answer, plus wrap-up)."""
    if before.busy != "on_call" or before.busy_since is None or after.busy == "on_call":
        return after
    seconds = round(max(0.0, (now - before.busy_since).total_seconds()) + wrap_up, 1)
    return replace(after, handled=(*before.handled, seconds)[-HANDLE_SAMPLES:])


def handle_time(agents: Iterable[Agent], size: int = HANDLE_SAMPLES) -> float | None:
    """Return the median of the agents' last handle times (the most recent of each), or None with too few."""
    samples = [seconds for agent in agents for seconds in agent.handled[-size:]]
    if len(samples) < MIN_SAMPLES:
        return None
    return float(statistics.median(samples))


def remaining(agent: Agent, now: datetime, handle: float) -> float:
    """Return how long the agent will likely stay busy: the rest of a typical call, wrap-up's end, or nothing."""
    busy = busy_now(agent, now)
    if busy == "on_call" and agent.busy_since is not None:
        elapsed = (now - agent.busy_since).total_seconds()
        return max(handle - elapsed, handle * RESIDUAL_FLOOR)
    if busy == "wrap_up" and agent.busy_until is not None:
        return (agent.busy_until - now).total_seconds()
    return handle if busy == "ringing" else 0.0


def projected(place: int, ends: Sequence[float], handle: float) -> float:
    """Return when the `place`-th agent frees up, each agent ending after `ends` and then every `handle` seconds."""
    heap = list(ends)
    heapq.heapify(heap)
    at = 0.0
    for _ in range(place):
        at = heapq.heappop(heap)
        heapq.heappush(heap, at + handle)
    return at


def for_line(place: int, agents: Sequence[Agent], now: datetime, policy: PresencePolicy) -> float | None:
    """Return the expected wait of a caller at `place` in a line served by `agents`."""
    handle = handle_time(agents)
    staff = [agent for agent in agents if presence(agent, now, policy) == "available"]
    if handle is None or not staff or place <= 0:
        return None
    return projected(place, [remaining(agent, now, handle) for agent in staff], handle)


def announced(seconds: float | None) -> str | None:
    """Return the expected wait as it is said, or None when it is not said (unknown, or short)."""
    return spoken(seconds) if seconds is not None and seconds >= ANNOUNCE_FROM else None


def minutes(seconds: float) -> int:
    """Round a wait to whole minutes as people do: at least one."""
    return max(1, int(seconds / ROUND_TO + 0.5))


def spoken(seconds: float) -> str:
    """Say a wait as people do: "about one minute", "about five minutes", "more than twenty minutes"."""
    count = minutes(seconds)
    if count > len(NUMBERS):
        return f"more than {NUMBERS[-1]} minutes"
    return f"about {NUMBERS[count - 1]} minute{'s' if count > 1 else ''}"
