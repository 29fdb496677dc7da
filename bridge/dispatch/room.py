"""Hold and resume a call: the bridge's side of the softphone's controls on a call in progress.

The first hold moves the call into its room (bridge.core.call_room): the customer waits there with the hold
music, the agent's own leg ends with the ring that connected it, and Resume brings the agent back in from their
softphone. In the room, a hold is Twilio's own participant hold. What Twilio confirmed is what the call records:
a request Twilio refused leaves the call as it was.
"""

from __future__ import annotations

import logging

from bridge.core import call_room
from bridge.core.calls import Call
from bridge.core.clock import Clock
from bridge.core.events import CallEvent, EventKind
from bridge.ingest import Ingest
from bridge.twilio.rest import TwilioError
from bridge.twilio.room import RoomApi

log = logging.getLogger("bridge.room")


class ControlFailed(Exception):
    """A control could not be carried out; the message says what the agent can do."""

    def __init__(self, message: str, status: int = 409) -> None:
        """Keep the message and the HTTP status that fits it."""
        super().__init__(message)
        self.status = status


class RoomControl:
    """Hold and resume calls, deciding through the store and acting through Twilio's REST API."""

    def __init__(self, ingest: Ingest, api: RoomApi | None, clock: Clock) -> None:
        """Bind the way into the store, Twilio's API (None: no Twilio account set) and the clock."""
        self._ingest = ingest
        self._api = api
        self._clock = clock

    def _need_api(self) -> RoomApi:
        """Return Twilio's API, or refuse: without TWILIO_ACCOUNT_SID the bridge cannot act on live calls."""
        if self._api is None:
            raise ControlFailed("Hold needs TWILIO_ACCOUNT_SID and an API key: ask your admin to set them.", 503)
        return self._api

    async def _note(self, call: Call, what: str, request: str) -> Call | None:
        """Record one thing the bridge did in the call's room (once per request)."""
        event = CallEvent(kind=EventKind.ROOM, call_sid=call.sid, at=self._clock(), status=what, leg_sid=call.sid)
        ingested = await self._ingest([f"room|{what}|{call.sid}|{request}"], event)
        return ingested.outcome.call if ingested.outcome is not None else await self._ingest.current(call.sid)

    async def hold(self, call: Call, request: str, line: str | None) -> Call | None:
        """Put the customer on hold: into the room the first time, else Twilio's participant hold."""
        api = self._need_api()
        if call.room is None:
            await self._note(call, "moving", request)
            try:
                await api.move_in(call.sid)
            except TwilioError as exc:
                log.warning("call %s: moving it into its room failed: %s", call.sid, exc)
                await self._note(call, "stayed", request)
                raise ControlFailed(_twilio_said(exc, "put the call on hold"), 502) from exc
            return await self._ingest.current(call.sid)
        seen = call_room.spans(call.room)
        if seen.on_hold:
            return call  # already on hold: a second click changes nothing
        if call.room.provider_id is None:
            raise ControlFailed("The call is still being connected: try again in a moment.")
        try:
            await api.hold(call.room.provider_id, call.sid, on=True, line=line)
        except TwilioError as exc:
            raise ControlFailed(_twilio_said(exc, "put the call on hold"), 502) from exc
        return await self._note(call, "hold", request)

    async def resume(self, call: Call, request: str) -> tuple[Call | None, bool]:
        """Take the customer off hold; say True when the agent's softphone must join the room itself."""
        if call.room is None or not call_room.spans(call.room).on_hold:
            return call, False  # not on hold: nothing to resume
        seen = call_room.spans(call.room)
        if not seen.agents_now:
            return call, True  # nobody with the customer: the agent comes back in from their softphone
        if call.room.provider_id is None:
            raise ControlFailed("The call is still being connected: try again in a moment.")
        try:
            await self._need_api().hold(call.room.provider_id, call.sid, on=False, line=None)
        except TwilioError as exc:
            raise ControlFailed(_twilio_said(exc, "take the call off hold"), 502) from exc
        return await self._note(call, "unhold", request), False


def _twilio_said(exc: TwilioError, what: str) -> str:
    """Say what went wrong at Twilio in the agent's words, and what to do."""
    if exc.code in (21220, 20404):
        return f"Could not {what}: the call has already ended."
    if exc.status == 429 or exc.status >= 500 or exc.status == 0:
        return f"Could not {what}: Twilio did not answer in time. Try again."
    return f"Could not {what}: Twilio refused ({exc.code or exc.status}). Ask your admin to run `bridge doctor`."
