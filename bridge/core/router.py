"""The router, pure: turn what a call asks of routing into decisions, against a snapshot of agents and the queue.

The store loads the snapshot (every agent's presence, every caller waiting in the queue) under its routing lock,
hands it here with the call, and carries the result out in the same transaction: a ROUTED event for each call a
decision concerns (folded into that call by the state machine), the agents it holds for offers, and the queue's
rows to write or delete. So two instances never offer one agent two calls, and every decision sees every other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bridge.core import presence
from bridge.core.calls import AgentChange, Call, RouteRequest
from bridge.core.events import CallEvent, EventKind
from bridge.core.presence import Agent
from bridge.core.routing import (
    Missed,
    NoAgent,
    NoAgentReason,
    Offer,
    RoutingPolicy,
    Waiting,
    match,
    place,
    positions,
)


@dataclass(frozen=True)
class Snapshot:
    """What routing sees: every agent (in their configured order) and every caller waiting in the queue."""

    agents: tuple[Agent, ...]
    waiting: tuple[Waiting, ...]

    def agent(self, identity: str) -> Agent | None:
        """Return an agent by identity."""
        return next((agent for agent in self.agents if agent.identity == identity), None)


@dataclass
class Routing:
    """What routing decided: ROUTED events by call, agents held for offers, queue rows to write or delete."""

    events: dict[str, CallEvent] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    waiting: dict[str, Waiting] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)

    def absorb(self, later: Routing) -> None:
        """Add the decisions of a later pass (made on the snapshot as this one left it)."""
        self.events.update(later.events)
        self.agents.update(later.agents)
        for call_sid in later.gone:
            self.waiting.pop(call_sid, None)
        self.gone = (self.gone | later.gone) - set(later.waiting)
        self.waiting.update(later.waiting)

    def merged(self, snapshot: Snapshot) -> Snapshot:
        """Return the snapshot as it stands once these decisions are carried out."""
        agents = tuple(self.agents.get(agent.identity, agent) for agent in snapshot.agents)
        rows = {row.call_sid: row for row in snapshot.waiting if row.call_sid not in self.gone}
        rows.update(self.waiting)
        return Snapshot(agents, tuple(rows.values()))


def after(
    call: Call,
    request: RouteRequest | None,
    changes: Sequence[AgentChange],
    snapshot: Snapshot,
    now: datetime,
    policy: RoutingPolicy,
    *,
    refused: NoAgentReason | None = None,
) -> Routing:
    """Decide everything one event of a call calls for: its agents' presence, its routing, and the queue's.

    Routing the call matches every waiting caller at once (older ones first); a call that asks nothing but
    freed an agent has the queue matched again, so the longest-waiting caller is offered to them at once.
    """
    result = Routing(agents=apply_changes(snapshot, call.sid, changes, now, policy))
    if request is not None:
        result.absorb(route(call, request, result.merged(snapshot), now, policy, refused=refused))
    if frees(changes) and request != "offer":  # routing an offer matched every waiting caller already
        result.absorb(rematch(result.merged(snapshot), now, policy))
    return result


def route(
    call: Call,
    request: RouteRequest,
    snapshot: Snapshot,
    now: datetime,
    policy: RoutingPolicy,
    *,
    refused: NoAgentReason | None = None,
) -> Routing:
    """Decide for a call that asks routing something; older queued callers may get offers in the same pass.

    `refused` says the queue would not keep the caller (it was full, or failed them): without an offer they
    go where a caller nobody can take goes, for that reason.
    """
    result = Routing()
    row = _row(call, snapshot)
    if request == "done":
        # Always said, row or not: the state machine waits for it to decide a caller who gave up.
        place_in_line = positions(snapshot.waiting).get(call.sid) if row is not None else None
        result.gone.add(call.sid)
        result.events[call.sid] = _routed(call, now, "left", position=place_in_line)
        return result
    if request == "resume" and _still_held(call, snapshot, now):
        return result  # the call came back to the offer it was moved to, whose agents are still held for it
    me = _waiting(call, row, now)
    if request == "expire":
        return _no_agent(call, me, NoAgent("exceeded_queue_time", policy.voicemail), now, moved=True, into=result)
    others = [waiting for waiting in snapshot.waiting if waiting.call_sid != call.sid]
    offers = match(snapshot.agents, [*others, me], now, policy)
    _offer_others(offers, snapshot, now, result, skip=call.sid)
    offer = offers.get(call.sid)
    if offer is not None:
        _hold(offer, call.sid, snapshot, now, moved=False, into=result)
        result.events[call.sid] = _routed(call, now, "offer", agents=offer.agents, seconds=offer.seconds)
        if row is not None:
            result.waiting[call.sid] = replace(me, offered_to=offer.agents, offered_until=offer.until(now, moved=False))
        return result
    queued = sum(1 for waiting in others if waiting.queued)
    placement = place(me, queued, now, policy) if refused is None else NoAgent(refused, policy.voicemail)
    if isinstance(placement, NoAgent):
        return _no_agent(call, me, placement, now, moved=False, into=result)
    line = [*others, replace(me, queued=True)]
    result.waiting[call.sid] = replace(me, queued=True, offered_to=(), offered_until=None)
    result.events[call.sid] = _routed(call, now, "queue", position=positions(line)[call.sid])
    return result


def rematch(snapshot: Snapshot, now: datetime, policy: RoutingPolicy) -> Routing:
    """Offer the free agents to the callers waiting in the queue, oldest first (an agent became offerable)."""
    result = Routing()
    offers = match(snapshot.agents, snapshot.waiting, now, policy)
    _offer_others(offers, snapshot, now, result, skip=None)
    return result


def apply_changes(
    snapshot: Snapshot, call_sid: str, changes: Iterable[AgentChange], now: datetime, policy: RoutingPolicy
) -> dict[str, Agent]:
    """Return the agents whose presence the call's changes move (ringing, on the call, free again, missed)."""
    out: dict[str, Agent] = {}
    for change in changes:
        agent = snapshot.agent(change.identity)
        if agent is None:
            continue
        until = now + timedelta(seconds=policy.ring_seconds) + timedelta(seconds=30)
        match change.engagement:
            case "ringing":
                moved = presence.ringing(agent, call_sid, now, until)
            case "talking":
                moved = presence.answered(agent, call_sid, now)
            case "talked":
                moved = presence.call_ended(agent, call_sid, now, policy.presence)
            case "missed" | "released":
                missed = change.engagement == "missed"
                moved = presence.released(agent, call_sid, now, policy.presence, missed=missed)
        if moved != agent:
            out[agent.identity] = moved
    return out


