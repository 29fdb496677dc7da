"""Agent presence, pure: what each agent chose, what calls keep them busy with, and who may be offered a call.

An agent has a *chosen* status (available, away, offline) and, while a call keeps them busy, a *busy* status:
ringing (an offer of a call rings them), on_call, or wrap_up (for a while after a call). A call is offered
only to an agent who chose `available`, is not busy, has a softphone that still shows signs of life (when
they ever had one) and, where the bridge can read it, is not away or offline in Zendesk. Zendesk's word is
a field of its own (`zendesk`), beside the agent's choice, never written over it.

Every change is a function from an agent and a moment to a new agent; the store keeps the rows and carries
the changes out in the transaction of the event that caused them, so every instance sees the same.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, get_args

Chosen = Literal["available", "away", "offline"]
Busy = Literal["ringing", "on_call", "wrap_up"]
CHOSEN: tuple[Chosen, ...] = get_args(Chosen)
BUSY: tuple[Busy, ...] = get_args(Busy)
MISSED_OFFERS = "missed_offers"  # why the bridge set an agent away: offers in a row rang out
PRESENCE_LOST = "softphone_gone"  # why an agent shows offline: their softphone stopped answering


@dataclass(frozen=True)
class PresencePolicy:
    """The settings that shape presence."""

    wrap_up_seconds: float = 0.0  # WRAP_UP_SECONDS
    presence_timeout: float = 60.0  # PRESENCE_TIMEOUT_SECONDS: a softphone silent this long is gone
    missed_offers_away: int = 0  # MISSED_OFFERS_AWAY: 0 = never


@dataclass(frozen=True)
class Agent:
    """One agent's presence, as the store keeps it."""

    identity: str  # client:NAME, sip:…, or an E.164 number
    zendesk_id: int
    chosen: Chosen = "available"
    chosen_at: datetime | None = None
    chosen_by: str | None = None  # who set it: the agent, a supervisor, the command line, the bridge
    reason: str | None = None  # why the bridge chose for them (MISSED_OFFERS), shown in the softphone
    busy: Busy | None = None
    busy_call: str | None = None  # the call that keeps them busy
    busy_since: datetime | None = None
    busy_until: datetime | None = None  # ringing: the offer's deadline; wrap_up: its end
    seen_at: datetime | None = None  # the softphone's last sign of life; None: never had one
    left: bool = False  # the softphone said goodbye (its page closed): gone without waiting for the timeout
    idle_since: datetime | None = None  # when they last became free to take a call (longest idle first)
    offered_at: datetime | None = None  # their last offer (round robin goes to the one offered longest ago)
    missed: int = 0  # offers in a row that rang out
    zendesk: Chosen | None = None  # their availability in Zendesk, when the bridge can read it (None: unknown)
    zendesk_at: datetime | None = None  # when Zendesk's word last changed
    day: str | None = None  # the UTC day `calls` counts (ISO date)
    calls: int = 0  # calls they answered that day
    handled: tuple[float, ...] = ()  # the handle times (seconds) of their last calls, the latest last (estimate.py)


def busy_now(agent: Agent, now: datetime) -> Busy | None:
    """Return what keeps the agent busy now; a reservation or wrap-up whose time is up keeps nobody."""
    if agent.busy in ("ringing", "wrap_up") and agent.busy_until is not None and agent.busy_until <= now:
        return None
    return agent.busy


def softphone_gone(agent: Agent, now: datetime, policy: PresencePolicy) -> bool:
    """Tell whether the agent's softphone went away (closed tab, lost network): no sign of life for a while."""
    if agent.seen_at is None:
        return False
    return agent.left or now - agent.seen_at > timedelta(seconds=policy.presence_timeout)


def gone_since(agent: Agent, policy: PresencePolicy) -> datetime | None:
    """Return when the agent's softphone went away: its goodbye, else the end of its last sign of life's timeout."""
    if agent.seen_at is None:
        return None
    return agent.seen_at if agent.left else agent.seen_at + timedelta(seconds=policy.presence_timeout)


def held_by_zendesk(agent: Agent) -> bool:
    """Tell whether Zendesk keeps an agent who chose `available` from calls: away or offline there."""
    return agent.chosen == "available" and agent.zendesk in ("away", "offline")


def presence(agent: Agent, now: datetime, policy: PresencePolicy) -> Chosen:
    """Return the status the agent counts as: their choice, offline while their softphone is gone, or Zendesk's.

    Zendesk's away or offline counts only while the agent chose `available`: their own choice is kept, and
    comes back into force the moment Zendesk says they are online (or the bridge can no longer read it).
    """
    if softphone_gone(agent, now, policy):
        return "offline"
    if held_by_zendesk(agent) and agent.zendesk is not None:
        return agent.zendesk
    return agent.chosen


def offerable(agent: Agent, now: datetime, policy: PresencePolicy) -> bool:
    """Tell whether a call may be offered to the agent now: available (Zendesk included) and not busy."""
    return presence(agent, now, policy) == "available" and busy_now(agent, now) is None


def status(agent: Agent, now: datetime, policy: PresencePolicy) -> str:
    """Return the one word that says where the agent is: their busy status, else their presence."""
    return busy_now(agent, now) or presence(agent, now, policy)


