"""Routing, pure: which offerable agents a waiting caller is offered to, and what a caller nobody can take hears.

One function decides every offer, whatever prompted it (a call arriving, an offer ringing out, an agent
freeing up): `match` walks the callers waiting for an agent, oldest first (priority first once lines name
priorities), and gives each the agents it may be offered to, by the line's strategy, until none are left.
A call that gets no offer waits in the queue while it may (`place`), or goes to voicemail or the apology.
The store runs these in one transaction, so two instances never offer one agent two calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from bridge.core.presence import Agent, PresencePolicy, busy_now, offerable

Strategy = Literal["ring_all", "longest_idle", "round_robin"]
STRATEGIES: tuple[Strategy, ...] = ("ring_all", "longest_idle", "round_robin")
RING_ALL_MAX = 10  # one offer rings at most ten agents at once (the telephony provider's limit of one dial)
# An agent who let an offer of a caller ring out is not offered that same caller again for this long, so a
# caller is not bounced between the queue and one phone nobody picks up; other callers may ring them at once.
REOFFER_AFTER = 60.0
# How long an agent is held for an offer beyond its ring time: the time for the call to be moved to the
# offer (a redirect out of the queue) and for the end of the ring to be reported.
OFFER_GRACE = 15.0
# customer_requested: the caller pressed the key for voicemail while waiting (a callback offer's second key).
NoAgentReason = Literal["no_agent", "exceeded_queue_time", "overflowed", "customer_requested"]
DEFAULT_LINE = "default"  # the key of the one line made from the environment (and of queue rows before lines)
PRIORITY = 1  # the rank of a priority customer (bridge.core.preference), and of an ordinary caller who aged into it


@dataclass(frozen=True)
class RoutingPolicy:
    """The settings that shape routing: the global ones, and each line's own (`lines`, by key).

    A caller is routed by their line's policy (its strategy, ring time, queue and voicemail); presence is
    everyone's. `serves` names the lines each agent takes calls for (None: every agent takes every line).
    """

    strategy: Strategy = "ring_all"
    ring_all_seconds: int = 20  # DIAL_TIMEOUT: how long a ring-all offer rings
    agent_ring_seconds: int = 15  # AGENT_RING_SECONDS: how long a one-at-a-time offer rings
    queue: bool = False  # callers may wait for an agent (the queue is configured and possible)
    max_wait: float = 300.0  # QUEUE_MAX_WAIT_SECONDS, from the call's arrival
    max_size: int = 50  # QUEUE_MAX_SIZE: callers already waiting when a new one goes to voicemail
    voicemail: bool = True  # VOICEMAIL: a caller nobody takes may leave a message
    presence: PresencePolicy = field(default_factory=PresencePolicy)
    lines: Mapping[str, RoutingPolicy] = field(default_factory=dict)  # in the configured order: the first first
    serves: Mapping[str, frozenset[str]] | None = None
    # Routing that knows the customer (bridge.core.preference): a caller with an open ticket rings its assignee
    # alone first for this long (PREFERRED_AGENT_SECONDS; 0: off), the line's priority customers wait ahead, and
    # an ordinary caller who waited `aging` seconds (PRIORITY_AGING_SECONDS; 0: never) ranks as a priority one.
    preferred_seconds: int = 0
    priority_organizations: frozenset[int] = frozenset()
    priority_tags: frozenset[str] = frozenset()
    aging: float = 0.0

    @property
    def knows_customers(self) -> bool:
        """Tell whether routing on this policy uses the caller's Zendesk data."""
        return bool(self.preferred_seconds or self.priority_organizations or self.priority_tags)

    def line_key(self, line: str | None) -> str:
        """Return the line a caller of `line` is routed on: that line, or the first for a line no longer known."""
        if line in self.lines or not self.lines:
            return line or DEFAULT_LINE
        return next(iter(self.lines))

    def line(self, line: str | None) -> RoutingPolicy:
        """Return the policy a caller of `line` is routed by (the global one without lines)."""
        return self.lines.get(self.line_key(line), self)

    @property
    def ring_seconds(self) -> int:
        """Return how long one offer rings."""
        return self.ring_all_seconds if self.strategy == "ring_all" else self.agent_ring_seconds


@dataclass(frozen=True)
class Missed:
    """An agent who let an offer of the caller ring out, and when."""

    identity: str
    at: datetime


