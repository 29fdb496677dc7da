"""What the softphone's controls ask of Twilio during a call: pause and resume its recording.

Twilio docs: Call Recordings (update) — `POST /Calls/{CallSid}/Recordings/Twilio.CURRENT.json` with
`Status=paused|in-progress`; a <Dial record> recording belongs to the parent call. In a conference the
recording is the conference's: `POST /Conferences/{ConferenceSid}/Recordings/Twilio.CURRENT.json`
(Conference Recordings, update). `PauseBehavior=silence` keeps the file as long as the call, so a
recording's times still match the conversation's. Errors stay the typed ones of rest.py; two codes mean
something the agent can act on: 20404 (no recording in progress) and 21220 (the call has ended).
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.twilio.rest import TwilioApi

NO_LIVE_RECORDING = 20404  # Twilio docs: Error 20404, no Twilio.CURRENT recording to update
CALL_ENDED = 21220  # Twilio docs: Error 21220, the call is not in progress


@dataclass(frozen=True)
class Recorded:
    """Where a call's live recording is: the parent call's own, or the conference's once the call is in one."""

    call_sid: str
    conference_sid: str | None = None  # the room's ConferenceSid (CF…), when the call was moved into one

    @property
    def path(self) -> str:
        """Return the path of the live recording, after the account's URL."""
        if self.conference_sid is not None:
            return f"/Conferences/{self.conference_sid}/Recordings/Twilio.CURRENT.json"
        return f"/Calls/{self.call_sid}/Recordings/Twilio.CURRENT.json"


async def set_recording(api: TwilioApi, where: Recorded, *, paused: bool) -> str:
    """Pause or resume the live recording; return the status Twilio's reply gives it (`paused`, `in-progress`)."""
    form = {"Status": "paused", "PauseBehavior": "silence"} if paused else {"Status": "in-progress"}
    body = await api.post(where.path, form)
    return str(body.get("status") or "")
