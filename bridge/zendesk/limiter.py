"""The outbox's Zendesk budget: a 60 s sliding window with a reserve for screen-pops, fed by Zendesk's headers.

Zendesk counts requests per account per minute and reports the account's limit and what is left of the
current minute on every answer (Zendesk developer docs, "Best practices for avoiding rate limiting":
`X-Rate-Limit`, `X-Rate-Limit-Remaining`, and on list endpoints `ratelimit-reset`, seconds until the
minute resets). Other apps spend the same budget, so those headers bound ours as well as our own count.
A 429 carries `Retry-After` (Zendesk API reference, "Rate limits"): until then every request is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

Monotonic = Callable[[], float]  # the limiter counts seconds; it needs a steady count, not the date

# Whether the delivery running in this task is urgent (a pop or what it needs). The worker sets it per
# delivery task; the client's hook reads it, so each request is counted with its action's priority.
URGENT: ContextVar[bool] = ContextVar("zendesk_urgent", default=False)
# The number of the request this task sent last (1, 2, …): its answer's headers and its end are matched to it.
_REQUEST: ContextVar[int] = ContextVar("zendesk_request", default=0)

WINDOW = 60.0
PROBE_PATIENCE = 30.0  # a probe cut short (its task cancelled) never reports back; after this, another may go


@dataclass(frozen=True)
class RateInfo:
    """What one Zendesk answer said about the account's budget (None: the header was absent)."""

    limit: int | None
    remaining: int | None
    reset: float | None  # seconds until the current minute's count resets


def _number(headers: Mapping[str, str], *names: str) -> float | None:
    """Return the first of the named headers that parses as a number."""
    for name in names:
        value = headers.get(name)
        if value is None:
            continue
        with contextlib.suppress(ValueError):
            return float(value.strip())
    return None


def rate_info(headers: Mapping[str, str]) -> RateInfo:
    """Parse the account-wide rate-limit headers of a Zendesk answer (aiohttp headers are case-insensitive)."""
    limit = _number(headers, "X-Rate-Limit", "ratelimit-limit")
    remaining = _number(headers, "X-Rate-Limit-Remaining", "ratelimit-remaining")
    return RateInfo(
        int(limit) if limit is not None else None,
        int(remaining) if remaining is not None else None,
        _number(headers, "ratelimit-reset"),
    )