@dataclass(frozen=True)
class Preferred:
    """An open ticket of the caller's, and the agent it is assigned to: offered the call first, with that ticket."""

    ticket_id: int
    identity: str


@dataclass(frozen=True)
class Waiting:
    """A caller waiting for an agent: in the queue, or being offered (rung) right now."""

    call_sid: str
    arrived_at: datetime  # when the call arrived: the place in the queue, kept across offers
    line: str = DEFAULT_LINE
    priority: int = 0  # higher waits ahead
    queued: bool = False  # in the queue now (a caller at its first offer is not yet)
    offered_to: tuple[str, ...] = ()  # the agents an offer rings now
    offered_until: datetime | None = None  # that offer's deadline
    missed: tuple[Missed, ...] = ()
    moves: int = 0  # how often the bridge moved this caller out of the queue (each move is numbered)
    caller: str | None = None  # who is calling (for `bridge queue`, masked there)
    preferred: tuple[Preferred, ...] = ()  # their open tickets' agents, the winner first, until one is offered
    offered_ticket: int | None = None  # the open ticket the offer ringing now shows its agent
    room: bool = False  # an answered call transferred to the line: it waits in its room, agents are invited in
    # A callback request in the caller's place (docs/callbacks.md): the number to call back, and not before when.
    callback: str | None = None
    retry_at: datetime | None = None

    def being_offered(self, now: datetime) -> bool:
        """Tell whether an offer of this caller is ringing (or being set up) now."""
        return bool(self.offered_to) and self.offered_until is not None and self.offered_until > now

    def waited(self, now: datetime) -> float:
        """Return how long the caller has waited, in seconds, since arriving."""
        return max(0.0, (now - self.arrived_at).total_seconds())


@dataclass(frozen=True)
class Offer:
    """Ring these agents for this long."""

    agents: tuple[str, ...]
    seconds: int
    ticket: int | None = None  # an offer to the caller's own agent: the open ticket it is for

    def until(self, now: datetime, *, moved: bool) -> datetime:
        """Return the deadline the agents are held until (`moved`: the caller must first be moved to the offer)."""
        return now + timedelta(seconds=self.seconds + OFFER_GRACE * (2 if moved else 1))


@dataclass(frozen=True)
class Wait:
    """Wait in the queue for an agent."""


@dataclass(frozen=True)
class NoAgent:
    """Nobody can take the call: voicemail when it is on, else the apology."""

    reason: NoAgentReason
    voicemail: bool


Placement = Wait | NoAgent


def rank(waiting: Waiting, now: datetime | None = None, aging: float = 0.0) -> int:
    """Return a caller's priority now: their own, or PRIORITY once an ordinary caller has waited `aging` seconds."""
    if aging > 0 and now is not None and waiting.priority < PRIORITY and waiting.waited(now) >= aging:
        return PRIORITY
    return waiting.priority


def order(waiting: Waiting, now: datetime | None = None, aging: float = 0.0) -> tuple[int, datetime, str]:
    """Rank a waiting caller: higher priority first, then the earliest arrival (their place), then by sid.

    With `aging`, an ordinary caller who has waited that long at `now` ranks as a priority one: among priority
    callers by arrival, so a steady stream of priority callers never keeps them waiting much longer.
    """
    return (-rank(waiting, now, aging), waiting.arrived_at, waiting.call_sid)


def positions(waiting: Iterable[Waiting], now: datetime | None = None, aging: float = 0.0) -> dict[str, int]:
    """Return each waiting caller's place in their line, from 1 (ranked at `now`, with `aging`)."""
    places: dict[str, int] = {}
    counts: dict[str, int] = {}
    for caller in sorted(waiting, key=lambda row: order(row, now, aging)):
        counts[caller.line] = counts.get(caller.line, 0) + 1
        places[caller.call_sid] = counts[caller.line]
    return places


