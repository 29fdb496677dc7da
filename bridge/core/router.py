"""The router, pure: turn what a call asks of routing into decisions, against a snapshot of agents and the queue.

The store loads the snapshot (every agent's presence, every caller waiting in the queue) under its routing lock,
hands it here, and carries the result out in the same transaction: a ROUTED event for the call that asked
(folded into it by the state machine), the agents held for offers, the queue's rows to write or delete, and the
moves of queued callers to send. A queued caller offered to an agent is moved (the telephony provider fetches
the bridge's URL again); only when it comes back does its own state learn of the offer, in its own transaction,
so a routing pass never writes another call's state and two instances never offer one agent two calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bridge.core import call_room, estimate, preference, presence
from bridge.core.calls import AgentChange, Call, RouteRequest
from bridge.core.events import CallEvent, EventKind, RouteKind
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

# How long past its ring time an agent rung without the bridge holding them (an offer made before a restart,
# another system's dial) counts as ringing, should the end of the ring never be reported.
UNHELD_RING_GRACE = 30.0


@dataclass(frozen=True)
class Snapshot:
    """What routing sees: every agent (in their configured order) and every caller waiting in the queue."""

    agents: tuple[Agent, ...]
    waiting: tuple[Waiting, ...]

    def agent(self, identity: str) -> Agent | None:
        """Return an agent by identity."""
        return next((agent for agent in self.agents if agent.identity == identity), None)

    def row(self, call_sid: str) -> Waiting | None:
        """Return a call's row in the queue, if it has one."""
        return next((waiting for waiting in self.waiting if waiting.call_sid == call_sid), None)