class Limiter:
    """Never more than `per_minute` requests in any 60 s; a burst goes at once while budget remains.

    Every HTTP request takes one token as it goes out (the client's `before_send`), so the count is what
    Zendesk sees: an action that sends nothing takes none, one that sends three takes three.

    A `reserve` share of the window is kept for urgent requests (pops and what they need) while urgent
    work could need it: an urgent request is waiting, or one went within the last `quiet` seconds (a call
    that rang recently rings more legs, and is answered with a popping ticket). Once urgent work has been
    quiet that long, background work may borrow the reserve, all but `floor` requests: enough for the pops
    of one call arriving later, which then go at once while the window slides for the rest.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        reserve: float = 0.25,
        floor: int = 0,
        quiet: float = 30.0,
        clock: Monotonic = time.monotonic,
        tick: float = 1.0,
    ) -> None:
        """Allow `per_minute` requests a minute, keeping a `reserve` share (at least `floor`) for urgent ones."""
        self._limit = per_minute
        self._share = reserve
        self._reserve = min(max(0, per_minute - 1), math.ceil(per_minute * reserve))
        self._floor = min(self._reserve, max(0, floor))
        self._quiet = quiet
        self._clock = clock
        self._tick = tick  # the longest a waiter sleeps before looking again (a 429 may arrive meanwhile)
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._remote: tuple[int, float, float] | None = None  # (remaining, observed at, resets at)
        self._remote_seq = 0  # the request whose answer gave that count: later ones may not be in it
        self._probe = 0  # a request sent once that count had reset, to learn the new one; 0: none out
        self._probe_at = 0.0
        self._account_limit: int | None = None
        self._urgent_at = -math.inf  # when urgent work last asked for a request
        self._urgent_waiting = 0
        self.in_flight = 0  # requests sent and not yet ended
        self.requests = 0  # every request counted since start (what Zendesk saw from us)
        self._changed = asyncio.Event()

    @property
    def reserve(self) -> int:
        """Return how many requests a window keeps for urgent work while urgent work is about."""
        return self._reserve

    @property
    def floor(self) -> int:
        """Return how many requests a window keeps for urgent work even when background borrows the reserve."""
        return self._floor

    def paused_for(self) -> float:
        """Return how many seconds remain of a 429's Retry-After (0: not paused)."""
        return max(0.0, self._paused_until - self._clock())

    def pause(self, seconds: float) -> None:
        """Stop every request for `seconds` (Zendesk answered 429 with this Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._wake()

    def observe(self, info: RateInfo) -> None:
        """Take the account's own count into account (other apps spend the same budget)."""
        now = self._clock()
        if info.limit is not None and info.limit > 0:
            self._account_limit = info.limit
        seq = _REQUEST.get()
        if info.remaining is not None and seq >= self._remote_seq:  # an older request's answer is stale
            reset = info.reset if info.reset is not None else WINDOW
            self._remote = (info.remaining, now, now + max(0.0, reset))
            self._remote_seq = seq
            if seq >= self._probe:
                self._probe = 0  # a count at least as new as the probe's: it has told what it had to
        self._wake()

    def answered(self) -> None:
        """Note that this task's request ended, answered or not (the client reports each)."""
        self.in_flight = max(0, self.in_flight - 1)
        if self._probe and _REQUEST.get() == self._probe:
            self._probe = 0
            self._wake()

    def urgent_seen(self) -> None:
        """Hold the reserve back from now for `quiet` seconds (an urgent request asked for budget: a call rings)."""
        self._urgent_at = max(self._urgent_at, self._clock())
        self._wake()

    def borrowing(self) -> bool:
        """Tell whether background work may borrow the reserve now (no urgent work for `quiet` seconds)."""
        return not self._urgent_waiting and self._clock() - self._urgent_at >= self._quiet

    def delay(self, urgent: bool) -> float:
        """Return how long a request must wait for budget (0: it may go now)."""
        now = self._clock()
        if now < self._paused_until:
            return self._paused_until - now
        while self._sent and self._sent[0] <= now - WINDOW:
            self._sent.popleft()
        borrowing = not urgent and self.borrowing()
        keep = 0 if urgent else self._floor if borrowing else self._reserve
        allowed = self._limit - keep
        if len(self._sent) >= allowed:
            return self._sent[len(self._sent) - allowed] + WINDOW - now
        if self._remote is not None:
            remaining, _, resets_at = self._remote
            # The account's own reserve: the same share of what Zendesk allows the whole account.
            account = self._account_limit or self._limit
            keep = 0 if urgent else min(self._floor, account) if borrowing else math.ceil(self._share * account)
            # Every request sent after the one whose answer gave the count may be missing from it.
            if remaining - (self.requests - self._remote_seq) <= keep:
                if now < resets_at:
                    return resets_at - now
                # The count has reset, by how much the headers do not say (a fixed minute frees all of it, a
                # rolling window only its oldest requests): one request at a time until an answer tells.
                if self._probe and now - self._probe_at < PROBE_PATIENCE:
                    return self._tick
        return 0.0

    def _stale(self, now: float) -> bool:
        """Tell whether Zendesk's last count was low and has reset since (the next request is a probe)."""
        if self._remote is None:
            return False
        remaining, _, resets_at = self._remote
        return now >= resets_at and remaining - (self.requests - self._remote_seq) <= self._reserve

    async def acquire(self, urgent: bool | None = None) -> None:
        """Wait until a request may go, and count it (`urgent` None: as the running delivery says)."""
        if urgent is None:
            urgent = URGENT.get()
        if urgent:
            self._urgent_waiting += 1
            self.urgent_seen()  # background waiters must stop borrowing the reserve now
        try:
            while (wait := self.delay(urgent)) > 0:
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), min(wait, self._tick))
        finally:
            if urgent:
                self._urgent_waiting -= 1
                self._urgent_at = max(self._urgent_at, self._clock())
        now = self._clock()
        probe = self._stale(now)
        self._sent.append(now)
        self.in_flight += 1
        self.requests += 1
        _REQUEST.set(self.requests)
        if probe:
            self._probe, self._probe_at = self.requests, now

    def _wake(self) -> None:
        """Let waiters look again (a pause or new headers changed the answer)."""
        self._changed.set()
