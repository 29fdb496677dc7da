"""The limiter's budget: a sliding 60 s window, a reserve for pops, Zendesk's own headers, and 429 pauses."""

from __future__ import annotations

import asyncio

from multidict import CIMultiDict

from bridge.zendesk.limiter import Limiter, RateInfo, rate_info


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


async def test_every_request_counts_even_several_on_one_token() -> None:
    """An action that needs three requests on one token has all three in the window once they end."""
    clock = Steady()
    limiter = Limiter(4, reserve=0.0, clock=clock)
    await limiter.acquire(urgent=True)  # a caller look-up: search, external_id look-up, create
    for _ in range(3):
        limiter.answered()
    assert limiter.delay(urgent=True) == 0
    await limiter.acquire(urgent=True)
    limiter.answered()  # its one request: balanced, nothing more to charge
    assert limiter.delay(urgent=True) == 60.0