@dataclass
class Routing:
    """What routing decided: the asking call's ROUTED event, agents held, rows to write or delete, moves to send."""

    events: dict[str, CallEvent] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    waiting: dict[str, Waiting] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    moves: dict[str, int] = field(default_factory=dict)  # call -> the number of its move to send
    invites: dict[str, Offer] = field(default_factory=dict)  # call in its room -> whom its move invites in
    callbacks: dict[str, tuple[int, str]] = field(default_factory=dict)  # call -> its callback's turn and agent

    def absorb(self, later: Routing) -> None:
        """Add the decisions of a later pass (made on the snapshot as this one left it)."""
        self.events.update(later.events)
        self.agents.update(later.agents)
        for call_sid in later.gone:
            self.waiting.pop(call_sid, None)
        self.gone = (self.gone | later.gone) - set(later.waiting)
        self.waiting.update(later.waiting)
        self.moves.update(later.moves)
        self.invites.update(later.invites)
        self.callbacks.update(later.callbacks)

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

    Routing the call to an offer matches every waiting caller at once (older ones first); a call that freed
    an agent otherwise has the queue matched again, so the longest-waiting caller is offered to them at once.
    """
    result = Routing(agents=apply_changes(snapshot, call.sid, changes, now, policy.line(call.route_line)))
    if request is not None:
        result.absorb(route(call, request, result.merged(snapshot), now, policy, refused=refused))
    rematching = ("done", "expire", "voicemail", "callback", "callback_next")
    if (frees(changes) or request in rematching) and request not in ("offer", "resume"):
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
    """Decide for a call that asks routing something; queued callers older than it may be offered in the same pass.

    `refused` says the queue would not keep the caller (it was full, or failed them): without an offer they
    go where a caller nobody can take goes, for that reason. The call's line decides its ring time, its queue
    and whether it may leave a message.
    """
    result = Routing()
    own = policy.line(call.route_line)
    row = snapshot.row(call.sid)
    if request in ("callback", "callback_next"):
        return _callback(call, request, row, now, policy, into=result, snapshot=snapshot)
    if call.asked is not None and request != "done":
        # Its request came before its arrival (only a replay does that): it waits as a callback, not a caller.
        return _callback(call, "callback", row, now, policy, into=result, snapshot=snapshot)
    if request == "refresh":
        # The caller's Zendesk data came after they were placed: their rank and their agent count from the next
        # offer on (an offer ringing now rings on). Only a caller in the queue has a row to change.
        if row is not None:
            fresh = _waiting(call, row, now, policy.line_key(call.route_line), snapshot, policy)
            result.waiting[call.sid] = replace(row, priority=fresh.priority, preferred=fresh.preferred)
            result.absorb(rematch(result.merged(snapshot), now, policy))
        return result
    if request in ("line", "rang"):
        return _in_line(call, request, row, snapshot, now, policy)
    if row is not None:
        _let_go(row, snapshot, now, own, into=result, keep=request == "resume" and _held(row, snapshot, now))
    if request == "done":
        # Always said, row or not: the state machine waits for it to decide a caller who gave up.
        place_in_line = positions(snapshot.waiting, now, policy.aging).get(call.sid) if row is not None else None
        result.gone.add(call.sid)
        result.events[call.sid] = _routed(call, now, "left", position=place_in_line)
        return result
    if request == "resume" and row is not None and _held(row, snapshot, now):
        # Back from its move, its agents still held for it: ring them now.
        seconds = own.preferred_seconds if row.offered_ticket is not None else own.ring_seconds
        result.events[call.sid] = _routed(call, now, "offer", agents=row.offered_to, seconds=seconds, moved=True,
                                          ticket=row.offered_ticket)  # fmt: skip
        return result
    me = _waiting(call, row, now, policy.line_key(call.route_line), snapshot, policy)
    if request == "settle":
        return _no_agent(call, NoAgent("no_agent", own.voicemail), now, moved=False, into=result)
    if request == "voicemail":
        # The caller pressed for voicemail while waiting: they leave the queue themselves (its wait music says
        # so), and its action asks where to, so nothing needs moving.
        return _no_agent(call, NoAgent("customer_requested", True), now, moved=False, into=result)
    if request == "expire":
        result.moves[call.sid] = me.moves + 1  # it waits in the queue: move it to voicemail
        return _no_agent(call, NoAgent("exceeded_queue_time", own.voicemail), now, moved=True, into=result)
    if request == "requeue":
        # Its move failed: it still waits in the queue, where only a new move reaches it (an offer in place
        # would hold agents for a ring nobody hears). Not to the agents this move was for, for a while, so a
        # move Twilio keeps refusing is not sent again at once.
        failed = tuple(Missed(identity, now) for identity in (row.offered_to if row is not None else ()))
        result.waiting[call.sid] = replace(me, queued=True, missed=(*me.missed, *failed))
        result.absorb(rematch(result.merged(snapshot), now, policy))
        return result
    current = result.merged(snapshot)
    others = [waiting for waiting in current.waiting if waiting.call_sid != call.sid]
    offers = match(current.agents, [*others, me], now, policy)
    _move_others(offers, current, now, into=result, skip=call.sid)
    offer = offers.get(call.sid)
    if offer is not None:
        _hold(offer, call.sid, current, now, moved=False, into=result)
        result.events[call.sid] = _routed(call, now, "offer", agents=offer.agents, seconds=offer.seconds,
                                          ticket=offer.ticket)  # fmt: skip
        if row is not None:
            result.waiting[call.sid] = _offered(me, offer, now, moved=False)
        return result
    # Callbacks keep places in line but hold no phone line: QUEUE_MAX_SIZE counts the callers who do.
    queued = sum(1 for waiting in others if waiting.queued and not waiting.callback
                 and policy.line_key(waiting.line) == me.line)  # fmt: skip
    placement = place(me, queued, now, own) if refused is None else NoAgent(refused, own.voicemail)
    if isinstance(placement, NoAgent):
        return _no_agent(call, placement, now, moved=False, into=result)
    mine = replace(me, queued=True)
    result.waiting[call.sid] = mine
    place_now = positions([*others, mine], now, policy.aging)[call.sid]
    result.events[call.sid] = _routed(call, now, "queue", position=place_now)
    return result


def _in_line(
    call: Call, request: RouteRequest, row: Waiting | None, snapshot: Snapshot, now: datetime, policy: RoutingPolicy
) -> Routing:
    """Put an answered call transferred to a line in its queue, at the place its arrival gives it; offer it.

    `rang`: the agent invited into its room did not answer, and the caller keeps their place. The agent who
    transferred the call is not offered it back for a while, nor one who let it ring out.
    """
    result = Routing()
    missed: tuple[Missed, ...] = ()
    if row is not None and request == "rang":
        # Its agent's presence counts the miss (the call's engagements say it); the row keeps them from the caller.
        missed = tuple(Missed(identity, now) for identity in row.offered_to)
    if row is None:
        seen = call_room.spans(call.room) if call.room is not None else None
        line = policy.line_key(seen.in_line if seen is not None else None)
        by = (seen.last_agent if seen is not None else None) or call.answered_agent
        missed = (Missed(by, now),) if by is not None else ()
        row = Waiting(call_sid=call.sid, arrived_at=call.arrival(now), line=line, caller=call.from_number)
    lined = replace(row, queued=True, room=True, offered_to=(), offered_until=None, missed=(*row.missed, *missed))
    result.waiting[call.sid] = lined
    result.absorb(rematch(result.merged(snapshot), now, policy))
    return result


def _callback(
    call: Call,
    request: RouteRequest,
    row: Waiting | None,
    now: datetime,
    policy: RoutingPolicy,
    *,
    into: Routing,
    snapshot: Snapshot,
) -> Routing:
    """Put a callback request in the caller's place, or bring it up to date after a turn (out of line once closed).

    Only the turn the row last decided is brought up to date: a late report of an earlier turn changes nothing,
    so a turn under way is never forgotten (and its customer never dialled a second time meanwhile).
    """
    callback = call.asked
    if callback is None:  # pragma: no cover - the state machine asks only for a call with a filed request
        return into
    if request == "callback":
        if row is not None and row.callback is not None:
            return into  # in line already (the same request told twice): a turn under way stays as it is
        if callback.closed is not None:
            into.gone.add(call.sid)  # its turns, reported first, closed it already: nothing to keep in line
            return into
        me = _waiting(call, row, now, policy.line_key(call.route_line), snapshot, policy)
        into.waiting[call.sid] = replace(me, queued=True, callback=callback.number, missed=())
        return into
    if row is None or row.callback is None:
        return into  # closed or cancelled already: nothing left in line
    if callback.closed is not None:
        into.gone.add(call.sid)
        return into
    if not callback.turns or max(callback.turns) != row.moves:
        return into
    missed = tuple(Missed(turn.agent, turn.ended_at or now) for turn in callback.ordered()
                   if turn.agent and turn.outcome == "agent_missed")  # fmt: skip
    into.waiting[call.sid] = replace(row, offered_to=(), offered_until=None, retry_at=callback.retry_at,
                                     missed=missed)  # fmt: skip
    return into


def rematch(snapshot: Snapshot, now: datetime, policy: RoutingPolicy) -> Routing:
    """Offer the free agents to the callers waiting in the queue, oldest first (an agent became offerable)."""
    result = Routing()
    _move_others(match(snapshot.agents, snapshot.waiting, now, policy), snapshot, now, into=result, skip=None)
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
        match change.engagement:
            case "ringing":
                until = now + timedelta(seconds=policy.ring_seconds + UNHELD_RING_GRACE)
                moved = presence.ringing(agent, call_sid, now, until)
            case "talking":
                moved = presence.answered(agent, call_sid, now)
            case "talked":
                ended = presence.call_ended(agent, call_sid, now, policy.presence)
                moved = estimate.handled(agent, ended, now, policy.presence.wrap_up_seconds)
            case _:  # missed or released: their offer stopped ringing
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


def _waiting(
    call: Call, row: Waiting | None, now: datetime, line: str, snapshot: Snapshot, policy: RoutingPolicy
) -> Waiting:
    """Return the call as a caller waiting for an agent on its line: its row, brought up to date, or a new one.

    The caller arrived when the call was first seen (Call.arrival: unless a replay of an old recording dated it).
    What Zendesk says of the caller (bridge.core.preference) sets their rank and, until one offer was made to
    the agent of their open ticket, who that agent is.
    """
    arrived = call.arrival(now)
    base = row or Waiting(
        call_sid=call.sid,
        arrived_at=arrived,
        line=line,
        queued=call.queued_at is not None,
        caller=call.from_number,
    )
    own = policy.line(line)
    serves = None if policy.serves is None else frozenset(who for who, its in policy.serves.items() if line in its)
    agents = {agent.identity: agent.zendesk_id for agent in snapshot.agents}
    preferred = () if call.open_ticket is not None else preference.candidates(call.customer, agents, serves)
    return replace(
        base,
        offered_to=(),
        offered_until=None,
        offered_ticket=None,
        # A call waiting in its room was offered through invitations, not rings of its own: its row keeps its misses.
        missed=base.missed if base.room else misses(call),
        priority=max(base.priority, preference.priority(call.customer, own)),
        preferred=preferred,
    )


def _offered(row: Waiting, offer: Offer, now: datetime, *, moved: bool) -> Waiting:
    """Return the row with the offer on it; an offer to the caller's own agent is made once."""
    return replace(
        row,
        offered_to=offer.agents,
        offered_until=offer.until(now, moved=moved),
        offered_ticket=offer.ticket,
        preferred=() if offer.ticket is not None else row.preferred,
    )


