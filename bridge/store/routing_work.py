"""Routing's transactions: every agent and waiting caller read under the routing lock, decisions written back.

Each is `Work` for `bridge.store.sql`'s drivers, like the ingest plan's steps: the same for SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from bridge.core.actions import MoveCall, PlaceCallback
from bridge.core.clock import from_epoch, to_epoch
from bridge.core.presence import Agent
from bridge.core.router import Routing, Snapshot
from bridge.core.routing import positions
from bridge.store import PENDING, ActionRow, Router, action_row
from bridge.store import statements as s
from bridge.store.dialect import Execute, ExecuteMany, Query, TextList, Work, lock
from bridge.store.routing_rows import ParsedRows, agent_text, waiting_text
from bridge.store.statements import action_params


@dataclass
class Leased:
    """The moves one transaction decides, leased to this instance's mover (`SqlStore.hand_over_moves`)."""

    seconds: float
    rows: list[ActionRow] = field(default_factory=list)


def load_routing(parsed: ParsedRows) -> Work[Snapshot]:
    """Take the routing lock, then read every agent's presence and every waiting caller."""
    yield lock(s.ROUTING_LOCK)
    agents = yield Query(s.LOAD_AGENTS)
    waiting = yield Query(s.LOAD_WAITING)
    return Snapshot(
        parsed.agents((row["identity"], row["state"]) for row in agents),
        parsed.waiting(row["state"] for row in waiting),
    )


def save_routing(routing: Routing, now: float, leased: Leased | None) -> Work[None]:
    """Write what routing decided: presence, the queue's rows, and a move for each queued caller it offered.

    With `leased`, the moves are leased in the same transaction, for the instance that decided them to send
    at once: no claim, and no second commit, stands between a decision and Twilio.
    """
    if routing.agents:
        rows = [
            {"identity": agent.identity, "state": agent_text(agent), "now": now} for agent in routing.agents.values()
        ]
        yield ExecuteMany(s.SAVE_AGENT, rows)
    if routing.gone:
        yield ExecuteMany(s.DROP_WAITING, [{"call_sid": call_sid} for call_sid in sorted(routing.gone)])
    if routing.waiting:
        rows = [
            {"call_sid": row.call_sid, "state": waiting_text(row), "arrived_at": to_epoch(row.arrived_at)}
            for row in routing.waiting.values()
        ]
        yield ExecuteMany(s.SAVE_WAITING, rows)
    if routing.moves or routing.callbacks:
        moves: list[MoveCall | PlaceCallback] = [
            _move(routing, call_sid, number) for call_sid, number in sorted(routing.moves.items())
        ]
        moves += [PlaceCallback(sid, turn, agent) for sid, (turn, agent) in sorted(routing.callbacks.items())]
        yield ExecuteMany(s.INSERT_ACTION, [action_params(move, now) for move in moves])
        if leased is not None:
            rows = yield Query(s.ACTIONS_BY_KEY, keys=TextList([move.key for move in moves]))
            # Only the rows this transaction made: a key already queued is someone else's to send.
            fresh = [action_row(row) for row in rows if row["status"] == PENDING and row["attempts"] == 0]
            yield ExecuteMany(s.LEASE, [{"until": now + leased.seconds, "id": row.id} for row in fresh])
            leased.rows += fresh


def _move(routing: Routing, call_sid: str, number: int) -> MoveCall:
    """Return the move of a queued caller: out of the queue, or, for a call in its room, an invitation into it."""
    invite = routing.invites.get(call_sid)
    if invite is None:
        return MoveCall(call_sid, number)
    return MoveCall(call_sid, number, invite=invite.agents, seconds=invite.seconds)


def add_agents(agents: Mapping[str, int], now: datetime, parsed: ParsedRows) -> Work[None]:
    """Add a presence row for each agent without one, and bring the Zendesk id of those with one up to date."""
    yield lock(s.ROUTING_LOCK)
    stamp = to_epoch(now)
    read = yield Query(s.LOAD_AGENTS)
    known = {agent.identity: agent for agent in parsed.agents((row["identity"], row["state"]) for row in read)}
    fresh = [Agent(identity, zendesk_id, chosen_at=now, idle_since=now) for identity, zendesk_id in agents.items()]
    new = [agent for agent in fresh if agent.identity not in known]
    moved = [replace(known[a.identity], zendesk_id=a.zendesk_id) for a in fresh if a.identity in known
             and known[a.identity].zendesk_id != a.zendesk_id]  # fmt: skip
    if new or moved:
        rows = [{"identity": agent.identity, "state": agent_text(agent), "now": stamp} for agent in [*new, *moved]]
        yield ExecuteMany(s.SAVE_AGENT, rows)


