"""The stored form of routing's rows: an agent's presence and a waiting caller, as JSON text with epoch times."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bridge.core.call_model import Call
from bridge.core.clock import from_epoch, to_epoch
from bridge.core.presence import Agent
from bridge.core.routing import Missed, Preferred, Waiting

_AGENT_TIMES = frozenset(
    field.name for field in dataclasses.fields(Agent) if "datetime" in str(field.type)
)  # chosen_at, busy_since, … : kept as epoch seconds
_WAITING_TIMES = frozenset({"arrived_at", "offered_until"})


def agent_text(agent: Agent) -> str:
    """Return an agent's presence as the `agents` table keeps it (the identity is the row's key)."""
    fields = {name: value for name, value in dataclasses.asdict(agent).items() if name != "identity"}
    return _dumps({name: _out(value) if name in _AGENT_TIMES else value for name, value in fields.items()})


def agent_from(identity: str, text: str) -> Agent:
    """Rebuild an agent's presence from its row; fields stored before they existed take their defaults."""
    known = {field.name for field in dataclasses.fields(Agent)}
    fields: dict[str, Any] = {
        name: _in(value) if name in _AGENT_TIMES else value for name, value in json.loads(text).items() if name in known
    }
    if "handled" in fields:
        fields["handled"] = tuple(float(seconds) for seconds in fields["handled"])
    return Agent(identity=identity, **fields)


def waiting_text(waiting: Waiting) -> str:
    """Return a waiting caller as the `waiting` table keeps it."""
    return _dumps(
        {
            "call_sid": waiting.call_sid,
            "arrived_at": to_epoch(waiting.arrived_at),
            "line": waiting.line,
            "priority": waiting.priority,
            "queued": waiting.queued,
            "offered_to": list(waiting.offered_to),
            "offered_until": _out(waiting.offered_until),
            "missed": [[miss.identity, to_epoch(miss.at)] for miss in waiting.missed],
            "moves": waiting.moves,
            "caller": waiting.caller,
            **_known_customer(waiting),
            **({"room": True} if waiting.room else {}),
            **({"callback": waiting.callback, "retry_at": _out(waiting.retry_at)} if waiting.callback else {}),
        }
    )


def _known_customer(waiting: Waiting) -> dict[str, Any]:
    """Return what routing that knows the customer adds to a row, only when it has something (rows stay short)."""
    out: dict[str, Any] = {}
    if waiting.preferred:
        out["preferred"] = [[preferred.ticket_id, preferred.identity] for preferred in waiting.preferred]
    if waiting.offered_ticket is not None:
        out["offered_ticket"] = waiting.offered_ticket
    return out


def waiting_from(text: str) -> Waiting:
    """Rebuild a waiting caller from its row."""
    raw = json.loads(text)
    return Waiting(
        call_sid=raw["call_sid"],
        arrived_at=from_epoch(raw["arrived_at"]),
        line=raw.get("line", "default"),
        priority=int(raw.get("priority", 0)),
        queued=bool(raw.get("queued", False)),
        offered_to=tuple(raw.get("offered_to", ())),
        offered_until=_in(raw.get("offered_until")),
        missed=tuple(Missed(identity, from_epoch(at)) for identity, at in raw.get("missed", ())),
        moves=int(raw.get("moves", 0)),
        caller=raw.get("caller"),
        preferred=tuple(Preferred(int(ticket), str(identity)) for ticket, identity in raw.get("preferred", ())),
        offered_ticket=raw.get("offered_ticket"),
        room=bool(raw.get("room", False)),
        callback=raw.get("callback"),
        retry_at=_in(raw.get("retry_at")),
    )


class ParsedRows:
    """The routing rows of the last full read, parsed: a row whose text has not changed is not parsed again.

    Every routing decision reads every agent and every waiting caller. Parsing them all each time (300
    agents and 500 callers: about 10 ms of the one SQLite thread, under the routing lock) was most of a
    decision's cost, while a decision changes a handful of rows. The text stays the truth: a row is reused
    only when it holds exactly the text it was parsed from, and the parsed rows are immutable. Each full
    read keeps only the rows it saw, so what is kept is bounded by the agents and the queue.
    """

    def __init__(self) -> None:
        """Start with nothing parsed."""
        self._agents: dict[tuple[str, str], Agent] = {}
        self._waiting: dict[str, Waiting] = {}

    def agents(self, rows: Iterable[tuple[str, str]]) -> tuple[Agent, ...]:
        """Return every agent from a full read of (identity, state) rows, in the rows' order."""
        known, fresh = self._agents, {}
        for row in rows:
            fresh[row] = known.get(row) or agent_from(*row)
        self._agents = fresh  # one assignment: a read in another thread sees the old or the new, both correct
        return tuple(fresh.values())

    def waiting(self, texts: Iterable[str]) -> tuple[Waiting, ...]:
        """Return every waiting caller from a full read of their rows' text, in the rows' order."""
        known, fresh = self._waiting, {}
        for text in texts:
            fresh[text] = known.get(text) or waiting_from(text)
        self._waiting = fresh
        return tuple(fresh.values())


class ParsedCalls:
    """The calls of the last read of a span of arrivals, parsed: a row whose state has not changed is reused.

    The live view reads a day of calls every half second; parsing thousands of states each time would hold
    the event loop for a tenth of a second, while a handful change between two reads. It reads two spans in
    turn (today, and the same day a week before), so the rows of the last two reads are kept; the state's
    text decides, as for ParsedRows.
    """

    def __init__(self) -> None:
        """Start with nothing parsed."""
        self._older: dict[tuple[str, str], Call] = {}
        self._last: dict[tuple[str, str], Call] = {}

    def calls(self, rows: Iterable[tuple[str, str]]) -> list[Call]:
        """Return each call of a read of (call_sid, state) rows, in the rows' order."""
        older, last, fresh = self._older, self._last, {}
        for row in rows:
            fresh[row] = last.get(row) or older.get(row) or Call.model_validate_json(row[1])
        self._older, self._last = last, fresh
        return list(fresh.values())


def _out(moment: datetime | None) -> float | None:
    """Return an instant as epoch seconds for JSON."""
    return to_epoch(moment) if moment is not None else None


def _in(seconds: Any) -> datetime | None:
    """Return epoch seconds from JSON as an instant."""
    return from_epoch(float(seconds)) if seconds is not None else None


def _dumps(value: dict[str, Any]) -> str:
    """Write compact JSON."""
    return json.dumps(value, separators=(",", ":"))
