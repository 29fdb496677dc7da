"""The agent's own status, as the softphone shows and changes it: read it, choose it, end wrap-up, say goodbye.

The session the page carries names the agent; nothing the page sends can name another. Every read counts
as the softphone's sign of life (routing offers calls only to agents whose softphone still answers), and
the goodbye on the page's close makes them offline at once instead of after PRESENCE_TIMEOUT_SECONDS.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bridge.core import presence
from bridge.core.presence import MISSED_OFFERS, Agent, Chosen, PresencePolicy
from bridge.core.routing import Waiting
from bridge.dispatch import Desk
from bridge.softphone.identity import Session

CHECK_IN_SECONDS = 15.0  # how often the page checks in (docs/softphone.md, "Your status")
BY = "agent"  # who set the status, as `bridge agents` and the log say it: the agent, in their softphone


class NotYours(Exception):
    """The session's agent is not, or no longer, this identity in AGENTS (the message says what to do)."""


class BadChoice(ValueError):
    """A body that is not `{"status": "available" | "away" | "offline"}`."""


def identity_of(desk: Desk, session: Session) -> str:
    """Return the identity in AGENTS the session's agent is, or raise NotYours."""
    identity = f"client:{session.identity}"
    zendesk_id = desk.routes.agents.get(identity)
    if zendesk_id is None:
        raise NotYours(f"{identity} is not in AGENTS: ask an admin to add {identity}={session.agent_id}")
    if zendesk_id != session.agent_id:
        # AGENTS changed since Zendesk signed this agent in: the session speaks for someone else now.
        raise NotYours(f"{identity} is another Zendesk user in AGENTS now: reload Zendesk to sign in again")
    return identity


def parse_choice(body: object) -> Chosen:
    """Return the status a request body chooses, or raise BadChoice saying what is expected."""
    allowed = " | ".join(f'"{chosen}"' for chosen in presence.CHOSEN)
    if not isinstance(body, dict) or set(body) != {"status"}:
        raise BadChoice(f'the body must be {{"status": {allowed}}} and nothing else')
    status = body["status"]
    for chosen in presence.CHOSEN:
        if status == chosen:
            return chosen
    raise BadChoice(f"{str(status)[:40]!r} is not a status: use one of {allowed}")


def check_in_seconds(policy: PresencePolicy) -> float:
    """Return how often the page checks in: every 15 s, more often when the timeout is short."""
    # Three check-ins fit in the timeout, so one lost on the network never makes the agent offline.
    return min(CHECK_IN_SECONDS, policy.presence_timeout / 3)


def why(agent: Agent) -> str | None:
    """Say, in words the agent reads, why the bridge chose their status for them; None when it did not."""
    if agent.reason != MISSED_OFFERS or agent.chosen != "away":
        return None
    missed = "a call offered to you" if agent.missed <= 1 else f"{agent.missed} calls in a row offered to you"
    return f"The bridge set you away: {missed} rang out. Choose Available when you are back."


def view(agent: Agent, now: datetime, policy: PresencePolicy) -> dict[str, Any]:
    """Return what the page shows of the agent's presence (JSON)."""
    busy = presence.busy_now(agent, now)
    since = presence.since(agent, now, policy)
    return {
        "identity": agent.identity,
        "chosen": agent.chosen,
        "chosen_by": agent.chosen_by,
        "busy": busy,
        "status": presence.status(agent, now, policy),
        "since": since.isoformat() if since is not None else None,
        "wrap_up_until": agent.busy_until.isoformat() if busy == "wrap_up" and agent.busy_until else None,
        "reason": agent.reason,
        "why": why(agent),
        "check_in_seconds": check_in_seconds(policy),
    }


def line_up(identity: str, waiting: list[Waiting], serves: Mapping[str, frozenset[str]] | None) -> dict[str, Any]:
    """Return who waits on the agent's lines: callers holding the line, and callbacks kept in their place."""
    lines = serves.get(identity, frozenset()) if serves is not None else None
    mine = [row for row in waiting if lines is None or row.line in lines]
    callbacks = sum(1 for row in mine if row.callback is not None)
    return {"waiting": len(mine) - callbacks, "callbacks": callbacks}


class Presence:
    """What the softphone asks of the desk for the agent a session names."""

    def __init__(self, desk: Desk, session: Session) -> None:
        """Bind the desk and the verified session."""
        self._desk = desk
        self.identity = identity_of(desk, session)

    async def check_in(self, now: datetime) -> dict[str, Any]:
        """Record the softphone's sign of life and return the agent's presence, with who waits on their lines."""
        shown = self._view(await self._desk.seen(self.identity), now)
        serves = self._desk.routes.policy.serves
        return shown | {"queue": line_up(self.identity, await self._desk.waiting(), serves)}

    async def choose(self, body: object, now: datetime) -> dict[str, Any]:
        """Set the agent's chosen status from a request body (nothing is stored when it is not one)."""
        chosen = parse_choice(body)
        await self._desk.seen(self.identity)  # choosing in the softphone is a sign of life too
        return self._view(await self._desk.choose(self.identity, chosen, by=BY), now)

    async def end_wrap_up(self, now: datetime) -> dict[str, Any]:
        """End the agent's wrap-up (nothing changes when they are not in one) and return their presence."""
        return self._view(await self._desk.end_wrap_up(self.identity), now)

    async def goodbye(self) -> None:
        """Record that the agent's softphone closed: offline at once."""
        await self._desk.goodbye(self.identity)

    def _view(self, agent: Agent, now: datetime) -> dict[str, Any]:
        return view(agent, now, self._desk.routes.policy.presence)
