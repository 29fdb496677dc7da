"""The Twilio account the stand-in plays: its calls, numbers, recordings, and the callbacks they cause."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bridge.devtools.fake_twilio.clock import Activity, VirtualClock
from bridge.devtools.fake_twilio.state import (
    API_VERSION,
    Call,
    Geo,
    PhoneNumber,
    Recording,
    Sids,
    billed_minutes,
    recording_url,
    rfc2822,
)
from bridge.devtools.fake_twilio.webhooks import Sender
from bridge.devtools.twilio_media import FakeTwilio

if TYPE_CHECKING:
    from bridge.devtools.fake_twilio.conference_state import Conference
    from bridge.devtools.fake_twilio.queues import Queue

DEFAULT_ACCOUNT = "AC455c03f9e322135d9c681cabb529d68e"
# Known geodata for the numbers of the recordings (tests/recordings/README.md): Twilio's best effort.
KNOWN_GEO = {
    "+14155550123": Geo("SAN FRANCISCO", "CA", "94107", "US"),
    "+14155550199": Geo("SAN FRANCISCO", "CA", "94110", "US"),
    "+16505550100": Geo("PALO ALTO", "CA", "94303", "US"),
    "+16505550111": Geo("REDWOOD CITY", "CA", "94061", "US"),
}
# Twilio docs: Call resource, StatusCallbackEvent: the event names and the CallStatus each is sent with.
EVENT_OF_STATUS = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}
SIP_CODES = {"completed": "200", "busy": "486", "no-answer": "487", "canceled": "487", "failed": "480"}


@dataclass(frozen=True)
class Outcome:
    """How a destination takes the calls the REST API places to it, without a test acting on each one."""

    status: str = "answered"  # answered | busy | failed | no-answer (rings out at the call's Timeout)
    answered_by: str | None = None  # AMD's verdict, when the call asked for detection
    after: float = 5.0  # seconds of ringing before it answers or refuses
    detection: float = 3.0  # seconds AMD takes to decide

    def __post_init__(self) -> None:
        """Refuse an outcome Twilio has no status for."""
        if self.status not in ("answered", "busy", "failed", "no-answer"):
            raise ValueError(f"Outcome status {self.status!r}: answered, busy, failed or no-answer")


@dataclass
class Script:
    """What the test scripts about Twilio's side: transcriptions, REST failures, how destinations answer."""

    transcription: str = "This is a message left with the Twilio stand-in."
    transcription_fails: bool = False
    rest_failures: list[tuple[int, int]] = field(default_factory=list)  # (HTTP status, Twilio code), next first
    rest_log: list[tuple[str, str]] = field(default_factory=list)  # every REST request authorised: (method, path)
    keep_enqueue_action_reply: bool = False  # execute the <Enqueue action> reply after a REST redirect (test switch)
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # by To: REST-created calls answer by themselves


