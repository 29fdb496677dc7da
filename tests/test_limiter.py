"""The limiter's budget: a sliding 60 s window, a reserve for pops, Zendesk's own headers, and 429 pauses."""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import random

from multidict import CIMultiDict

from bridge.zendesk.limiter import PROBE_PATIENCE, Limiter, RateInfo, rate_info
from tests.conftest import eventually


class Steady:
    """A monotonic count the test moves by hand."""

    def __init__(self) -> None:
        """Start at zero."""
        self.now = 0.0

    def __call__(self) -> float:
        """Return the count."""
        return self.now


async def test_a_burst_goes_at_once_while_budget_remains() -> None:
    """Ten requests of an idle minute go without waiting; the window then refuses until the first ages out."""
    clock = Steady()
    limiter = Limiter(10, reserve=0.0, clock=clock)
    for _ in range(10):
        assert limiter.delay(urgent=False) == 0
        await limiter.acquire()
    assert limiter.delay(urgent=True) == 60.0
    clock.now = 30.0
    assert limiter.delay(urgent=True) == 30.0
    clock.now = 60.0
    assert limiter.delay(urgent=False) == 0


async def test_background_work_leaves_the_reserve_to_pops() -> None:
    """Background requests stop at limit minus reserve; urgent ones may still spend the reserve."""
    clock = Steady()
    limiter = Limiter(8, reserve=0.25, clock=clock)
    limiter.urgent_seen()  # a call is ringing: the reserve is held back
    assert limiter.reserve == 2
    for _ in range(6):
        await limiter.acquire(urgent=False)
    assert limiter.delay(urgent=False) > 0
    assert limiter.delay(urgent=True) == 0
    await limiter.acquire(urgent=True)
    await limiter.acquire(urgent=True)
    assert limiter.delay(urgent=True) > 0


async def test_zendesk_headers_bound_the_budget_other_apps_share() -> None:
    """X-Rate-Limit-Remaining counts every app on the account: with 2 left, background work waits for the reset."""
    clock = Steady()
    limiter = Limiter(400, clock=clock)
    limiter.urgent_seen()  # a call is ringing: the reserve is held back
    limiter.observe(RateInfo(limit=700, remaining=2, reset=41.0))
    assert limiter.delay(urgent=False) == 41.0  # the 2 left are within the reserve
    assert limiter.delay(urgent=True) == 0
    await limiter.acquire(urgent=True)
    await limiter.acquire(urgent=True)
    assert limiter.delay(urgent=True) == 41.0
    clock.now = 41.0
    assert limiter.delay(urgent=False) == 0  # a new minute: Zendesk's count reset


async def test_the_reserve_scales_with_the_accounts_own_limit() -> None:
    """A small plan's last quarter of X-Rate-Limit stays for pops, whatever ZENDESK_RATE_LIMIT says."""
    clock = Steady()
    limiter = Limiter(400, clock=clock)
    limiter.urgent_seen()  # a call is ringing: the reserve is held back
    limiter.observe(RateInfo(limit=8, remaining=3, reset=None))
    assert limiter.delay(urgent=False) == 0
    await limiter.acquire(urgent=False)
    assert limiter.delay(urgent=False) == 60.0  # 2 left = a quarter of 8; no reset header: a minute
    assert limiter.delay(urgent=True) == 0


async def test_a_429_pauses_every_request_until_retry_after() -> None:
    """A pause holds urgent and background requests alike, and wakes waiters when it ends."""
    clock = Steady()
    limiter = Limiter(400, clock=clock, tick=0.01)
    limiter.pause(7.0)
    assert limiter.paused_for() == 7.0
    assert limiter.delay(urgent=True) == 7.0
    waiter = asyncio.create_task(limiter.acquire(urgent=True))
    await asyncio.sleep(0)
    assert not waiter.done()
    clock.now = 7.0
    await asyncio.wait_for(waiter, 5)
    assert limiter.paused_for() == 0


def test_rate_headers_parse_as_zendesk_sends_them() -> None:
    """The account-wide headers of a Zendesk answer (Zendesk docs, "Best practices for avoiding rate limiting")."""
    headers = CIMultiDict({"x-rate-limit": "700", "x-rate-limit-remaining": "699", "ratelimit-reset": "41"})
    assert rate_info(headers) == RateInfo(700, 699, 41.0)
    assert rate_info(CIMultiDict({"ratelimit-limit": "700", "ratelimit-remaining": "x"})) == RateInfo(700, None, None)
    assert rate_info({}) == RateInfo(None, None, None)


async def test_background_borrows_the_reserve_only_while_urgent_work_is_quiet() -> None:
    """With no pop for `quiet` seconds the backlog may spend all but the floor; a pop takes the reserve back."""
    clock = Steady()
    limiter = Limiter(20, reserve=0.25, floor=2, quiet=30.0, clock=clock)
    for _ in range(18):  # nothing urgent yet: 15 of its own, then 3 of the reserve's 5
        assert limiter.delay(urgent=False) == 0
        await limiter.acquire(urgent=False)
    assert limiter.delay(urgent=False) > 0  # the floor stays
    clock.now = 50.0
    await limiter.acquire(urgent=True)  # a pop: the floor is there for it
    assert not limiter.borrowing()
    clock.now = 60.0  # the backlog's 18 slid out, but a pop went within `quiet`: the reserve is held again
    for _ in range(14):  # 15 with the pop
        await limiter.acquire(urgent=False)
    assert limiter.delay(urgent=False) > 0
    assert limiter.delay(urgent=True) == 0
    clock.now = 80.0  # quiet for 30 s: background may borrow again
    assert limiter.borrowing()
    assert limiter.delay(urgent=False) == 0