def since(agent: Agent, now: datetime, policy: PresencePolicy) -> datetime | None:
    """Return when the agent entered the status `status` reports."""
    if busy_now(agent, now) is not None:
        return agent.busy_since
    if softphone_gone(agent, now, policy):
        return gone_since(agent, policy)
    if held_by_zendesk(agent) and agent.zendesk_at is not None:
        return max(agent.zendesk_at, agent.chosen_at) if agent.chosen_at is not None else agent.zendesk_at
    return agent.chosen_at


def choose(agent: Agent, chosen: Chosen, now: datetime, by: str) -> Agent:
    """Set the agent's chosen status; coming back to available starts their idle time and forgets misses."""
    if chosen not in CHOSEN:
        raise ValueError(f"{chosen!r} is not a status: use one of {', '.join(CHOSEN)}")
    back = chosen == "available" and agent.chosen != "available"
    return replace(
        agent,
        chosen=chosen,
        chosen_at=now if chosen != agent.chosen else agent.chosen_at or now,
        chosen_by=by,
        reason=None,
        missed=0 if chosen == "available" else agent.missed,
        idle_since=now if back or agent.idle_since is None else agent.idle_since,
    )


def zendesk_said(agent: Agent, status: Chosen | None, now: datetime) -> Agent:
    """Record the agent's availability in Zendesk (None: unknown); back from away or offline there, idle from now."""
    if status == agent.zendesk:
        return agent
    back = agent.zendesk in ("away", "offline") and status not in ("away", "offline")
    return replace(agent, zendesk=status, zendesk_at=now, idle_since=now if back else agent.idle_since)


def seen(agent: Agent, now: datetime, policy: PresencePolicy) -> Agent:
    """Record a sign of life from the agent's softphone; one that comes back is idle from now."""
    back = agent.seen_at is None or softphone_gone(agent, now, policy)
    return replace(agent, seen_at=now, left=False, idle_since=now if back else agent.idle_since)


def went_away(agent: Agent, now: datetime) -> Agent:
    """Record that the softphone said goodbye (the page closed): offline at once, not after the timeout."""
    return replace(agent, seen_at=now, left=True)


def reserve(agent: Agent, call_sid: str, now: datetime, until: datetime) -> Agent:
    """Hold the agent for an offer of a call until `until` (the offer's deadline)."""
    return replace(agent, busy="ringing", busy_call=call_sid, busy_since=now, busy_until=until, offered_at=now)


def ringing(agent: Agent, call_sid: str, now: datetime, until: datetime) -> Agent:
    """Record that a call rings the agent (an offer the bridge did not reserve, such as one rung before)."""
    if busy_now(agent, now) is not None and agent.busy_call != call_sid:
        return agent  # busy with another call: that one wins; this ring ends on its own
    if agent.busy_call == call_sid and agent.busy in ("on_call", "wrap_up"):
        return agent  # a late `ringing` of a leg already answered
    if agent.busy_call == call_sid and agent.busy == "ringing":
        return agent
    return reserve(agent, call_sid, now, until)


def answered(agent: Agent, call_sid: str, now: datetime) -> Agent:
    """Record that the agent took the call: on it until it ends; misses in a row start again."""
    if agent.busy_call == call_sid and agent.busy in ("on_call", "wrap_up"):
        return agent
    day = now.date().isoformat()
    calls = agent.calls + 1 if agent.day == day else 1
    return replace(
        agent, busy="on_call", busy_call=call_sid, busy_since=now, busy_until=None, missed=0, day=day, calls=calls
    )


def calls_today(agent: Agent, now: datetime) -> int:
    """Return how many calls the agent answered today (UTC)."""
    return agent.calls if agent.day == now.date().isoformat() else 0


def call_ended(agent: Agent, call_sid: str, now: datetime, policy: PresencePolicy) -> Agent:
    """Record that the agent's call is over: wrap-up for a while when there is one, then free."""
    if agent.busy_call != call_sid or agent.busy not in ("on_call", "ringing"):
        return agent
    if policy.wrap_up_seconds > 0:
        until = now + timedelta(seconds=policy.wrap_up_seconds)
        return replace(agent, busy="wrap_up", busy_since=now, busy_until=until, idle_since=until, missed=0)
    return _free(agent, now, idle=True)


def released(agent: Agent, call_sid: str, now: datetime, policy: PresencePolicy, *, missed: bool) -> Agent:
    """Record that an offer of the call stopped ringing the agent; one that rang out counts as missed.

    After MISSED_OFFERS_AWAY misses in a row the agent is set away, and the softphone says why.
    """
    if agent.busy_call != call_sid or agent.busy != "ringing":
        return agent
    free = _free(agent, now, idle=False)
    if not missed:
        return free
    count = agent.missed + 1
    if policy.missed_offers_away and count >= policy.missed_offers_away and agent.chosen == "available":
        return replace(free, missed=count, chosen="away", chosen_at=now, chosen_by="bridge", reason=MISSED_OFFERS)
    return replace(free, missed=count)


def end_wrap_up(agent: Agent, now: datetime) -> Agent:
    """End the agent's wrap-up early (they are ready for the next call)."""
    if busy_now(agent, now) != "wrap_up":
        return agent
    return _free(agent, now, idle=True)


def _free(agent: Agent, now: datetime, *, idle: bool) -> Agent:
    """Return the agent free of any call; `idle` starts their idle time now (a call ended, not a ring)."""
    return replace(
        agent,
        busy=None,
        busy_call=None,
        busy_since=None,
        busy_until=None,
        idle_since=now if idle else agent.idle_since,
    )
