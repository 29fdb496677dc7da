"""Wait for a condition with a deadline instead of sleeping a fixed time (the demo and the tests share it)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

POLL_SECONDS = 0.02


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], *, within: float = 30.0, what: str = "the condition"
) -> None:
    """Poll `predicate` (plain or async) until it holds; raise TimeoutError naming `what` after `within` s."""
    try:
        async with asyncio.timeout(within):
            while True:
                held = predicate()
                if inspect.isawaitable(held):
                    held = await held
                if held:
                    return
                await asyncio.sleep(POLL_SECONDS)
    except TimeoutError:
        raise TimeoutError(f"{what} did not hold within {within} s") from None