def frees(changes: Iterable[AgentChange]) -> bool:
    """Tell whether any change may have made an agent offerable (so the queue is worth matching again)."""
    return any(change.engagement in ("talked", "missed", "released") for change in changes)


def misses(call: Call) -> tuple[Missed, ...]:
    """Return the agents whose offer of this call ended without them taking it, and when it ended."""
    out: list[Missed] = []
    for offer in call.offers:
        if offer.ended:
            end = offer.at + timedelta(seconds=offer.seconds)
            out.extend(Missed(identity, end) for identity in offer.agents)
    return tuple(out)


def _row(call: Call, snapshot: Snapshot) -> Waiting | None:
    """Return the call's own row in the queue, if it has one."""
    return next((waiting for waiting in snapshot.waiting if waiting.call_sid == call.sid), None)


def _waiting(call: Call, row: Waiting | None, now: datetime) -> Waiting:
    """Return the call as a caller waiting for an agent: its row, brought up to date, or a new one."""
    base = row or Waiting(call_sid=call.sid, arrived_at=call.first_seen or now, queued=call.queued_at is not None)
    return replace(base, offered_to=(), offered_until=None, missed=misses(call))


def _still_held(call: Call, snapshot: Snapshot, now: datetime) -> bool:
    """Tell whether the agents of the call's last offer are all still held for it."""
    if not call.offers or call.offers[-1].ended:
        return False
    for identity in call.offers[-1].agents:
        agent = snapshot.agent(identity)
        if agent is None or agent.busy_call != call.sid or presence.busy_now(agent, now) != "ringing":
            return False
    return True


def _offer_others(
    offers: dict[str, Offer], snapshot: Snapshot, now: datetime, result: Routing, skip: str | None
) -> None:
    """Carry out offers to queued callers: hold their agents and move them out of the queue to ring them."""
    rows = {waiting.call_sid: waiting for waiting in snapshot.waiting}
    for call_sid, offer in offers.items():
        if call_sid == skip or call_sid not in rows:
            continue
        _hold(offer, call_sid, snapshot, now, moved=True, into=result)
        until = offer.until(now, moved=True)
        result.waiting[call_sid] = replace(rows[call_sid], offered_to=offer.agents, offered_until=until)
        result.events[call_sid] = CallEvent(
            kind=EventKind.ROUTED,
            call_sid=call_sid,
            at=now,
            route="offer",
            agents=offer.agents,
            duration=offer.seconds,
            moved=True,
        )


def _hold(offer: Offer, call_sid: str, snapshot: Snapshot, now: datetime, *, moved: bool, into: Routing) -> None:
    """Hold the offer's agents for the call until its deadline."""
    for identity in offer.agents:
        agent = into.agents.get(identity) or snapshot.agent(identity)
        if agent is not None:
            into.agents[identity] = presence.reserve(agent, call_sid, now, offer.until(now, moved=moved))


def _no_agent(call: Call, me: Waiting, outcome: NoAgent, now: datetime, *, moved: bool, into: Routing) -> Routing:
    """Send the caller nobody can take to voicemail or the apology, out of the queue."""
    into.gone.add(me.call_sid)
    kind = "voicemail" if outcome.voicemail else "unavailable"
    into.events[call.sid] = _routed(call, now, kind, reason=outcome.reason, moved=moved)
    return into


def _routed(
    call: Call,
    now: datetime,
    kind: str,
    *,
    agents: Sequence[str] | None = None,
    seconds: int | None = None,
    reason: str | None = None,
    position: int | None = None,
    moved: bool = False,
) -> CallEvent:
    """Build the ROUTED event that tells the call where routing sent it."""
    return CallEvent.model_validate(
        {
            "kind": EventKind.ROUTED,
            "call_sid": call.sid,
            "at": now,
            "route": kind,
            "agents": tuple(agents) if agents is not None else None,
            "duration": seconds,
            "reason": reason,
            "position": position,
            "moved": moved or None,
        }
    )
