"""The one way into the store: webhooks, durable timers and reconciliation all ingest events here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from bridge.core import estimate
from bridge.core.actions import FindCaller, LookUpCustomer
from bridge.core.calls import WARNINGS, Call, Outcome, Policy, advance
from bridge.core.clock import Clock
from bridge.core.events import CallEvent, EventKind
from bridge.core.phones import mask_text
from bridge.core.router import Routing
from bridge.dispatch.router import Routes
from bridge.store import Ingested, Store

log = logging.getLogger("bridge.ingest")
_LOOKUP_POLL = 0.05  # how often an arrival waiting for its caller's data reads it (another instance's worker)


class Ingest:
    """Run the state machine (and routing) on an event inside the store's transaction, log, wake the workers."""

    def __init__(
        self, store: Store, policy: Policy, clock: Clock, routes: Routes | None = None, *, lookup_budget: float = 0.3
    ) -> None:
        """Bind the store, the policy calls follow, routing's settings, and the clock that dates each step.

        `lookup_budget` (LOOKUP_BUDGET_MS, in seconds) is how long an arriving call waits for the caller's data.
        """
        self._store = store
        self._policy = policy
        self._clock = clock
        self._routes = routes
        self._listeners: list[Callable[[], None]] = []
        self._routed: list[Callable[[Routing], None]] = []
        self._lookup_budget = lookup_budget
        self._found: dict[str, asyncio.Event] = {}  # calls whose arrival waits for their caller's data

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
        place, due, arrived = await self._store.announce(call_sid, every, now)
        return place, due, max(0.0, (now - arrived).total_seconds()) if arrived is not None else 0.0

    async def expected_wait(self, place: int, line: str | None) -> str | None:
        """Return the wait a caller at `place` in a line can expect, as people say it (None: no estimate yet)."""
        if self._routes is None:
            return None
        policy = self._routes.policy
        key, serves = policy.line_key(line), policy.serves
        agents = [agent for agent in await self._store.agents() if agent.identity in self._routes.agents
                  and (serves is None or key in serves.get(agent.identity, frozenset()))]  # fmt: skip
        return estimate.announced(estimate.for_line(place, agents, self._clock(), policy.presence))

    def wants_customer(self, line: str | None) -> bool:
        """Tell whether routing on this line uses the caller's Zendesk data (so their arrival looks them up)."""
        return self._routes is not None and self._routes.policy.line(line).knows_customers

    async def look_up(self, call_sid: str, phone: str) -> bool:
        """Start the caller's look-up at urgent priority and wait for it, at most the look-up budget.

        Return whether the data is in. Either way the look-up goes on: what comes later reaches the call as
        its own event (CUSTOMER_FOUND) and applies from the next offer on.
        """
        waiter = self._found.setdefault(call_sid, asyncio.Event())
        try:
            await self._store.add_actions([FindCaller(call_sid, phone), LookUpCustomer(call_sid, phone)],
                                          now=self._clock())  # fmt: skip
            for listener in self._listeners:
                listener()
            if self._lookup_budget <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._until_found(call_sid, waiter), self._lookup_budget)
            return waiter.is_set()
        finally:
            self._found.pop(call_sid, None)

    async def _until_found(self, call_sid: str, waiter: asyncio.Event) -> None:
        """Wait for the call's data: told at once by this instance's worker, or read from the store (another's)."""
        while not waiter.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), _LOOKUP_POLL)
            call = await self._store.get_call(call_sid)
            if call is not None and call.customer is not None:
                waiter.set()

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
        if event.kind == EventKind.CUSTOMER_FOUND and event.call_sid in self._found:
            self._found[event.call_sid].set()
        if ingested.routing is not None and ingested.routing.moves:
            for routed in self._routed:
                routed(ingested.routing)
        return ingested
