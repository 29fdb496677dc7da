"""Agents' availability in Zendesk, read for routing: an agent away or offline there is not offered calls.

Zendesk docs, Agent Availability API, "Get an agent's availability": `GET /api/v2/agent_availabilities/
{agent_id}`, allowed for admins only. Its answer is a JSON:API compound document: the agent's
`agent_availabilities` resource (with their unified `agent_status` where the account has unified agent
statuses) and one included `channels` resource per channel, whose `status` is online, away, transfers_only
or offline. The `talk` channel's is the one for calls; with unified statuses it is what the agent's status
(a custom one too) means for Talk. Zendesk's Talk Partner Edition guide, "Reading and modifying the unified
agent state", recommends these APIs so that an agent busy elsewhere is not offered a call. The older Talk
endpoint, `GET /api/v2/channels/voice/availabilities/{agent_id}` (agent_state, call_status, via), tells the
state of Zendesk Talk's own softphone (`via`: client or phone), which the bridge's agents do not use.

Only what Zendesk says is kept, beside the agent's own choice (`bridge.core.presence`). When Zendesk refuses
(an agent's token: the endpoint is for admins) or has no such endpoint, the bridge says so once, forgets
whatever Zendesk said before, and routes on its own presence; it asks again now and then, quietly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bridge.core.presence import Chosen
from bridge.ops.repeating import Repeating
from bridge.zendesk.client import AuthFailed, NotFound, RateLimited, ZendeskClient, ZendeskError

log = logging.getLogger("bridge.zendesk")

# Zendesk's channel statuses as routing reads them: transfers-only takes only transfers from other agents
# (Zendesk docs, Unified Agent Status API: "Can only receive work from other agents"), and a call to the
# line is not one.
_STATUS: dict[str, Chosen] = {"online": "available", "away": "away", "transfers_only": "away", "offline": "offline"}
SHARE = 0.1  # at most this share of ZENDESK_RATE_LIMIT goes to reading availability
ASK_AGAIN = 600.0  # after a refusal: a role can change without a restart
STALE_ROUNDS = 3  # a word Zendesk has not repeated for this many rounds no longer counts
NEEDS = (
    "GET /api/v2/agent_availabilities is allowed for admins only: give the bridge an admin's API token (or "
    "OAuth token) to keep agents away or offline in Zendesk from calls; ZENDESK_AVAILABILITY_SECONDS=0 stops asking"
)


def talk_status(document: Mapping[str, Any]) -> Chosen | None:
    """Return what an agent's availability document says for calls (None: it says nothing routing can use)."""
    for item in document.get("included") or ():
        if isinstance(item, dict) and item.get("type") == "channels":
            attributes = item.get("attributes") or {}
            if attributes.get("name") == "talk":
                return _STATUS.get(str(attributes.get("status")).lower())
    data = document.get("data")
    attributes = data.get("attributes") if isinstance(data, dict) else None
    unified = attributes.get("agent_status") if isinstance(attributes, dict) else None
    name = unified.get("name") if isinstance(unified, dict) else None
    return _STATUS.get(str(name).lower()) if name else None


async def read_status(zendesk: ZendeskClient, agent_id: int) -> Chosen | None:
    """Read one agent's availability for calls from Zendesk; raises AuthFailed, NotFound, ZendeskError."""
    return talk_status(await zendesk.agent_availability(agent_id))


def endpoint_missing(exc: NotFound) -> bool:
    """Tell a 404 for the endpoint itself (an account without the API) from one for the agent."""
    return "InvalidEndpoint" in exc.body


def pace(agents: int, interval: float, per_minute: int) -> float:
    """Return the seconds between rounds: `interval`, stretched to keep a round's requests within SHARE."""
    return max(interval, agents * 60.0 / max(1.0, per_minute * SHARE))


class AvailabilityPoller(Repeating):
    """Read the configured agents' availability in Zendesk every so often, and tell routing what changed."""

    def __init__(
        self,
        zendesk: ZendeskClient,
        agents: Mapping[str, int],
        tell: Callable[[str, Chosen | None], Awaitable[object]],
        *,
        interval: float,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Bind the client (its session, rate limiter and all), the agents and `tell(identity, status)`."""
        super().__init__("zendesk availability", pace(len(agents), interval, per_minute))
        self._zendesk = zendesk
        self._agents = dict(agents)
        self._tell = tell
        self._clock = clock
        # When Zendesk last answered for each agent; what an earlier run stored counts as heard now.
        self._heard: dict[str, float] = dict.fromkeys(self._agents, clock())
        self._failing: set[str] = set()  # agents whose last read failed (said once per streak)
        self.refused: str | None = None  # why Zendesk's word does not count now (said once)

    async def round(self) -> float:
        """Read every agent once and tell routing; return the seconds until the next round."""
        started = self._clock()
        await self._forget_stale(started)
        for identity, agent_id in self._agents.items():
            try:
                status = await read_status(self._zendesk, agent_id)
            except AuthFailed as exc:
                return await self._unusable(f"Zendesk refused to show agents' availability (HTTP {exc.status})")
            except NotFound as exc:
                if endpoint_missing(exc):
                    return await self._unusable("this Zendesk account has no Agent Availability API (HTTP 404)")
                status = None  # Zendesk keeps no availability for this user (not an agent)
            except RateLimited as exc:  # the rest of the round would only be refused too
                self._failed(identity, exc)
                return max(self.interval, exc.retry_after)
            except ZendeskError as exc:  # 5xx, no answer: the last word counts a while longer
                self._failed(identity, exc)
                continue
            if self.refused is not None:
                log.info("zendesk availability: readable again; agents away or offline in Zendesk get no calls")
                self.refused = None
            self._failing.discard(identity)
            self._heard[identity] = started
            await self._tell(identity, status)
        return self.interval

    async def _unusable(self, why: str) -> float:
        """Say once why Zendesk's word cannot count, forget what it said, and ask again much later."""
        if self.refused is None:
            log.info("zendesk availability: %s; routing uses the bridge's own presence. %s", why, NEEDS)
        self.refused = why
        self._heard.clear()
        for identity in self._agents:
            await self._tell(identity, None)
        return max(ASK_AGAIN, self.interval)

    def _failed(self, identity: str, exc: ZendeskError) -> None:
        """Say once per streak of failures that an agent's availability could not be read."""
        if identity not in self._failing:
            self._failing.add(identity)
            stale = STALE_ROUNDS * self.interval
            log.warning(
                "zendesk availability: could not read %s's (%s); what Zendesk said last counts for up to %.0f s",
                identity,
                exc,
                stale,
            )

    async def _forget_stale(self, now: float) -> None:
        """Let go of what Zendesk has not repeated for STALE_ROUNDS rounds: an outage keeps nobody from calls."""
        stale = STALE_ROUNDS * self.interval
        for identity, heard in list(self._heard.items()):
            if now - heard > stale:
                del self._heard[identity]
                await self._tell(identity, None)
