"""The router bound to the settings and to one moment, as the store's transactions ask it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bridge.core.calls import Outcome
from bridge.core.events import CallEvent, EventKind
from bridge.core.presence import Agent
from bridge.core.router import Routing, Snapshot, after, apply_changes, rematch
from bridge.core.routing import NoAgentReason, RoutingPolicy

# What a queue that would not keep the caller means for where they go (bridge.core.routing.NoAgent).
_REFUSED: dict[str, NoAgentReason] = {"full": "overflowed", "failed": "no_agent"}


@dataclass(frozen=True)
class Routes:
    """Routing's settings: the policy and the agents it may offer calls to, in the order AGENTS names them."""

    policy: RoutingPolicy
    agents: Mapping[str, int]  # identity -> Zendesk user id

    def at(self, now: datetime) -> BoundRouter:
        """Return the router for decisions made at `now`."""
        return BoundRouter(self, now)


@dataclass(frozen=True)
class BoundRouter:
    """Routing's decisions at one moment, over the agents the settings name (the store's `Router`)."""

    routes: Routes
    now: datetime

    def decide(self, outcome: Outcome, event: CallEvent, snapshot: Snapshot) -> Routing:
        """Decide what the call's event calls for: its agents' presence, its routing, and the queue's."""
        refused = _REFUSED.get(event.queue_result or "") if event.kind == EventKind.QUEUE_LEFT else None
        view = self._configured(snapshot)
        policy = self.routes.policy
        return after(outcome.call, outcome.route, outcome.agents, view, self.now, policy, refused=refused)

    def changes(self, outcome: Outcome, snapshot: Snapshot) -> dict[str, Agent]:
        """Return the agents whose presence the outcome of folding a routing decision moves."""
        policy = self.routes.policy.line(outcome.call.route_line)
        return apply_changes(self._configured(snapshot), outcome.call.sid, outcome.agents, self.now, policy)

    def rematch(self, snapshot: Snapshot) -> Routing:
        """Offer the free agents to the callers waiting in the queue."""
        return rematch(self._configured(snapshot), self.now, self.routes.policy)

    def _configured(self, snapshot: Snapshot) -> Snapshot:
        """Return the snapshot's agents as AGENTS names them: in its order, new ones available, removed ones out."""
        rows = {agent.identity: agent for agent in snapshot.agents}
        agents = tuple(
            rows.get(identity) or Agent(identity, zendesk_id, chosen_at=self.now, idle_since=self.now)
            for identity, zendesk_id in self.routes.agents.items()
        )
        return Snapshot(agents, snapshot.waiting)