def _held(row: Waiting, snapshot: Snapshot, now: datetime) -> bool:
    """Tell whether an offer the row records is still on: every one of its agents still held for the call."""
    if not row.offered_to:
        return False
    for identity in row.offered_to:
        agent = snapshot.agent(identity)
        if agent is None or agent.busy_call != row.call_sid or presence.busy_now(agent, now) != "ringing":
            return False
    return True


def _let_go(
    row: Waiting, snapshot: Snapshot, now: datetime, policy: RoutingPolicy, *, into: Routing, keep: bool
) -> None:
    """Release the agents held for an offer the call never reached (its move failed, or it is decided anew)."""
    if keep:
        return
    for identity in row.offered_to:
        agent = into.agents.get(identity) or snapshot.agent(identity)
        if agent is not None and agent.busy_call == row.call_sid and agent.busy == "ringing":
            into.agents[identity] = presence.released(agent, row.call_sid, now, policy.presence, missed=False)


def _move_others(
    offers: dict[str, Offer], snapshot: Snapshot, now: datetime, *, into: Routing, skip: str | None
) -> None:
    """Carry out offers to queued callers: hold their agents, note the offer on their row, and move them."""
    for call_sid, offer in offers.items():
        row = snapshot.row(call_sid)
        if call_sid == skip or row is None:
            continue
        _hold(offer, call_sid, snapshot, now, moved=True, into=into)
        into.waiting[call_sid] = replace(_offered(row, offer, now, moved=True), moves=row.moves + 1)
        if row.callback is not None:
            into.callbacks[call_sid] = (row.moves + 1, offer.agents[0])  # a turn of calling back: ring the agent
        else:
            into.moves[call_sid] = row.moves + 1
            if row.room:
                into.invites[call_sid] = offer