async def test_a_pop_arriving_while_background_borrowed_still_goes_first() -> None:
    """A pop finds the floor at once; in a full window the first slot that frees is the pop's, not the backlog's."""
    clock = Steady()
    limiter = Limiter(10, reserve=0.5, floor=1, quiet=30.0, clock=clock, tick=0.01)
    for second in range(9):  # the backlog borrowed 4 of the reserve's 5, one a second
        clock.now = float(second)
        await limiter.acquire(urgent=False)
    backlog = asyncio.create_task(limiter.acquire(urgent=False))
    await asyncio.sleep(0)
    assert not backlog.done()
    first_pop = asyncio.create_task(limiter.acquire(urgent=True))
    await asyncio.wait_for(first_pop, 5)  # the floor, at once
    second_pop = asyncio.create_task(limiter.acquire(urgent=True))
    await asyncio.sleep(0)
    assert not second_pop.done()  # 10 in the window: the limit
    clock.now = 60.0  # the first request ages out: one slot frees
    await eventually(lambda: second_pop.done())
    assert not backlog.done()  # the slot went to the pop, and the reserve is held back again
    assert limiter.delay(urgent=False) > 0
    backlog.cancel()


async def test_no_60_s_window_ever_holds_more_than_the_limit() -> None:
    """Random urgent and background requests, headers and pauses: every 60 s window stays within the limit."""
    rng = random.Random(14)
    for limit, floor in ((7, 1), (40, 5), (400, 9)):
        clock = Steady()
        limiter = Limiter(limit, reserve=0.25, floor=floor, quiet=rng.choice([0.0, 5.0, 30.0]), clock=clock)
        sent: list[float] = []
        for _ in range(limit * 6):
            urgent = rng.random() < 0.3
            if rng.random() < 0.05:
                limiter.observe(RateInfo(limit=limit * 2, remaining=rng.randrange(limit * 2), reset=rng.uniform(0, 60)))
            if rng.random() < 0.01:
                limiter.pause(rng.uniform(0, 10))
            while (wait := limiter.delay(urgent)) > 0:
                clock.now += wait
            await limiter.acquire(urgent)
            sent.append(clock.now)
            limiter.answered()
            clock.now += rng.expovariate(limit / 30)
        assert limiter.requests == len(sent)
        assert max(bisect.bisect_right(sent, at + 60 - 1e-9) - i for i, at in enumerate(sent)) <= limit


async def test_headers_count_the_requests_sent_after_the_answered_one() -> None:
    """An answer's remaining count may miss the requests sent after it: they are charged against it."""
    clock = Steady()
    limiter = Limiter(400, reserve=0.0, clock=clock)
    requests = [contextvars.copy_context() for _ in range(5)]  # each request runs in its delivery's task
    for context in requests:
        await asyncio.create_task(limiter.acquire(urgent=True), context=context)
    requests[0].run(limiter.observe, RateInfo(limit=700, remaining=4, reset=10.0))
    requests[0].run(limiter.answered)
    assert limiter.delay(urgent=True) == 10.0  # the 4 sent after the first may take the 4 left
    requests[4].run(limiter.observe, RateInfo(limit=700, remaining=3, reset=10.0))  # the last one's answer
    assert limiter.delay(urgent=True) == 0
    requests[1].run(limiter.observe, RateInfo(limit=700, remaining=0, reset=10.0))  # older: already counted
    assert limiter.delay(urgent=True) == 0


async def test_once_a_low_count_resets_one_request_finds_out_what_is_left() -> None:
    """Past the reset, with the last count low, requests go one at a time until an answer gives the new count."""
    clock = Steady()
    limiter = Limiter(400, reserve=0.0, clock=clock, tick=0.01)
    first = contextvars.copy_context()
    await asyncio.create_task(limiter.acquire(urgent=True), context=first)
    first.run(limiter.observe, RateInfo(limit=700, remaining=0, reset=2.0))
    first.run(limiter.answered)
    assert limiter.delay(urgent=True) == 2.0
    clock.now = 2.0
    probe = contextvars.copy_context()
    await asyncio.create_task(limiter.acquire(urgent=True), context=probe)
    assert limiter.delay(urgent=True) > 0  # a rolling window may have freed only one: wait for the answer
    probe.run(limiter.observe, RateInfo(limit=700, remaining=40, reset=1.0))
    probe.run(limiter.answered)
    assert limiter.delay(urgent=True) == 0


async def test_a_probe_that_never_reports_back_is_given_up_on() -> None:
    """A probe whose task was cancelled never answers: after PROBE_PATIENCE another request may find out."""
    clock = Steady()
    limiter = Limiter(400, reserve=0.0, clock=clock, tick=0.01)
    first = contextvars.copy_context()
    await asyncio.create_task(limiter.acquire(urgent=True), context=first)
    first.run(limiter.observe, RateInfo(limit=700, remaining=0, reset=2.0))
    first.run(limiter.answered)
    clock.now = 2.0
    await asyncio.create_task(limiter.acquire(urgent=True), context=contextvars.copy_context())  # then cancelled
    assert limiter.delay(urgent=True) > 0
    clock.now = 2.0 + PROBE_PATIENCE
    assert limiter.delay(urgent=True) == 0
