"""The wait to expect, measured: a generated day of calls replayed through the bridge's estimator (bench/wait.py)."""

from __future__ import annotations

from bench import wait


def test_the_estimate_is_within_a_quarter_of_the_real_wait_on_the_replayed_day() -> None:
    """Seeded day: most waiting callers who hear an estimate wait within 25 % of it, so the bridge says it."""
    day = wait.measure(wait.SEED)
    assert day["calls"] > 500
    assert day["compared"] > 100
    assert day["median_error_pct"] <= 25.0
    assert day["announce"]
    assert 0 < day["heard_share_pct"] < 100  # short waits are not announced


def test_the_replayed_day_is_the_same_every_time() -> None:
    """The seed fixes the day: arrivals, handle times and patience."""
    assert wait.measure(wait.SEED) == wait.measure(wait.SEED)
    assert wait.generate(1) != wait.generate(2)
