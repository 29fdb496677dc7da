"""The mover: moves handed over by the store are sent within its slots; the rest go back to the claims."""

from __future__ import annotations

import asyncio

from bridge.app import open_store
from bridge.core.actions import MoveCall
from bridge.core.clock import system_clock
from bridge.devtools.waiting import wait_until
from bridge.ingest import Ingest
from bridge.ops.settings import Settings
from bridge.twilio.mover import LEASE, Mover

CALLERS = [f"CA{n:032d}" for n in (1, 2)]


class HeldTwilio:
    """Twilio's REST API at the seam: each redirect is noted and answered only when let go."""

    def __init__(self) -> None:
        """Start with nothing sent."""
        self.sent: list[str] = []
        self.go = asyncio.Event()

    async def redirect(self, call_sid: str, url: str) -> None:
        """Note the move, then wait to be let go."""
        self.sent.append(call_sid)
        await self.go.wait()


async def test_handed_over_moves_beyond_the_free_slots_go_back_to_the_claims(database_url: str) -> None:
    """With one slot, the first move is sent and the second is given back, claimable again, not sent twice."""
    settings = Settings(database_url=database_url)
    store = await open_store(settings)
    twilio = HeldTwilio()
    mover = Mover(store, twilio, Ingest(store, settings.policy(), system_clock), "http://bridge", concurrency=1)
    now = system_clock()
    await store.add_actions([MoveCall(sid, 1) for sid in CALLERS], now=now)
    leased = await store.claim(now, 10, LEASE, telephony=True)  # as the deciding transaction leases them
    mover.take(leased)

    async def given_back() -> bool:
        return [row.call_sid for row in await store.claim(system_clock(), 10, LEASE, telephony=True)] == CALLERS[1:]

    await wait_until(given_back, what="the second move given back to the claims")
    assert twilio.sent == CALLERS[:1]
    twilio.go.set()
    await mover.stop()
    await store.close()
