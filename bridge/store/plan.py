"""The one ingest algorithm, written once as a sequence of steps that the store carries out.

The store drives `ingest_plan` inside one transaction: it sends back each step's result and runs each
step with its statements (`bridge.store.sql.carry_out`, the same for SQLite and PostgreSQL). The
algorithm (dedupe, then event, state and orders together) lives here only.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.core.actions import Action
from bridge.core.calls import Call, Outcome
from bridge.core.events import CallEvent
from bridge.core.router import Routing, Snapshot
from bridge.store import Ingested, Reducer, Router


@dataclass(frozen=True)
class MarkSeen:
    """Remember a dedupe key; the result is True when it was new."""

    key: str


@dataclass(frozen=True)
class SaveEvent:
    """Append the event to the call's history."""

    event: CallEvent


@dataclass(frozen=True)
class LoadCall:
    """Read the call's state; the result is a Call or None."""

    call_sid: str


@dataclass(frozen=True)
class SaveCall:
    """Write the call's new state."""

    call: Call


@dataclass(frozen=True)
class QueueActions:
    """Queue actions; one whose key is already queued is left as it is."""

    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Revive:
    """Make these actions pending again if they are dead or dropped."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class Cancel:
    """Drop these actions if they are still pending: what they waited for is over."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class SettleDone:
    """Settle the action (a fired timer) whose event this is, as done."""

    action_id: int


@dataclass(frozen=True)
class LoadRouting:
    """Take the routing lock and read every agent's presence and the queue; the result is a Snapshot."""


@dataclass(frozen=True)
class SaveRouting:
    """Write what routing decided: agents' presence, the queue's rows, the moves of queued callers."""

    routing: Routing


Step = (
    MarkSeen | SaveEvent | LoadCall | SaveCall | QueueActions | Revive | Cancel | SettleDone | LoadRouting | SaveRouting
)
Plan = Generator[Step, Any, Ingested]


def ingest_plan(
    keys: Sequence[str], event: CallEvent, reduce: Reducer, finish_action: int | None, router: Router | None = None
) -> Plan:
    """Yield the steps of storing one event; return what storing it did.

    When the call asks something of routing, or its agents' part in it changed, routing decides in the same
    transaction under its lock, and its decision for the call (a ROUTED event) is folded in before the call
    is saved, so the state, the agents, the queue and the actions the event causes commit together.
    """
    for key in keys:
        if not (yield MarkSeen(key)):
            if finish_action is not None:
                yield SettleDone(finish_action)
            return Ingested(duplicate=True, outcome=None)
    yield SaveEvent(event)
    state: Call | None = yield LoadCall(event.call_sid)
    outcome = reduce(state, event)
    routing = None
    if router is not None and (outcome.route is not None or outcome.agents):
        snapshot: Snapshot = yield LoadRouting()
        routing = router.decide(outcome, event, snapshot)
        for routed in list(routing.events.values()):
            yield SaveEvent(routed)
            later = reduce(outcome.call, routed)
            routing.agents.update(router.changes(later, routing.merged(snapshot)))
            outcome = _combined(outcome, later)
        yield SaveRouting(routing)
    yield SaveCall(outcome.call)
    if outcome.actions:
        yield QueueActions(tuple(outcome.actions))
    if outcome.revive:
        yield Revive(tuple(outcome.revive))
    if outcome.cancel:
        yield Cancel(tuple(outcome.cancel))
    if finish_action is not None:
        yield SettleDone(finish_action)
    return Ingested(duplicate=False, outcome=outcome, routing=routing)


def _combined(first: Outcome, later: Outcome) -> Outcome:
    """Return two consecutive steps of one call as one outcome: the later state, everything either caused."""
    return Outcome(
        later.call,
        [*first.actions, *later.actions],
        [*first.notices, *later.notices],
        [*first.revive, *later.revive],
        [*first.cancel, *later.cancel],
        first.route,
        [*first.agents, *later.agents],
    )
