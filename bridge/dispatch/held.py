"""Give back to their line the customers whose agent went away while they were on hold (bridge.core.left_on_hold).

Every few seconds the watch looks at the agents whose softphone is gone and who still have a call; one that left
its customer alone on hold gives the call back to its line. The note is claimed under one key per hold, so of
several instances (or rounds) only one gives it back, and routing then invites the line's agents into the room.
"""

from __future__ import annotations

import logging

from bridge.core import presence
from bridge.core.clock import Clock
from bridge.core.left_on_hold import back_to_line, left_on_hold
from bridge.core.phones import mask
from bridge.dispatch.router import Routes
from bridge.ingest import Ingest
from bridge.ops.repeating import Repeating
from bridge.store import Store

log = logging.getLogger("bridge.dispatch")


class HeldWatch(Repeating):
    """Look for customers left on hold by an agent who went away, and give each back to their line once."""

    def __init__(self, store: Store, ingest: Ingest, routes: Routes, clock: Clock, interval: float = 5.0) -> None:
        """Bind the store, the way into it, the routing settings (presence's timeout, the lines) and the clock."""
        super().__init__("held watch", interval)
        self._store = store
        self._ingest = ingest
        self._routes = routes
        self._clock = clock

    async def round(self) -> float:
        """Give back every customer left on hold now; return the seconds until the next look."""
        await self.give_back()
        return self.interval

    async def give_back(self) -> int:
        """Give back to their line the customers left on hold now; return how many this round gave back."""
        now = self._clock()
        policy = self._routes.policy
        given = 0
        for agent in await self._store.agents():
            if agent.busy_call is None or not presence.softphone_gone(agent, now, policy.presence):
                continue
            call = await self._store.get_call(agent.busy_call)
            began = left_on_hold(call, agent, now, policy.presence) if call is not None else None
            if call is None or began is None:
                continue
            line = policy.line_key(call.route_line)
            key = f"room|line|{call.sid}|left:{began.isoformat()}"  # one per hold, whichever instance sees it first
            ingested = await self._ingest([key], back_to_line(call, line, now))
            if not ingested.duplicate:
                given += 1
                log.warning("call %s from %s: %s went away with the customer on hold; back to the line %s's queue",
                            call.sid, mask(call.from_number), agent.identity, line)  # fmt: skip
        return given
