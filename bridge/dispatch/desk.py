"""Presence changed from outside calls (the softphone, the command line), and the queue's sweep.

A status change is one transaction with the routing lock: the agent's row changes and the queue is matched
again at once, so the longest-waiting caller is moved to an agent the moment they choose `available`. What
only time changes (a wrap-up ends, an offer's hold runs out with no word) is picked up by the sweep, which
wakes at the next such moment, and at least every `tick` seconds for what another instance changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bridge.core import presence
from bridge.core.clock import Clock, system_clock
from bridge.core.presence import Agent, Chosen
from bridge.core.router import Routing
from bridge.core.routing import Waiting
from bridge.dispatch.router import Routes
from bridge.store import Store

log = logging.getLogger("bridge.dispatch")


class UnknownAgent(LookupError):
    """No agent in AGENTS has that identity or Zendesk user id."""


class Desk:
    """Change agents' presence and keep the queue matched against the free agents."""

    def __init__(self, store: Store, routes: Routes, clock: Clock = system_clock, *, tick: float = 1.0) -> None:
        """Bind the store and the routing settings; nothing runs until `start`."""
        self._store = store
        self.routes = routes
        self._clock = clock
        self._tick = tick
        self._listeners: list[Callable[[Routing], None]] = []
        self._wrap_ups: list[Callable[[str, int], Awaitable[object]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def on_routed(self, listener: Callable[[Routing], None]) -> None:
        """Call `listener` with every routing decision a presence change or the sweep made (its moves to send)."""
        self._listeners.append(listener)

    def identity(self, who: str) -> str:
        """Return the identity an agent is named by: their identity, or their Zendesk user id."""
        if who in self.routes.agents:
            return who
        matches = [
            identity for identity, user_id in self.routes.agents.items() if who.isdigit() and int(who) == user_id
        ]
        if not matches:
            raise UnknownAgent(
                f"{who!r} is not in AGENTS (name an identity such as client:alice, or a Zendesk user id)"
            )
        return matches[0]

    async def agents(self) -> list[Agent]:
        """Return every configured agent's presence, in the order AGENTS names them."""
        rows = {agent.identity: agent for agent in await self._store.agents()}
        now = self._clock()
        return [
            rows.get(identity) or Agent(identity, zendesk_id, chosen_at=now, idle_since=now)
            for identity, zendesk_id in self.routes.agents.items()
        ]

    async def agent(self, identity: str) -> Agent:
        """Return one configured agent's presence."""
        wanted = self.identity(identity)
        return next(agent for agent in await self.agents() if agent.identity == wanted)

    async def waiting(self) -> list[Waiting]:
        """Return the callers waiting in the queue."""
        return await self._store.waiting()

    async def choose(self, who: str, chosen: Chosen, by: str) -> Agent:
        """Set an agent's chosen status (by the agent, a supervisor, the command line), and match the queue."""
        if chosen not in presence.CHOSEN:
            raise ValueError(f"{chosen!r} is not a status: use one of {', '.join(presence.CHOSEN)}")
        agent = await self._change(who, lambda agent, now: presence.choose(agent, chosen, now, by))
        log.info("agent %s is %s (set by %s)", agent.identity, chosen, by)
        return agent

    async def seen(self, who: str) -> Agent:
        """Record a sign of life from the agent's softphone; write only when it matters (coming back, or due)."""
        agent = await self.agent(who)
        now = self._clock()
        fresh = timedelta(seconds=self.routes.policy.presence.presence_timeout / 3)
        if agent.seen_at is not None and not agent.left and now - agent.seen_at < fresh:
            return agent
        return await self._change(who, lambda agent, now: presence.seen(agent, now, self.routes.policy.presence))

    async def goodbye(self, who: str) -> Agent:
        """Record that the agent's softphone closed: offline at once."""
        return await self._change(who, lambda agent, now: presence.went_away(agent, now))

    async def zendesk_said(self, who: str, status: Chosen | None) -> Agent:
        """Record the agent's availability in Zendesk (None: unknown), writing only when it changed."""
        agent = await self.agent(who)
        if agent.zendesk == status:
            return agent
        changed = await self._change(who, lambda agent, now: presence.zendesk_said(agent, status, now))
        if status is None:
            log.info("agent %s: Zendesk's availability is not known now; the bridge's presence alone counts", who)
        else:
            log.info("agent %s is %s in Zendesk", changed.identity, status)
        return changed

    async def end_wrap_up(self, who: str) -> Agent:
        """End the agent's wrap-up early: they are ready for the next call; its call learns how long it lasted."""
        before = await self.agent(who)
        agent = await self._change(who, lambda agent, now: presence.end_wrap_up(agent, now))
        now = self._clock()
        if presence.busy_now(before, now) == "wrap_up" and before.busy_call and before.busy_since is not None:
            seconds = max(0, round((now - before.busy_since).total_seconds()))
            for listener in self._wrap_ups:
                await listener(before.busy_call, seconds)
        return agent

    def on_wrap_up_ended(self, listener: Callable[[str, int], Awaitable[object]]) -> None:
        """Call `listener` with the call and the seconds of a wrap-up the agent ended early (its record says so)."""
        self._wrap_ups.append(listener)

    async def sweep(self) -> Routing:
        """Match the queue against the free agents now; tell the listeners what it decided."""
        routing = await self._store.rematch(self.routes.at(self._clock()))
        self._tell(routing)
        return routing

    def wake(self) -> None:
        """Sweep now (something that frees agents happened elsewhere)."""
        self._wake.set()

    def start(self) -> None:
        """Start the sweep as a tracked task."""
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="queue-sweep")

    async def stop(self) -> None:
        """Stop the sweep."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _change(self, who: str, change: Callable[[Agent, datetime], Agent]) -> Agent:
        """Change one agent's row and match the queue, in one transaction."""
        identity = self.identity(who)
        now = self._clock()
        changed = await self._store.change_agent(identity, lambda agent: change(agent, now), self.routes.at(now))
        if changed is None:
            # No row yet: AGENTS names them since the rows were made (another instance's settings). Make it, once;
            # the common case is one transaction, so an agent freeing up reaches the queue without a second commit.
            await self._store.add_agents({identity: self.routes.agents[identity]}, now)
            changed = await self._store.change_agent(identity, lambda agent: change(agent, now), self.routes.at(now))
        if changed is None:  # pragma: no cover - add_agents made the row just now
            raise UnknownAgent(identity)
        agent, routing = changed
        self._tell(routing)
        return agent

    def _tell(self, routing: Routing) -> None:
        """Hand a decision to the listeners (the mover sends its moves)."""
        if routing.moves or routing.callbacks:
            for listener in self._listeners:
                listener(routing)

    async def _run(self) -> None:
        """Sweep at the next moment time frees an agent, and at least every tick."""
        while not self._stopping:
            self._wake.clear()
            try:
                await self.sweep()
                timeout = await self._next_sweep()
            except Exception:
                log.exception("queue sweep failed; trying again shortly")
                timeout = self._tick
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _next_sweep(self) -> float:
        """Return how long until the next hold or wrap-up runs out (at most a tick)."""
        now = self._clock()
        ends = [
            agent.busy_until
            for agent in await self._store.agents()
            if agent.busy in ("ringing", "wrap_up") and agent.busy_until is not None and agent.busy_until > now
        ]
        if not ends:
            return self._tick
        return max(0.01, min(self._tick, (min(ends) - now).total_seconds()))
