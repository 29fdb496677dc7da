"""A call's room at Twilio: moving the customer's call into its <Conference>, holding them there.

Twilio docs: Call resource, update (a live call fetches new TwiML from `Url`; its <Dial> ends and the agent's leg
with it); Conference Participant resource, update (`Hold`, `HoldUrl`, `HoldMethod`); Conference resource, update
(`Status=completed` ends it). The conference is named after the customer's call, and its participant for the
customer is that call.
"""

from __future__ import annotations

from urllib.parse import urlencode

from bridge.twilio.rest import TwilioApi


class RoomApi:
    """The REST requests of a call's room, for one account."""

    def __init__(self, api: TwilioApi, public_url: str) -> None:
        """Bind the account's API and where the bridge's webhooks are."""
        self._api = api
        self._public_url = public_url.rstrip("/")

    async def move_in(self, call_sid: str, line: str | None = None) -> None:
        """Move the customer's call into its room: it fetches the room's TwiML (the bridge's /room route).

        `line`: the line the customer is transferred to, whose hold music they hear there.
        """
        query = f"?{urlencode({'line': line})}" if line else ""
        await self._api.redirect(call_sid, f"{self._public_url}/twilio/voice/room{query}")

    async def hold(self, room_id: str, call_sid: str, *, on: bool, line: str | None) -> None:
        """Hold the customer in their room (the line's hold music), or take them off hold.

        HoldMethod is POST: Twilio's default for HoldUrl is GET, unlike its other URLs (Twilio docs: Conference
        Participant resource, HoldMethod), and the bridge's webhooks are POST, signed like every request.
        """
        form = {"Hold": "true" if on else "false"}
        if on:
            query = f"?{urlencode({'line': line})}" if line else ""
            form |= {"HoldUrl": f"{self._public_url}/twilio/voice/hold-music{query}", "HoldMethod": "POST"}
        await self._api.post(f"/Conferences/{room_id}/Participants/{call_sid}.json", form)

    async def invite(self, call_sid: str, to: str, caller_id: str, label: str, *, owner: bool, seconds: int) -> str:
        """Ring someone into the call's room; return their call's sid (Twilio docs: Participant resource, create).

        The room is addressed by its name, the customer's call, so the invitation works before the bridge knows the
        room's sid. `owner`: their leaving ends the room (EndConferenceOnExit), as the agent who has the call.
        """
        form = {
            "From": caller_id,
            "To": to,
            "Label": label,
            "StartConferenceOnEnter": "true",
            "EndConferenceOnExit": "true" if owner else "false",
            "Timeout": str(seconds),
            "Beep": "false",
        }
        reply = await self._api.post(f"/Conferences/{call_sid}/Participants.json", form)
        return str(reply.get("call_sid") or "")

    async def set_owner(self, room_id: str, call_sid: str, *, owner: bool) -> None:
        """Say whether a participant's leaving ends the room (Participant update, EndConferenceOnExit)."""
        form = {"EndConferenceOnExit": "true" if owner else "false"}
        await self._api.post(f"/Conferences/{room_id}/Participants/{call_sid}.json", form)

    async def end(self, room_id: str) -> None:
        """End the room for everyone in it (Conference resource, update: Status=completed).

        The customer's <Dial> in it then ends, and its action hangs up their call.
        """
        await self._api.post(f"/Conferences/{room_id}.json", {"Status": "completed"})

    async def remove(self, room_id: str, call_sid: str) -> None:
        """Take a participant out of the room, or call off one still ringing (Participant resource, delete)."""
        await self._api.delete(f"/Conferences/{room_id}/Participants/{call_sid}.json")
