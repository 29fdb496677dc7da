"""What the softphone's controls share: the call an agent is on, a click, a control, and a refusal in words."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from bridge.core.calls import Call
from bridge.core.events import CallEvent
from bridge.dispatch.room import RoomControl
from bridge.ingest import Ingest
from bridge.ops.settings import Settings
from bridge.store import Store
from bridge.twilio.controls import Recorded
from bridge.twilio.rest import TwilioApi

_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    403: web.HTTPForbidden,
    409: web.HTTPConflict,
    502: web.HTTPBadGateway,
    503: web.HTTPServiceUnavailable,
}


def refused(status: int, text: str) -> web.HTTPException:
    """Return the error to raise: `status`, and `{"error": text}` saying what the agent can do about it."""
    return _ERRORS[status](reason=text)


@dataclass(frozen=True)
class OnCall:
    """The call an agent is on now, as the store holds it."""

    call: Call  # the parent call
    leg: str  # the agent's own leg: a dialed leg, or the parent itself for their call out
    identity: str  # client:NAME


@dataclass(frozen=True)
class Context:
    """What the controls use: the settings, the store, the ingest, the clock, Twilio's API (None without one)."""

    settings: Settings
    store: Store
    ingest: Ingest
    now: datetime
    twilio: TwilioApi | None
    room: RoomControl | None = None  # hold, transfers and the call's room (bridge.dispatch.room)

    def recorded(self, on: OnCall) -> Recorded:
        """Return where the call's live recording is: the parent call's own <Dial record> recording.

        Once the call is in a room (a conference), it is the room's: `Recorded(sid, conference_sid=CF…)`.
        """
        room = on.call.room
        if room is not None and room.provider_id is not None:
            return Recorded(on.call.sid, conference_sid=room.provider_id)
        return Recorded(on.call.sid)


@dataclass(frozen=True)
class Command:
    """One click: the action, its target (transfers), and the click's own id."""

    on: OnCall
    action: str
    target: dict[str, Any] | None
    request: str


@dataclass(frozen=True)
class Control:
    """One action of the page: why it cannot work now (None: it can), and what it does.

    `act` returns the event Twilio's answer confirms, for the store to record; None when the act recorded what it
    did itself (the room's controls, which record each step as Twilio takes it).
    """

    why_not: Callable[[Context, OnCall], str | None]
    act: Callable[[Context, Command], Awaitable[CallEvent | None]]
