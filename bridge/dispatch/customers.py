"""Routing that knows the customer at run time: the caller's look-up at the arrival, and the wait said in the queue.

At `/incoming` the look-up is queued at urgent priority (the outbox's `LookUpCustomer`, after the caller's
`FindCaller`) and the arrival waits for its answer at most LOOKUP_BUDGET_MS. The answer reaches the call as
its own event (CUSTOMER_FOUND), ingested by whichever instance's worker delivered it: this instance hears of
it at once, another's is read from the store. When the budget runs out first, the call starts with what the
last look-up of this number found (kept beside the caller's user), and the fresh answer applies from the
next offer on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from pydantic import ValidationError

from bridge.core import estimate
from bridge.core.actions import FindCaller, LookUpCustomer, caller_key
from bridge.core.clock import Clock
from bridge.core.events import CallEvent, EventKind
from bridge.core.preference import Customer
from bridge.dispatch.router import Routes
from bridge.ingest import Ingest
from bridge.store import Store

log = logging.getLogger("bridge.routing")
POLL = 0.05  # how often an arrival waiting for its caller's data reads it (another instance's worker)
LAST_KNOWN = "customer"  # where the caller look-up's stored result keeps what the last look-up of the number found


@dataclass(frozen=True)
class Arrival:
    """What an arriving call knows of its caller when routing decides: fresh, or the last look-up's."""

    fresh: bool  # the look-up answered within the budget (the call holds its answer)
    known: Customer | None = None  # otherwise: what the number's last look-up found, if any


class Customers:
    """The caller's look-up at the arrival, bounded by LOOKUP_BUDGET_MS, and the wait a queued caller can expect."""

    def __init__(self, store: Store, ingest: Ingest, routes: Routes, clock: Clock, budget: float) -> None:
        """Bind the store, the ingest whose events say a look-up answered, routing's settings and the budget (s)."""
        self._store = store
        self._ingest = ingest
        self._routes = routes
        self._clock = clock
        self._budget = budget
        self._found: dict[str, asyncio.Event] = {}  # calls whose arrival waits for their caller's data
        ingest.on_ingested(self._heard)

    def wanted(self, *lines: str | None) -> bool:
        """Tell whether routing on any of these lines uses the caller's Zendesk data (so the arrival looks them up)."""
        return any(self._routes.policy.line(line).knows_customers for line in lines)

    async def arrive(self, call_sid: str, phone: str, *, wait: bool = True) -> Arrival:
        """Start the caller's look-up at urgent priority and wait for it, at most the look-up budget.

        Either way the look-up goes on: what comes later reaches the call as its own event and applies from
        the next offer on. Without `wait` (a menu plays first, and the look-up runs meanwhile) the arrival
        carries what the number's last look-up found, should the fresh one still be out when routing decides.
        """
        waiter = self._found.setdefault(call_sid, asyncio.Event())
        try:
            await self._store.add_actions([FindCaller(call_sid, phone), LookUpCustomer(call_sid, phone)],
                                          now=self._clock())  # fmt: skip
            self._ingest.queued()
            if wait and self._budget > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._until_found(call_sid, waiter), self._budget)
            if waiter.is_set():
                return Arrival(fresh=True)
            return Arrival(fresh=False, known=await self._last_known(phone))
        finally:
            self._found.pop(call_sid, None)

    async def expected_wait(self, place: int, line: str | None) -> str | None:
        """Return the wait a caller at `place` in a line can expect, as people say it (None: not said)."""
        policy = self._routes.policy
        key, serves = policy.line_key(line), policy.serves
        agents = [agent for agent in await self._store.agents() if agent.identity in self._routes.agents
                  and (serves is None or key in serves.get(agent.identity, frozenset()))]  # fmt: skip
        return estimate.announced(estimate.for_line(place, agents, self._clock(), policy.presence))

    def _heard(self, event: CallEvent) -> None:
        """Wake the arrival waiting for this call's data, when the event brings it."""
        if event.kind == EventKind.CUSTOMER_FOUND and event.call_sid in self._found:
            self._found[event.call_sid].set()

    async def _until_found(self, call_sid: str, waiter: asyncio.Event) -> None:
        """Wait for the call's data: told at once by this instance's worker, or read from the store (another's)."""
        while not waiter.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), POLL)
            call = await self._store.get_call(call_sid)
            if call is not None and call.customer is not None:
                waiter.set()

    async def _last_known(self, phone: str) -> Customer | None:
        """Return what the last look-up of this number found, kept with the caller's user (None: nothing yet)."""
        row = (await self._store.results([caller_key(phone)])).get(caller_key(phone))
        raw = row.result.get(LAST_KNOWN) if row is not None and row.result else None
        if raw is None:
            return None
        try:
            return Customer.model_validate(raw)
        except ValidationError:
            log.warning("the last look-up of a caller is unreadable; routing without it")
            return None
