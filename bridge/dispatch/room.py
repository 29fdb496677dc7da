"""Hold and resume a call: the bridge's side of the softphone's controls on a call in progress.

The first hold moves the call into its room (bridge.core.call_room): the customer waits there with the hold
music, the agent's own leg ends with the ring that connected it, and Resume brings the agent back in from their
softphone. In the room, a hold is Twilio's own participant hold. What Twilio confirmed is what the call records:
a request Twilio refused leaves the call as it was.

Every hold and unhold the bridge makes is noted by the bridge too, not left to the room's own report of it: Twilio
dates its conference status callbacks to the whole second (`Timestamp`, RFC 2822), so its report of an unhold can
sort before the bridge's note of a hold made earlier in that same second.
"""

from __future__ import annotations

import logging

from bridge.core import call_room
from bridge.core.calls import Call
from bridge.core.clock import Clock
from bridge.core.events import CallEvent, EventKind
from bridge.core.lines import Lines
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

    def __init__(
        self, ingest: Ingest, api: RoomApi | None, clock: Clock, ring_seconds: int = 15, lines: Lines | None = None
    ) -> None:
        """Bind the store, Twilio's API (None: no Twilio account), the clock, how long invites ring, the lines."""
        self._ingest = ingest
        self._api = api
        self._clock = clock
        self._ring_seconds = ring_seconds
        self._lines = lines or Lines()

    def _need_api(self) -> RoomApi:
        """Return Twilio's API, or refuse: without TWILIO_ACCOUNT_SID the bridge cannot act on live calls."""
        if self._api is None:
            raise ControlFailed("Hold needs TWILIO_ACCOUNT_SID and an API key: ask your admin to set them.", 503)
        return self._api

    async def _note(
        self, call: Call, what: str, request: str, *, label: str | None = None, way: str | None = None, sid: str = ""
    ) -> Call | None:
        """Record one thing the bridge did in the call's room (once per request): about the customer, or `label`."""
        who = {"leg_sid": sid or None, "leg_to": label} if label is not None else {"leg_sid": call.sid}
        event = CallEvent(kind=EventKind.ROOM, call_sid=call.sid, at=self._clock(), status=what, reason=way, **who)
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

    async def _into_fresh_room(
        self, api: RoomApi, call: Call, request: str, what: str, line: str | None = None
    ) -> None:
        """Move the customer into a room of their own, on hold: whoever was with them leaves with the old one."""
        await self._note(call, "moving", request)
        try:
            await api.move_in(call.sid, line)
        except TwilioError as exc:
            await self._note(call, "stayed", request)
            raise ControlFailed(_twilio_said(exc, what), 502) from exc

    async def transfer(self, call: Call, to: str, request: str) -> Call | None:
        """Hand the call to an agent or a number, cold: the customer waits on hold until they answer."""
        api = self._need_api()
        seen = call_room.spans(call.room) if call.room is not None else None
        if seen is not None and seen.pending:
            raise ControlFailed("Someone is already being called into this call: wait, or cancel that first.")
        if seen is None or seen.agents_now or seen.others_now:
            await self._into_fresh_room(api, call, request, "transfer the call")
        await self._invite(api, call, to, request, "transfer", owner=True)
        return await self._ingest.current(call.sid)

    async def transfer_to_line(self, call: Call, line: str, request: str) -> Call | None:
        """Hand the call to a line, cold: the customer waits in its queue, in a room of their own with its music.

        Their place in line is their call's arrival; routing invites the line's agents into the room one at a time
        (bridge.twilio.mover), and the one who answers takes the call.
        """
        api = self._need_api()
        target = self._lines.find(line)
        if target is None:
            raise ControlFailed(f"There is no line {line!r}: choose one of the lines listed.", 404)
        seen = call_room.spans(call.room) if call.room is not None else None
        if seen is not None and seen.in_line == target.key:
            return call  # already waiting there: a second click changes nothing
        if seen is not None and (seen.pending or seen.in_line is not None):
            raise ControlFailed("The call is already being transferred: wait, or cancel that first.")
        # Always a fresh room, even for a customer already alone in one: its hold music is the line's from its start.
        await self._into_fresh_room(
            api, call, request, "transfer the call", target.key if self._lines.configured else None
        )
        await self._note(call, "line", request, label=target.key)
        return await self._ingest.current(call.sid)

    async def consult(self, call: Call, to: str, request: str, line: str | None) -> tuple[Call | None, bool]:
        """Hold the customer and call a colleague in to talk first; True: the agent must come into the room first."""
        api = self._need_api()
        seen, first = await self._agent_inside(call, request, line)
        if seen is None:
            return first, True
        if seen.consulting or seen.pending:
            raise ControlFailed("A consultation is already going on: complete or cancel it first.")
        if not seen.on_hold and call.room is not None and call.room.provider_id is not None:
            try:
                await api.hold(call.room.provider_id, call.sid, on=True, line=line)
            except TwilioError as exc:
                raise ControlFailed(_twilio_said(exc, "hold the customer"), 502) from exc
            await self._note(call, "hold", request)
        await self._invite(api, call, to, request, "consult", owner=False)
        return await self._ingest.current(call.sid), False

    async def _agent_inside(
        self, call: Call, request: str, line: str | None
    ) -> tuple[call_room.Spans | None, Call | None]:
        """Return the room's reading if an agent is in it, else None and the call once held (the agent joins first)."""
        seen = call_room.spans(call.room) if call.room is not None else None
        if seen is None:
            return None, await self.hold(call, request, line)
        return (seen, call) if seen.agents_now else (None, call)

    async def add(self, call: Call, to: str, request: str, line: str | None) -> tuple[Call | None, bool]:
        """Bring a third party into the conversation; True: the agent must come into the room first."""
        api = self._need_api()
        seen, first = await self._agent_inside(call, request, line)
        if seen is None:
            return first, True
        if seen.pending:
            raise ControlFailed("Someone is already being called into this call: wait, or cancel that first.")
        await self._invite(api, call, to, request, "add", owner=False)
        return await self._ingest.current(call.sid), False

    async def complete(self, call: Call, by: str, request: str) -> Call | None:
        """Complete a consultation as a transfer: the colleague keeps the call, `by` leaves, the customer is back."""
        api = self._need_api()
        room, seen = self._room(call)
        consulted = seen.consulted
        if consulted is None or consulted not in seen.sids or consulted in seen.pending:
            raise ControlFailed("There is no consultation to complete: the colleague has not answered yet.")
        leaving = seen.sids.get(call_room.label_of(by))
        try:
            await api.set_owner(room, seen.sids[consulted], owner=True)
            if leaving is not None:
                await api.set_owner(room, leaving, owner=False)
            await api.hold(room, call.sid, on=False, line=None)
        except TwilioError as exc:
            raise ControlFailed(_twilio_said(exc, "complete the transfer"), 502) from exc
        await self._note(call, "complete", request)
        done = await self._note(call, "unhold", request)
        if leaving is not None:
            try:
                await api.remove(room, leaving)
            except TwilioError as exc:
                log.info("call %s: %s was already out of the room: %s", call.sid, by, exc)
        return done

    async def cancel(self, call: Call, request: str) -> Call | None:
        """Call off a consultation (or an invitation still ringing): the colleague leaves, the customer is back."""
        api = self._need_api()
        room, seen = self._room(call)
        target = seen.consulted or next(iter(seen.pending), None)
        if target is None:
            raise ControlFailed("There is nothing to cancel.")
        sid = seen.sids.get(target)
        resumed = seen.on_hold and bool(seen.agents_now)
        try:
            if sid:
                await api.remove(room, sid)
            if resumed:
                await api.hold(room, call.sid, on=False, line=None)
        except TwilioError as exc:
            raise ControlFailed(_twilio_said(exc, "cancel the transfer"), 502) from exc
        done = await self._note(call, "cancel", request)
        return await self._note(call, "unhold", request) if resumed else done

    async def end(self, call: Call, by: str) -> Call | None:
        """End the call of a customer left on hold with nobody: the agent who has it hung up their phone.

        Ending the room ends the customer's <Dial> in it, whose action hangs up their call; Twilio's reports of the
        room's end then end the call as any hang-up does. A room already ended is the call ended: done.
        """
        api = self._need_api()
        if call.room is None:
            raise ControlFailed("The customer is not on hold: hang up your own phone instead.")
        room, seen = self._room(call)
        if seen.ended_at is not None:
            return call  # ended already (a second click, or the customer hung up meanwhile)
        if seen.in_line is not None:
            raise ControlFailed(f"The customer waits in the line {seen.in_line}: its agents take the call from here.")
        if seen.agents_now or seen.others_now or not seen.on_hold:
            raise ControlFailed("Someone is with the customer: hang up your own phone instead.")
        try:
            await api.end(room)
        except TwilioError as exc:
            if exc.code not in (20404, 21220) and exc.status != 404:
                raise ControlFailed(_twilio_said(exc, "end the call"), 502) from exc
        log.info("call %s: %s ended it while the customer was on hold", call.sid, by)
        return await self._ingest.current(call.sid)

    def _room(self, call: Call) -> tuple[str, call_room.Spans]:
        """Return the call's room at Twilio and what happened there, or refuse: the call is in none yet."""
        if call.room is None or call.room.provider_id is None:
            raise ControlFailed("The call is still being connected: try again in a moment.")
        return call.room.provider_id, call_room.spans(call.room)

    async def _invite(self, api: RoomApi, call: Call, to: str, request: str, way: str, *, owner: bool) -> None:
        """Ring someone into the room from the line's number; record the invitation once Twilio took it."""
        label = call_room.label_of(to, way)
        caller_id = call.to_number if call.direction == "inbound" else call.from_number
        try:
            sid = await api.invite(call.sid, to, caller_id or "", label, owner=owner, seconds=self._ring_seconds)
        except TwilioError as exc:
            raise ControlFailed(_twilio_said(exc, f"call {to}"), 502) from exc
        await self._note(call, "invite", request, label=label, way=way, sid=sid)


def _twilio_said(exc: TwilioError, what: str) -> str:
    """Say what went wrong at Twilio in the agent's words, and what to do."""
    if exc.code in (21220, 20404):
        return f"Could not {what}: the call has already ended."
    if exc.status == 429 or exc.status >= 500 or exc.status == 0:
        return f"Could not {what}: Twilio did not answer in time. Try again."
    return f"Could not {what}: Twilio refused ({exc.code or exc.status}). Ask your admin to run `bridge doctor`."