class Account:
    """One Twilio account: credentials, owned numbers, calls, recordings, queues and conferences."""

    def __init__(
        self,
        auth_token: str,
        account_sid: str = DEFAULT_ACCOUNT,
        seed: int | None = None,
        start: datetime | None = None,
    ) -> None:
        """Set up an empty account whose clock starts at `start`."""
        self.sid = account_sid
        self.media = FakeTwilio(auth_token)  # credentials and recording media (Basic auth, redirect, Range)
        self.activity = Activity()
        self.settle: Callable[[], Any] = self.activity.idle  # replaced by the stand-in (releases held callbacks)
        self.clock = VirtualClock(lambda: self.settle(), start)
        self.sids = Sids(seed)
        self.sender = Sender(lambda: self.media.auth_token, self.activity, self.clock, self.sids)
        self.numbers: dict[str, PhoneNumber] = {}
        self.verified: set[str] = set()  # outgoing caller ids (Twilio docs: OutgoingCallerId resource)
        self.geo: dict[str, Geo] = dict(KNOWN_GEO)
        self.calls: dict[str, Call] = {}
        self.recordings: dict[str, Recording] = {}
        self.queues: dict[str, Queue] = {}
        self.conferences: dict[str, Conference] = {}
        self.script = Script()

    @property
    def now(self) -> datetime:
        """Return the virtual time."""
        return self.clock.now

    def own(
        self,
        number: str,
        voice_url: str,
        *,
        status_callback: str | None = None,
        voice_method: str = "POST",
        status_callback_method: str = "POST",
    ) -> PhoneNumber:
        """Own `number`, configured as the console does: its voice URL and its call status callback."""
        phone = PhoneNumber(
            self.sids.make("PN"),
            number,
            voice_url,
            voice_method,
            status_callback,
            status_callback_method,
            friendly_name=number,
        )
        self.numbers[number] = phone
        return phone

    def geo_of(self, identity: str) -> Geo | None:
        """Return the geodata Twilio sends for a number (empty strings when unknown), none for a client or SIP."""
        if not identity.startswith("+"):
            return None
        return self.geo.get(identity, Geo())

    def new_call(self, direction: str, from_: str, to: str, parent: Call | None = None, **options: Any) -> Call:
        """Create a call leg in the account."""
        call = Call(
            sid=self.sids.make("CA"),
            account_sid=self.sid,
            direction=direction,
            from_=from_,
            to=to,
            created=self.now,
            activity=self.activity,
            parent=parent,
            from_geo=self.geo_of(from_),
            to_geo=self.geo_of(to),
            **options,
        )
        self.calls[call.sid] = call
        return call

    async def progress(self, call: Call, status: str) -> None:
        """Move a leg to a live status and send its status callback when subscribed."""
        call.status = status
        if status == "in-progress" and call.answered is None:
            call.answered = self.now
        event = EVENT_OF_STATUS[status]
        if call.status_callback and event in call.status_events:
            await self._status_callback(call, {})

    def close(self, call: Call, status: str = "completed") -> None:
        """Give a leg its final status now; its callback goes out with `report_end` (after any action request)."""
        if call.over:
            return
        call.status = status
        call.ended = self.now
        if call.queue is not None:
            call.queue.left(call)

    async def end(self, call: Call, status: str = "completed") -> None:
        """End a leg and send its `completed` callback (Twilio docs: Call resource, StatusCallback)."""
        self.close(call, status)
        await self.report_end(call)

    async def report_end(self, call: Call) -> None:
        """Send a leg's final status callback once, when subscribed."""
        if call.reported or not call.over:
            return
        call.reported = True
        extra = {"CallDuration": str(call.duration()), "Duration": str(billed_minutes(call.duration()))}
        if call.direction != "inbound":
            extra["SipResponseCode"] = SIP_CODES.get(call.status, "200")
        for recording in call.recordings:
            if recording.source == "OutboundAPI":
                # Twilio docs: Call resource, Record: "The recording_url is sent to the status_callback URL".
                await self.finish_recording(recording)
                extra.update(
                    RecordingUrl=recording_url(self.sid, recording.sid),
                    RecordingSid=recording.sid,
                    RecordingDuration=str(recording.duration),
                )
        if call.status_callback and "completed" in call.status_events:
            await self._status_callback(call, extra)

    async def _status_callback(self, call: Call, extra: dict[str, str]) -> None:
        """Send one call-progress event, numbered per leg (SequenceNumber from 0) and time-stamped."""
        params = {
            **call.params(),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(call.sequence),
            "Timestamp": rfc2822(self.now),
            **extra,
        }
        call.sequence += 1
        assert call.status_callback is not None
        await self.sender.notify(
            call.root.sid, call.root.created, call.status_callback, call.status_callback_method, params
        )

    def start_recording(
        self,
        call: Call | None,
        source: str,
        channels: int,
        *,
        callback: str | None,
        method: str = "POST",
        events: frozenset[str] = frozenset({"completed"}),
        conference_sid: str | None = None,
    ) -> Recording:
        """Start a recording on `call`, or on a conference (Twilio docs: Recording; <Dial record> is on the parent)."""
        recording = Recording(
            self.sids.make("RE"),
            call.sid if call else None,
            source,
            channels,
            self.now,
            conference_sid=conference_sid,
            callback=callback,
            callback_method=method,
            callback_events=events,
        )
        self.recordings[recording.sid] = recording
        if call is not None:
            call.recordings.append(recording)
        return recording

    def recording_seconds(self, recording: Recording) -> int:
        """Return a recording's length so far, less what its `skip` pauses left out (Twilio docs: PauseBehavior)."""
        skipped = recording.skipped_seconds
        if recording.paused_at is not None and recording.pause_behavior == "skip":
            skipped += (self.now - recording.paused_at).total_seconds()
        return max(0, int((self.now - recording.started).total_seconds() - skipped))

    def resume_recording(self, recording: Recording) -> None:
        """End a recording's pause, counting it out of the duration when it was a `skip` pause."""
        if recording.paused_at is None:
            return
        if recording.pause_behavior == "skip":
            recording.skipped_seconds += (self.now - recording.paused_at).total_seconds()
        recording.paused_at = None

    async def recording_started(self, recording: Recording) -> None:
        """Send the `in-progress` recording callback when subscribed (Twilio docs: recordingStatusCallbackEvent)."""
        if recording.callback and "in-progress" in recording.callback_events:
            await self._recording_callback(recording, "in-progress", 0)

    async def finish_recording(self, recording: Recording) -> None:
        """Finish a recording: `completed` with its length, or `absent` when nothing was recorded."""
        if recording.status in ("completed", "absent"):
            return
        self.resume_recording(recording)
        recording.duration = self.recording_seconds(recording)
        # Twilio docs: <Record>: an empty recording is not kept; the callback says `absent` (error 16101).
        recording.status = "completed" if recording.duration > 0 else "absent"
        if recording.callback and recording.status in recording.callback_events:
            await self._recording_callback(recording, recording.status, recording.duration)

    async def _recording_callback(self, recording: Recording, status: str, duration: int) -> None:
        """Send a recording status callback (Twilio docs: recordingStatusCallback parameters)."""
        params = {
            "AccountSid": self.sid,
            "CallSid": recording.call_sid or "",
            "RecordingSid": recording.sid,
            "RecordingUrl": recording_url(self.sid, recording.sid),
            "RecordingStatus": status,
            "RecordingDuration": str(duration),
            "RecordingChannels": str(recording.channels),
            "RecordingSource": recording.source,
            "RecordingStartTime": rfc2822(recording.started),
            "ErrorCode": "0" if status != "absent" else "16101",
        }
        if recording.conference_sid:
            params["ConferenceSid"] = recording.conference_sid
            if not recording.call_sid:
                del params["CallSid"]
        call = self.calls.get(recording.call_sid or "")
        owner = call.root if call else self.conferences[recording.conference_sid or ""]  # a call's, or a conference's
        assert recording.callback is not None
        await self.sender.notify(
            owner.sid,
            owner.created,
            recording.callback,
            recording.callback_method,
            params,
        )

    async def transcribe(self, call: Call, recording: Recording, callback: str) -> None:
        """Send the transcription callback of a <Record transcribe> (Twilio docs: <Record>, transcribeCallback)."""
        sid = self.sids.make("TR")
        url = recording_url(self.sid, recording.sid)
        # Twilio docs: Recording transcription: only recordings of two minutes or less are transcribed.
        failed = self.script.transcription_fails or recording.duration > 120 or recording.status != "completed"
        params = {
            **call.params(),
            "RecordingSid": recording.sid,
            "RecordingUrl": url,
            "TranscriptionSid": sid,
            "TranscriptionUrl": f"{url}/Transcriptions/{sid}",
            "TranscriptionType": "fast",
            "TranscriptionStatus": "failed" if failed else "completed",
        }
        if not failed:
            params["TranscriptionText"] = self.script.transcription
        await self.sender.notify(call.root.sid, call.root.created, callback, "POST", params)

    def rest_failure(self) -> tuple[int, int] | None:
        """Take the next scripted REST failure (429/20429, 5xx), if any."""
        return self.script.rest_failures.pop(0) if self.script.rest_failures else None

    def uri(self, tail: str) -> str:
        """Return a REST resource's URI, relative to api.twilio.com."""
        return f"/{API_VERSION}/Accounts/{self.sid}/{tail}"
