"""The one way into the store: webhooks, durable timers and reconciliation all ingest events here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from bridge.core.calls import WARNINGS, Call, Outcome, Policy, advance
from bridge.core.clock import Clock
from bridge.core.events import CallEvent
from bridge.core.phones import mask_text
from bridge.store import Ingested, Store

log = logging.getLogger("bridge.ingest")


class Ingest:
    """Run the state machine on an event inside the store's transaction, log its notices, wake the worker."""

    def __init__(self, store: Store, policy: Policy, clock: Clock) -> None:
        """Bind the store, the policy calls follow, and the clock that dates each step."""
        self._store = store
        self._policy = policy
        self._clock = clock
        self._listeners: list[Callable[[], None]] = []

    def on_queued(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever an ingest queued new actions (the outbox worker's wake-up)."""
        self._listeners.append(listener)

    async def __call__(self, keys: Sequence[str], event: CallEvent, *, finish_action: int | None = None) -> Ingested:
        """Store the event unless a key was seen, fold it into its call and queue what it causes.

        `finish_action` is the timer whose firing this event is: it settles in the same transaction.
        """
        now = self._clock()
        policy = self._policy

        def reduce(call: Call | None, event: CallEvent) -> Outcome:
            # The store hands over a call it just parsed and will not use again: no need to copy it.
            return advance(call, event, now, policy)

        ingested = await self._store.ingest(keys, event, reduce, now=now, finish_action=finish_action)
        if ingested.outcome is not None:
            for key, text in ingested.outcome.notices:
                level = logging.WARNING if key in WARNINGS else logging.INFO
                log.log(level, "call %s: %s", event.call_sid, mask_text(text))
            if ingested.outcome.actions:
                for listener in self._listeners:
                    listener()
        return ingested