def match(
    agents: Sequence[Agent],
    waiting: Sequence[Waiting],
    now: datetime,
    policy: RoutingPolicy,
    serves: Mapping[str, frozenset[str]] | None = None,
) -> dict[str, Offer]:
    """Offer the free agents to the waiting callers, oldest first; return each offered caller's offer.

    A caller already being offered keeps that offer and is skipped; a caller past the longest wait is left
    to go to voicemail. Each caller is offered by their line's policy, only to agents who serve that line
    (`serves`, default: the policy's), so an agent serving several lines gets the longest-waiting caller of
    any of them. `agents` come in their configured order, which breaks ties.
    """
    free = [agent for agent in agents if offerable(agent, now, policy.presence)]
    serves = serves if serves is not None else policy.serves
    offers: dict[str, Offer] = {}
    for caller in sorted(waiting, key=lambda row: order(row, now, policy.aging)):
        if not free:
            break
        line = policy.line_key(caller.line)
        own = policy.line(line)
        # An answered call transferred to the line waits on however long it waited before (its place is its arrival);
        # a callback request waits for its turn however long that takes.
        too_long = own.queue and not caller.room and not caller.callback and caller.waited(now) >= own.max_wait
        if caller.being_offered(now) or too_long:
            continue
        if caller.callback is not None and _callback_busy(caller, agents, now):
            continue
        candidates = [agent for agent in free if _may_ring(agent, caller, line, now, serves)]
        if not candidates:
            continue
        if caller.room or caller.callback is not None:
            # One agent at a time: whoever answers an invitation joins the room, so ringing several would join several;
            # a callback's call to its agent is placed before anyone dials the customer.
            chosen = _pick(candidates, own.strategy)[:1]
            offer = Offer(tuple(agent.identity for agent in chosen), own.ring_seconds)
        else:
            offer = _preferred(caller, candidates, own) or Offer(
                tuple(agent.identity for agent in _pick(candidates, own.strategy)), own.ring_seconds
            )
        offers[caller.call_sid] = offer
        taken = set(offer.agents)
        free = [agent for agent in free if agent.identity not in taken]
    return offers


def _preferred(caller: Waiting, candidates: Sequence[Agent], policy: RoutingPolicy) -> Offer | None:
    """Offer the caller to the agent of their winning open ticket alone, when the line says so and they may ring."""
    if policy.preferred_seconds <= 0:
        return None
    free = {agent.identity for agent in candidates}
    winner = next((preferred for preferred in caller.preferred if preferred.identity in free), None)
    if winner is None:
        return None
    return Offer((winner.identity,), policy.preferred_seconds, winner.ticket_id)


def place(caller: Waiting, queue_size: int, now: datetime, policy: RoutingPolicy) -> Placement:
    """Say where a caller no agent can take goes: the queue while they may wait, else voicemail or the apology.

    `queue_size` counts the other callers waiting in the line. A caller already in the queue (back from an
    offer that rang out) keeps their place even when the queue has filled since.
    """
    if not policy.queue:
        return NoAgent("no_agent", policy.voicemail)
    if caller.waited(now) >= policy.max_wait:
        return NoAgent("exceeded_queue_time", policy.voicemail)
    if not caller.queued and queue_size >= policy.max_size:
        return NoAgent("overflowed", policy.voicemail)
    return Wait()


def _callback_busy(caller: Waiting, agents: Sequence[Agent], now: datetime) -> bool:
    """Tell whether a callback may not be offered now: its next turn is not due, or its last turn still goes on.

    A turn goes on while an agent it rang is still busy with the call (ringing, or talking with the customer),
    whatever its hold said: the customer is never dialled twice at once.
    """
    if caller.retry_at is not None and caller.retry_at > now:
        return True
    return any(agent.busy_call == caller.call_sid and busy_now(agent, now) in ("ringing", "on_call")
               for agent in agents if agent.identity in caller.offered_to)  # fmt: skip


def _may_ring(
    agent: Agent, caller: Waiting, line: str, now: datetime, serves: Mapping[str, frozenset[str]] | None
) -> bool:
    """Tell whether the caller may ring this free agent: their line, and not one they just let ring out."""
    if serves is not None and line not in serves.get(agent.identity, frozenset()):
        return False
    cooldown = timedelta(seconds=REOFFER_AFTER)
    return not any(miss.identity == agent.identity and now - miss.at < cooldown for miss in caller.missed)


def _pick(candidates: list[Agent], strategy: Strategy) -> list[Agent]:
    """Pick whom one offer rings: the ten idle longest at once, the one idle longest, or the next in turn."""
    if strategy == "round_robin":
        # The one offered longest ago (never offered: first); the configured order breaks ties.
        return [min(candidates, key=lambda agent: (agent.offered_at is not None, agent.offered_at or EARLIEST))]
    by_idle = sorted(candidates, key=lambda agent: (agent.idle_since is not None, agent.idle_since or EARLIEST))
    return by_idle[:RING_ALL_MAX] if strategy == "ring_all" else by_idle[:1]


EARLIEST = datetime.min.replace(tzinfo=UTC)
