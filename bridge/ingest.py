"""The one way into the store: webhooks, durable timers and reconciliation all ingest events here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from bridge.core.calls import WARNINGS, Call, Outcome, Policy, advance
from bridge.core.clock import Clock
from bridge.core.events import CallEvent, EventKind
from bridge.core.phones import mask_text
from bridge.core.router import Routing
from bridge.dispatch.router import Routes
from bridge.store import Ingested, Store

log = logging.getLogger("bridge.ingest")


class Ingest:
    """Run the state machine (and routing) on an event inside the store's transaction, log, wake the workers."""

    def __init__(self, store: Store, policy: Policy, clock: Clock, routes: Routes | None = None) -> None:
        """Bind the store, the policy calls follow, routing's settings, and the clock that dates each step."""
        self._store = store
        self._policy = policy
        self._clock = clock
        self._routes = routes
        self._listeners: list[Callable[[], None]] = []
        self._routed: list[Callable[[Routing], None]] = []
        self._ingested: list[Callable[[CallEvent], None]] = []

    def on_queued(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever an ingest queued new actions (the outbox worker's wake-up)."""
        self._listeners.append(listener)

    def on_routed(self, listener: Callable[[Routing], None]) -> None:
        """Call `listener` with every routing decision an ingest made (the mover sends its moves)."""
        self._routed.append(listener)

    async def current(self, call_sid: str) -> Call | None:
        """Return a call as it now stands (to answer a retried request the same way)."""
        return await self._store.get_call(call_sid)

    async def announce(self, call_sid: str, every: float) -> tuple[int | None, bool, float]:
        """Return a waiting caller's place, whether saying it is due (noted as said), and how long they waited."""
        now = self._clock()
        aging = self._routes.policy.aging if self._routes is not None else 0.0
        place, due, arrived = await self._store.announce(call_sid, every, now, aging)
        return place, due, max(0.0, (now - arrived).total_seconds()) if arrived is not None else 0.0

    def on_ingested(self, listener: Callable[[CallEvent], None]) -> None:
        """Call `listener` with every event an ingest stored (not a duplicate's)."""
        self._ingested.append(listener)

    def queued(self) -> None:
        """Wake the workers: actions were queued outside an ingest (a caller's look-up at the arrival)."""
        for listener in self._listeners:
            listener()

    async def wrap_up_ended(self, call_sid: str, seconds: int) -> None:
        """Tell a call that its agent ended their wrap-up after it early, `seconds` into it (once)."""
        event = CallEvent(kind=EventKind.WRAP_UP_ENDED, call_sid=call_sid, at=self._clock(), duration=seconds)
        await self([f"wrap_up_ended:{call_sid}"], event)

    async def __call__(self, keys: Sequence[str], event: CallEvent, *, finish_action: int | None = None) -> Ingested:
        """Store the event unless a key was seen, fold it into its call and queue what it causes.

        `finish_action` is the timer whose firing this event is: it settles in the same transaction.
        """
        now = self._clock()
        policy = self._policy

        def reduce(call: Call | None, event: CallEvent) -> Outcome:
            # The store hands over a call it just parsed and will not use again: no need to copy it.
            return advance(call, event, now, policy)

        router = self._routes.at(now) if self._routes is not None else None
        ingested = await self._store.ingest(keys, event, reduce, now=now, finish_action=finish_action, router=router)
        if ingested.outcome is not None:
            for key, text in ingested.outcome.notices:
                level = logging.WARNING if key in WARNINGS else logging.INFO
                log.log(level, "call %s: %s", event.call_sid, mask_text(text))
            if ingested.outcome.actions:
                for listener in self._listeners:
                    listener()
        if not ingested.duplicate:
            for heard in self._ingested:
                heard(event)
        if ingested.routing is not None and (ingested.routing.moves or ingested.routing.callbacks):
            for routed in self._routed:
                routed(ingested.routing)
        return ingested
