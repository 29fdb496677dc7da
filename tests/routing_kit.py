"""The store's part in routing, in memory, for pure tests of the state machine with the router (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.core.actions import Action, MoveCall, PlaceCallback
from bridge.core.calls import Call, Outcome, Policy, step
from bridge.core.events import CallEvent, EventKind
from bridge.core.presence import Agent
from bridge.core.router import Routing, Snapshot, after, rematch
from bridge.core.routing import RoutingPolicy, Waiting

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
TEAM = {"client:alice": 1001, "client:bob": 1002}


class Desk:
    """The store's part, in memory: presence rows, queue rows and call states, one event at a time."""

    def __init__(self, routing: RoutingPolicy, policy: Policy | None = None, team: dict[str, int] = TEAM) -> None:
        """Start with every agent available and idle since T0."""
        self.routing = routing
        self.policy = policy or Policy(agents=team, api="calls", queue_max_wait=routing.max_wait)
        self.agents = {who: Agent(who, number, chosen_at=T0, idle_since=T0) for who, number in team.items()}
        self.waiting: dict[str, Waiting] = {}
        self.calls: dict[str, Call] = {}
        self.actions: list[Action] = []

    def snapshot(self) -> Snapshot:
        """Return what routing sees."""
        return Snapshot(tuple(self.agents.values()), tuple(self.waiting.values()))

    def feed(self, event: CallEvent, now: datetime) -> Outcome:
        """Ingest one event as the store does, routing included; return the call's own outcome."""
        outcome = step(self.calls.get(event.call_sid), event, now, self.policy)
        self._keep(outcome)
        refused = None
        if event.kind == EventKind.QUEUE_LEFT and event.queue_result in ("full", "failed"):
            refused = "overflowed" if event.queue_result == "full" else "no_agent"
        self._carry_out(after(outcome.call, outcome.route, outcome.agents, self.snapshot(), now, self.routing,
                              refused=refused), now)  # fmt: skip
        return outcome

    def free_up(self, now: datetime) -> None:
        """Match the queue again, as the store's sweep does when time frees an agent."""
        self._carry_out(rematch(self.snapshot(), now, self.routing), now)

    def _carry_out(self, routing: Routing, now: datetime) -> None:
        """Write the rows and fold each ROUTED event into its call."""
        self.agents.update(routing.agents)
        for call_sid in routing.gone:
            self.waiting.pop(call_sid, None)
        self.waiting.update(routing.waiting)
        for call_sid, number in routing.moves.items():
            invite = routing.invites.get(call_sid)
            move = MoveCall(call_sid, number, invite.agents, invite.seconds) if invite else MoveCall(call_sid, number)
            self.actions.append(move)
        self.actions += [PlaceCallback(sid, turn, agent) for sid, (turn, agent) in routing.callbacks.items()]
        for call_sid, routed in routing.events.items():
            self._keep(step(self.calls[call_sid], routed, now, self.policy))

    def _keep(self, outcome: Outcome) -> None:
        """Keep the call's new state and its actions."""
        self.calls[outcome.call.sid] = outcome.call
        self.actions += outcome.actions

    def kinds(self, call_sid: str) -> list[str]:
        """Return the kinds of the actions a call caused."""
        return [action.kind.value for action in self.actions if action.call_sid == call_sid]
