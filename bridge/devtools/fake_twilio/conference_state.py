"""Conferences: their participants, the start and end rules, and the status callbacks they cause.

Twilio docs: TwiML <Conference> (startConferenceOnEnter, endConferenceOnExit, statusCallbackEvent and the
callback parameters), Conference resource (status init | in-progress | completed, reason_conference_ended),
Conference Participant resource. The participant's call is driven by conference_twiml; this module keeps
the state and tells a participant's runner what changed by posting ("conference", (participant, change)).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bridge.devtools.fake_twilio.account import Account
from bridge.devtools.fake_twilio.state import API_VERSION, Call, Prompt, Recording, rfc2822
from bridge.devtools.fake_twilio.twiml import Verb

MAX_PARTICIPANTS = 250  # Twilio docs: <Conference maxParticipants>, "The limit is 250"
EVENTS = frozenset({"start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"})
# Twilio docs: <Conference> statusCallbackEvent: the StatusCallbackEvent value each subscription sends.
EVENT_NAMES = {
    "start": "conference-start",
    "end": "conference-end",
    "join": "participant-join",
    "leave": "participant-leave",
    "modify": "participant-modify",
}


def flag(value: bool) -> str:
    """Write a boolean as Twilio's callbacks do."""
    return "true" if value else "false"


@dataclass
class Settings:
    """What the participant that creates a conference sets for all (Twilio docs: "set by the first Participant")."""

    callback: str | None = None
    method: str = "POST"
    events: frozenset[str] = frozenset()  # Twilio docs: <Conference statusCallbackEvent>: default none
    record: bool = False
    recording_callback: str | None = None
    recording_method: str = "POST"
    recording_events: frozenset[str] = frozenset({"completed"})
    max_participants: int = MAX_PARTICIPANTS


@dataclass(eq=False)
class Participant:
    """A call in (or being added to) a conference, with its conference-side attributes."""

    call: Call
    conference: Conference
    created: datetime
    label: str | None = None
    muted: bool = False
    hold: bool = False
    coaching: bool = False
    call_sid_to_coach: str | None = None
    start_on_enter: bool = True
    end_on_exit: bool = False
    beep: str = "true"  # true | false | onEnter | onExit
    wait_url: str | None = None  # None: Twilio's default music; "": silence
    wait_method: str = "POST"
    hold_url: str | None = None
    hold_method: str = "GET"  # Twilio docs: Participant update, HoldMethod default GET
    via_api: bool = False  # placed by Participants create: with no TwiML of its own, its call ends when it leaves
    joined: bool = False
    left: bool = False
    updated: datetime | None = None
    announcements: deque[tuple[list[Verb], str]] = field(default_factory=deque)

    def params(self) -> dict[str, str]:
        """Return the participant's callback parameters (Twilio docs: <Conference>, statusCallback parameters)."""
        params = {
            "CallSid": self.call.sid,
            "Muted": flag(self.muted),
            "Hold": flag(self.hold),
            "Coaching": flag(self.coaching),
            "EndConferenceOnExit": flag(self.end_on_exit),
            "StartConferenceOnEnter": flag(self.start_on_enter),
        }
        if self.label is not None:
            params["ParticipantLabel"] = self.label  # inferred: not sent for a participant without a label
        return params

    def status(self) -> str:
        """Return the participant status (Twilio docs: Participant resource: queued … connected, complete, failed)."""
        if self.joined:
            return "connected"
        if self.left:
            return "complete" if self.call.answered else "failed"
        return {"queued": "queued", "ringing": "ringing"}.get(self.call.status, "connecting")

    def resource(self) -> dict[str, Any]:
        """Return the Participant resource (Twilio docs: Conference Participant resource)."""
        account_sid = self.call.account_sid
        return {
            "account_sid": account_sid,
            "call_sid": self.call.sid,
            "label": self.label,
            "call_sid_to_coach": self.call_sid_to_coach,
            "coaching": self.coaching,
            "conference_sid": self.conference.sid,
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.updated or self.created),
            "end_conference_on_exit": self.end_on_exit,
            "muted": self.muted,
            "hold": self.hold,
            "start_conference_on_enter": self.start_on_enter,
            "status": self.status(),
            "queue_time": None,
            "uri": f"/{API_VERSION}/Accounts/{account_sid}/Conferences/{self.conference.sid}"
            f"/Participants/{self.call.sid}.json",
        }


