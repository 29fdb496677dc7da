"""The wait a queued caller can expect, pure: from the line's recent handle times, its agents and the callers ahead.

**The estimator.** While every agent of the line is busy, calls end one after another; with `n` agents at work
and a mean handle time `H`, one ends every `H / n` seconds on average. A caller with `k - 1` callers ahead
(place `k`) is offered an agent when the `k`-th call ends from now, so they can expect to wait `k * H / n`.
That is the expected wait of a queue of `n` servers given the caller's place (with exponential handle times
the ends form a Poisson stream of rate `n / H`, and `k` of them take `k * H / n`); Erlang C answers a different
question, the wait of a caller who has not arrived yet, averaged over every place they might get, and needs an
arrival rate the bridge would have to estimate too. The place is known, so the simpler formula is the better one.

- `H` is the median of the last handle times (talk plus wrap-up) of the line's agents, at most
  `HANDLE_SAMPLES` of them: the median, so one call that lasted an hour does not make everyone wait longer.
- `n` counts the line's agents who are working: available (Zendesk included) whether or not a call keeps them
  busy now. An agent away or offline ends no calls for the queue.
- No estimate without at least `MIN_SAMPLES` handle times, or without anyone working: the bridge then says
  only the caller's place.

`bench/wait.py` replays a generated day of calls with this estimator and reports its error in bench/RESULTS.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from bridge.core.presence import Agent, PresencePolicy, presence

HANDLE_SAMPLES = 20  # handle times each agent keeps, the most recent last
MIN_SAMPLES = 5  # handle times the line's agents must have between them before the bridge says a wait
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


def working(agents: Iterable[Agent], now: datetime, policy: PresencePolicy) -> int:
    """Count the agents who take calls now: available, on a call or not."""
    return sum(1 for agent in agents if presence(agent, now, policy) == "available")


def expected_wait(place: int, staffed: int, handle: float | None) -> float | None:
    """Return the seconds a caller at `place` can expect to wait, with `staffed` agents working (None: unknown)."""
    if handle is None or staffed <= 0 or place <= 0:
        return None
    return place * handle / staffed


def for_line(place: int, agents: Sequence[Agent], now: datetime, policy: PresencePolicy) -> float | None:
    """Return the expected wait of a caller at `place` in a line served by `agents`."""
    return expected_wait(place, working(agents, now, policy), handle_time(agents))


def minutes(seconds: float) -> int:
    """Round a wait to whole minutes as people do: at least one."""
    return max(1, int(seconds / ROUND_TO + 0.5))


def spoken(seconds: float) -> str:
    """Say a wait as people do: "about one minute", "about five minutes", "more than twenty minutes"."""
    count = minutes(seconds)
    if count > len(NUMBERS):
        return f"more than {NUMBERS[-1]} minutes"
    return f"about {NUMBERS[count - 1]} minute{'s' if count > 1 else ''}"
