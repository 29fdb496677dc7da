"""What every loop that claims actions does alike: hand a claim back when cancelled, drain its tasks on stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from typing import Any

from bridge.store import Store


@contextlib.asynccontextmanager
async def released_if_cancelled(store: Store, action_id: int) -> AsyncIterator[None]:
    """Hand the claim back at once when the work inside is cancelled (the loop is stopping).

    Another instance, or this one restarted, then retries at once rather than when the claim's lease runs
    out; the attempt was already counted.
    """
    try:
        yield
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await asyncio.shield(store.release(action_id))
        raise


async def drain(inflight: Collection[asyncio.Task[Any]], grace: float) -> None:
    """Let the tasks in flight finish for up to `grace` seconds, then cancel the rest and wait for them."""
    if not inflight:
        return
    _, pending = await asyncio.wait(inflight, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
