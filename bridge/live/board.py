"""The live view's whole board, pure: every line's queue, agents and day, as the page and GET /live show it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from bridge.core import presence
from bridge.core.lines import Line, Lines
from bridge.core.phones import is_client, mask
from bridge.core.presence import Agent, PresencePolicy
from bridge.core.routing import Waiting, positions
from bridge.live.figures import Arrived, Day, day_of, inbound_on, line_of, per_hour, today


@dataclass(frozen=True)
class Rows:
    """What the board is made of, as the store holds it now."""

    agents: Sequence[Agent]
    waiting: Sequence[Waiting]
    arrived: Sequence[Arrived]  # calls that arrived within `windows(days(...))`
    callbacks: Sequence[Mapping[str, Any]] | None = None  # pending callbacks, when the bridge keeps them


@dataclass(frozen=True)
class Settings:
    """What shapes the board: the lines, their time zones, presence's policy and the service level's threshold."""

    lines: Lines
    policy: PresencePolicy
    service_level: float = 20.0
    zones: Mapping[str, tzinfo] = field(default_factory=dict)  # line key -> time zone, where it has one


def zone_of(line: Line, zones: Mapping[str, tzinfo]) -> tzinfo | None:
    """Return the time zone a line's day is counted in (None: UTC)."""
    return zones.get(line.key) or (line.hours.zone if line.hours is not None else None)


def days(settings: Settings, now: datetime, weeks_back: int = 0) -> list[Day]:
    """Return each line's today (or the same day `weeks_back` weeks before): the store reads their calls."""
    return [day_of(now, zone_of(line, settings.zones), weeks_back) for line in settings.lines.all]


def board(rows: Rows, settings: Settings, now: datetime) -> dict[str, Any]:
    """Return the whole board as JSON-ready data."""
    lines = settings.lines
    calls = {row.call.sid: row.call for row in rows.arrived}
    agents = [agent_view(agent, now, settings, calls) for agent in rows.agents]
    places = positions(rows.waiting)
    result: dict[str, Any] = {
        "at": now.isoformat(),
        "service_level_seconds": settings.service_level,
        "lines": [line_view(line, rows, settings, now, agents, places) for line in lines.all],
        "agents": agents,
    }
    if rows.callbacks is not None:
        result["callbacks"] = list(rows.callbacks)
    return result


def line_view(
    line: Line,
    rows: Rows,
    settings: Settings,
    now: datetime,
    agents: Sequence[Mapping[str, Any]],
    places: Mapping[str, int],
) -> dict[str, Any]:
    """Return one line's queue, available agents and day."""
    zone = zone_of(line, settings.zones)
    day, week_ago = day_of(now, zone), day_of(now, zone, 1)
    waiting = sorted(
        (caller for caller in rows.waiting if settings.lines.get(caller.line).key == line.key),
        key=lambda caller: places.get(caller.call_sid, 0),
    )
    figures = today(inbound_on(rows.arrived, line.key, settings.lines, day), now, settings.service_level, day)
    last_week = per_hour(inbound_on(rows.arrived, line.key, settings.lines, week_ago), week_ago)
    return {
        "key": line.key,
        "name": line.label(),
        "timezone": str(zone) if zone is not None else "UTC",
        "day": day.date,
        "callers_waiting": len(waiting),
        "longest_wait": round(max((caller.waited(now) for caller in waiting), default=0.0)),
        "waiting": [
            {
                "position": places.get(caller.call_sid),
                "caller": mask(caller.caller),
                "wait": round(caller.waited(now)),
                "state": "ringing" if caller.being_offered(now) else "waiting",
            }
            for caller in waiting
        ],
        "agents_available": sum(1 for agent in agents if agent["status"] == "available" and line.key in agent["lines"]),
        "today": figures.as_json(),
        "per_hour": {"today": list(figures.per_hour), "last_week": list(last_week), "last_week_day": week_ago.date},
    }


def agent_view(agent: Agent, now: datetime, settings: Settings, calls: Mapping[str, Any]) -> dict[str, Any]:
    """Return one agent's status, how long they have been in it, what they are on, and the lines they serve."""
    policy = settings.policy
    since = presence.since(agent, now, policy)
    busy = presence.busy_now(agent, now)
    on: dict[str, Any] | None = None
    if busy is not None and agent.busy_call is not None:
        call = calls.get(agent.busy_call)
        on = {"state": busy}
        if call is not None:
            inbound = call.direction == "inbound"
            on["line"] = settings.lines.get(line_of(call, settings.lines)).label()
            on["caller"] = mask(call.from_number if inbound else call.to_number)
            on["direction"] = call.direction
    return {
        "identity": agent.identity,
        "name": agent.identity.removeprefix("client:") if is_client(agent.identity) else mask(agent.identity),
        "zendesk_id": agent.zendesk_id,
        "status": presence.status(agent, now, policy),
        "chosen": agent.chosen,
        "chosen_by": agent.chosen_by,
        "since": since.isoformat() if since is not None else None,
        "seconds": round((now - since).total_seconds()) if since is not None else None,
        "on": on,
        "lines": [line.key for line in settings.lines.of_agent(agent.identity)],
        "calls_today": presence.calls_today(agent, now),
    }