def _hold(offer: Offer, call_sid: str, snapshot: Snapshot, now: datetime, *, moved: bool, into: Routing) -> None:
    """Hold the offer's agents for the call until its deadline."""
    for identity in offer.agents:
        agent = into.agents.get(identity) or snapshot.agent(identity)
        if agent is not None:  # pragma: no branch - an offer names only agents the snapshot holds
            into.agents[identity] = presence.reserve(agent, call_sid, now, offer.until(now, moved=moved))


def _no_agent(call: Call, outcome: NoAgent, now: datetime, *, moved: bool, into: Routing) -> Routing:
    """Send the caller nobody can take to voicemail or the apology, out of the queue."""
    into.gone.add(call.sid)
    kind: RouteKind = "voicemail" if outcome.voicemail else "unavailable"
    into.events[call.sid] = _routed(call, now, kind, reason=outcome.reason, moved=moved)
    return into


def _routed(
    call: Call,
    now: datetime,
    kind: RouteKind,
    *,
    agents: Sequence[str] | None = None,
    seconds: int | None = None,
    reason: str | None = None,
    position: int | None = None,
    moved: bool = False,
    ticket: int | None = None,
) -> CallEvent:
    """Build the ROUTED event that tells the call where routing sent it."""
    return CallEvent(
        kind=EventKind.ROUTED,
        call_sid=call.sid,
        at=now,
        route=kind,
        agents=tuple(agents) if agents is not None else None,
        duration=seconds,
        reason=reason,
        position=position,
        moved=moved or None,
        open_ticket=ticket,
    )