class Conference:
    """A named room: its participants, its state, and the callbacks its first participant asked for."""

    def __init__(self, account: Account, name: str, settings: Settings) -> None:
        """Create the room in `init`, as Twilio does on first use of a name."""
        self.account = account
        self.sid = account.sids.make("CF")
        self.name = name
        self.settings = settings
        self.created = self.updated = account.now
        self.status = "init"
        self.participants: list[Participant] = []  # live: joined, or being added through the REST API
        self.sequence = 0
        self.reason_ended: str | None = None
        self.ending_call_sid: str | None = None
        self.recording: Recording | None = None
        account.conferences[self.sid] = self

    # --- who is in it -------------------------------------------------------------------------------------

    def joined(self) -> list[Participant]:
        """Return the participants in the room now."""
        return [p for p in self.participants if p.joined]

    def find(self, key: str) -> Participant | None:
        """Return the live participant with this call sid or label (Twilio docs: the path slot takes either)."""
        for participant in self.participants:
            if participant.call.sid == key or (participant.label is not None and participant.label == key):
                return participant
        return None

    def full(self) -> bool:
        """Tell whether another participant would pass maxParticipants (Twilio docs: error 16020)."""
        return len(self.participants) >= self.settings.max_participants

    def starts_with(self, newcomer: bool | None = None) -> bool:
        """Tell whether the room has started, or starts (with a newcomer whose startConferenceOnEnter is given)."""
        if self.status != "init":
            return self.status == "in-progress"
        # Twilio docs: <Conference> `start`: "at least two participants …, and at least one … startConferenceOnEnter".
        flags = [p.start_on_enter for p in self.joined()] + ([newcomer] if newcomer is not None else [])
        return len(flags) >= 2 and any(flags)

    # --- what happens -----------------------------------------------------------------------------------

    async def join(self, participant: Participant) -> None:
        """Put a participant in the room: participant-join, then the start when this join starts it."""
        participant.joined = True
        participant.updated = self.account.now
        participant.call.conference = self.sid
        if participant not in self.participants:
            self.participants.append(participant)
        if participant.beep in ("true", "onEnter"):
            self._beep(participant)  # Twilio docs: <Conference beep>: the others hear it, not the newcomer
        await self.event("join", participant)
        if self.status == "init" and self.starts_with():
            await self._start()

    async def _start(self) -> None:
        """Start mixing audio: conference-start, the recording, and the wait music stops for everyone."""
        self.status, self.updated = "in-progress", self.account.now
        await self.event("start")
        if self.settings.record:
            # Twilio docs: <Conference record>: "the recording begins when the first two participants are bridged".
            self.recording = self.account.start_recording(
                None,
                "Conference",
                1,  # Twilio docs: "Only 1 channel is supported for Conference recordings"
                callback=self.settings.recording_callback,
                method=self.settings.recording_method,
                events=self.settings.recording_events,
                conference_sid=self.sid,
            )
            await self.account.recording_started(self.recording)
        for participant in self.joined():
            self.tell(participant, "started")

    async def leave(self, participant: Participant, reason: str | None, call_status: str, kicked: bool = False) -> None:
        """Take a participant out: participant-leave, then the end rules (Twilio docs: endConferenceOnExit)."""
        if participant.left:
            return
        was_in = participant.joined
        participant.left, participant.joined = True, False
        participant.updated = self.account.now
        participant.call.conference = None
        self.participants.remove(participant)
        if was_in and participant.beep in ("true", "onExit"):
            self._beep(participant)
        extra = {"ParticipantCallStatus": call_status}
        if reason is not None:
            extra["ReasonParticipantLeft"] = reason
        await self.event("leave", participant, extra)
        if self.status == "completed":
            return
        how = "kicked" if kicked else "left"
        if participant.end_on_exit and was_in:
            await self.end(f"participant-with-end-conference-on-exit-{how}", participant)
        elif not self.participants:
            await self.end(f"last-participant-{how}", participant)

    async def end(self, reason: str, by: Participant | None = None) -> None:
        """End the room for everyone: each leaves, then conference-end (Twilio docs: ReasonConferenceEnded)."""
        if self.status == "completed":
            return
        self.status, self.updated = "completed", self.account.now
        self.reason_ended = reason
        self.ending_call_sid = by.call.sid if by else None
        # Twilio docs: ReasonParticipantLeft: ended through the API, or by a participant with endConferenceOnExit.
        why = "conference_ended_via_api" if reason == "conference-ended-via-api" else "moderator_ended_conference"
        for participant in list(self.participants):
            if participant.joined:
                await self.leave(participant, why, "completed" if participant.via_api else "in-progress")
                self.tell(participant, "left")
            else:
                await self.leave(participant, why, "canceled")
                participant.call.post("hangup", "api")  # still ringing: the add is called off
        extra = {"ReasonConferenceEnded": reason, "Reason": reason.replace("-", " ")}
        if by is not None:
            extra["CallSidEndingConference"] = by.call.sid
            if by.label is not None:
                extra["ParticipantLabelEndingConference"] = by.label
        await self.event("end", None, extra)
        if self.recording is not None:
            await self.account.finish_recording(self.recording)

    async def add_failed(self, participant: Participant, call_status: str) -> None:
        """Report a REST-added participant whose call was not answered (Twilio docs: participant_add_failed)."""
        await self.leave(participant, "participant_add_failed", call_status)

    async def set_hold(self, participant: Participant, hold: bool) -> None:
        """Hold or unhold: participant-hold or -unhold, and the runner starts or stops the hold music."""
        if participant.hold == hold:
            return
        participant.hold, participant.updated = hold, self.account.now
        await self.event("hold", participant, name="participant-hold" if hold else "participant-unhold")
        self.tell(participant, "hold")

    async def set_muted(self, participant: Participant, muted: bool) -> None:
        """Mute or unmute: participant-mute or -unmute."""
        if participant.muted == muted:
            return
        participant.muted, participant.updated = muted, self.account.now
        await self.event("mute", participant, name="participant-mute" if muted else "participant-unmute")

    async def modified(self, participant: Participant) -> None:
        """Report a change of BeepOnExit, EndConferenceOnExit, Coaching or WaitUrl (Twilio docs: `modify`)."""
        participant.updated = self.account.now
        await self.event("modify", participant)

    def announce(self, participant: Participant, document: tuple[list[Verb], str]) -> None:
        """Queue an announcement for a participant; its runner plays it between what it hears."""
        participant.announcements.append(document)
        self.tell(participant, "announce")

    def tell(self, participant: Participant, change: str) -> None:
        """Wake a participant's runner: something about its conference changed."""
        participant.call.post("conference", (participant, change))

    def _beep(self, about: Participant) -> None:
        """Let everyone else in the room hear the join/leave beep."""
        for other in self.joined():
            if other is not about:
                other.call.heard.append(Prompt("Play", "beep", {}, self.account.now))

    async def event(
        self, kind: str, participant: Participant | None = None, extra: dict[str, str] | None = None, name: str = ""
    ) -> None:
        """Send one conference status callback when its event is subscribed; number every event (inferred)."""
        self.sequence += 1  # per conference; counted for every event, so unsubscribed ones leave gaps (stricter)
        settings = self.settings
        if settings.callback is None or kind not in settings.events:
            return
        params = {
            "ConferenceSid": self.sid,
            "FriendlyName": self.name,
            "AccountSid": self.account.sid,
            "SequenceNumber": str(self.sequence),
            "Timestamp": rfc2822(self.account.now),
            "StatusCallbackEvent": name or EVENT_NAMES[kind],
            **(participant.params() if participant else {}),
            **(extra or {}),
        }
        await self.account.sender.notify(self.sid, self.created, settings.callback, settings.method, params)

    def resource(self) -> dict[str, Any]:
        """Return the Conference resource (Twilio docs: Conference resource)."""
        base = f"/{API_VERSION}/Accounts/{self.account.sid}/Conferences/{self.sid}"
        return {
            "account_sid": self.account.sid,
            "api_version": API_VERSION,
            "call_sid_ending_conference": self.ending_call_sid,
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.updated),
            "friendly_name": self.name,
            "reason_conference_ended": self.reason_ended,
            "region": "us1",
            "sid": self.sid,
            "status": self.status,
            "uri": base + ".json",
            "subresource_uris": {
                "participants": base + "/Participants.json",
                "recordings": base + "/Recordings.json",
            },
        }


def live_conference(account: Account, name: str) -> Conference | None:
    """Return the room of this name that has not ended (Twilio docs: names are scoped to the account)."""
    for conference in account.conferences.values():
        if conference.name == name and conference.status != "completed":
            return conference
    return None