def change_agent(
    identity: str,
    change: Callable[[Agent], Agent],
    router: Router,
    now: float,
    parsed: ParsedRows,
    leased: Leased | None,
) -> Work[tuple[Agent, Routing] | None]:
    """Change one agent under the routing lock, then match the queue with the agent as changed."""
    snapshot = yield from load_routing(parsed)
    agent = snapshot.agent(identity)
    if agent is None:
        return None
    changed = change(agent)
    routing = router.rematch(replace(snapshot, agents=tuple(changed if a.identity == identity else a
                                                              for a in snapshot.agents)))  # fmt: skip
    routing.agents.setdefault(identity, changed)
    yield from save_routing(routing, now, leased)
    return routing.agents[identity], routing


def rematch(router: Router, now: float, parsed: ParsedRows, leased: Leased | None) -> Work[Routing]:
    """Match the queue against the free agents, under the routing lock; write only what changed."""
    snapshot = yield from load_routing(parsed)
    routing = router.rematch(snapshot)
    if routing.agents or routing.waiting or routing.moves or routing.callbacks:
        yield from save_routing(routing, now, leased)
    return routing


def announce(
    call_sid: str, every: float, now: float, parsed: ParsedRows, aging: float = 0.0
) -> Work[tuple[int | None, bool, datetime | None]]:
    """Return the caller's place in line (ranked with `aging`), whether saying it is due (noted said now if so), and
    their arrival."""
    rows = yield Query(s.LOAD_WAITING)
    line = list(zip(parsed.waiting(row["state"] for row in rows), (row["announced_at"] for row in rows), strict=True))
    place = positions((waiting for waiting, _ in line), from_epoch(now), aging).get(call_sid)
    if place is None:
        return None, False, None
    mine, said = next((waiting, said) for waiting, said in line if waiting.call_sid == call_sid)
    due = every > 0 and (said is None or now - said >= every)
    if due:
        yield Execute(s.ANNOUNCED, call_sid=call_sid, now=now)
    return place, due, mine.arrived_at


PACER = "calls"  # the one pacer: every call the bridge creates, account-wide


def claim_callback(
    call_sid: str, turn: int, agent: str, now: float, hold: float, interval: float, parsed: ParsedRows
) -> Work[bool | float]:
    """Decide whether a callback's turn places its call now, in one transaction: True (go), False (stale), or when.

    The turn must still be the one its row last decided, for that agent, its hold still on: else routing moved
    on (the hold ran out, the request closed) and the call is never placed. Then the account's pacer must have
    a slot (one call every `interval` seconds, whichever instance places it); taking it also holds the turn for
    `hold` more seconds, so nothing decides the request again while its call is being placed.
    """
    yield lock(s.ROUTING_LOCK)
    rows = yield Query(s.LOAD_WAITING)
    mine = next((row for row in parsed.waiting(row["state"] for row in rows) if row.call_sid == call_sid), None)
    if mine is None or mine.callback is None or mine.moves != turn or agent not in mine.offered_to:
        return False
    if mine.offered_until is None or to_epoch(mine.offered_until) <= now:
        return False
    slot = yield from pace(now, interval)
    if slot is not None:
        return slot
    held = replace(mine, offered_until=from_epoch(now + hold))
    yield Execute(s.SAVE_WAITING, call_sid=call_sid, state=waiting_text(held), arrived_at=to_epoch(held.arrived_at))
    return True


def pace(now: float, interval: float) -> Work[float | None]:
    """Take the account's next call slot if it is free now (None), else return when it is."""
    yield lock(s.PACER_LOCK)
    pacer = yield Query(s.PACER_READ, name=PACER)
    next_at = float(pacer[0]["next_at"]) if pacer else None
    if next_at is not None and next_at > now:
        return next_at
    yield Execute(s.PACER_SET, name=PACER, next_at=now + interval)
    return None
