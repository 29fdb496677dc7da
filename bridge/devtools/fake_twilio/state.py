"""What the stand-in knows of each call, recording and number, and the request parameters Twilio builds from them."""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from bridge.devtools.fake_twilio.clock import Activity, Signal

if TYPE_CHECKING:
    from bridge.devtools.fake_twilio.queues import Membership

API_VERSION = "2010-04-01"
API_HOST = "https://api.twilio.com"
# Twilio docs: Call resource, status. The first five end a call for good.
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


def rfc2822(moment: datetime) -> str:
    """Format a time as Twilio's webhooks and REST answers do (`Tue, 15 Sep 2026 14:02:08 +0000`)."""
    return format_datetime(moment)


def billed_minutes(seconds: int) -> int:
    """Return the `Duration` Twilio sends beside `CallDuration`: whole minutes, rounded up."""
    return math.ceil(seconds / 60)


class Sids:
    """Make Twilio-shaped sids (two letters and 32 hex digits), reproducibly from a seed."""

    def __init__(self, seed: int | None = None) -> None:
        """Seed the generator (None: a fresh random run)."""
        self._rng = random.Random(seed)

    def make(self, prefix: str) -> str:
        """Return a new sid with `prefix` (CA, RE, TR, QU, CF, PN…)."""
        return prefix + "".join(self._rng.choice("0123456789abcdef") for _ in range(32))

    def token(self) -> str:
        """Return a new I-Twilio-Idempotency-Token value."""
        return "idem-" + self.make("")


@dataclass(frozen=True)
class Geo:
    """Twilio's best-effort geodata for a number (Twilio docs: TwiML Voice webhooks, FromCity…)."""

    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = ""


@dataclass
class PhoneNumber:
    """An owned number as the console configures it: where its calls' TwiML and final status go."""

    sid: str
    number: str
    voice_url: str
    voice_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    friendly_name: str = ""


@dataclass
class Recording:
    """One recording: of a <Record>, of a <Dial record=…>, of a call or of a conference."""

    sid: str
    call_sid: str | None
    source: str  # Twilio docs: Recording resource, source (RecordVerb, DialVerb, OutboundAPI, Conference…)
    channels: int
    started: datetime
    status: str = "in-progress"
    duration: int = 0
    conference_sid: str | None = None
    skipped_seconds: float = 0.0  # the pauses with PauseBehavior=skip, left out of the duration
    paused_at: datetime | None = None
    pause_behavior: str = "silence"
    callback: str | None = None
    callback_method: str = "POST"
    callback_events: frozenset[str] = frozenset({"completed"})


@dataclass
class Prompt:
    """What a call heard: a <Say>, a <Play> or a <Pause>, with its attributes."""

    verb: str
    text: str
    attributes: dict[str, str]
    at: datetime


@dataclass
class Call:
    """One call leg as Twilio keeps it."""

    sid: str
    account_sid: str
    direction: str  # inbound | outbound-dial | outbound-api (Twilio docs: Call resource, direction)
    from_: str
    to: str
    created: datetime
    activity: Activity
    parent: Call | None = None
    status: str = "queued"
    answered: datetime | None = None
    ended: datetime | None = None
    url: str = ""  # the document being executed: a relative URL resolves against it
    method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_events: frozenset[str] = frozenset({"completed"})
    sequence: int = 0
    from_geo: Geo | None = None
    to_geo: Geo | None = None
    extra: dict[str, str] = field(default_factory=dict)  # AnsweredBy, CallToken, custom parameters…
    heard: list[Prompt] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # Twilio error codes the call met (its debugger)
    recordings: list[Recording] = field(default_factory=list)
    queue: Membership | None = None
    conference: str | None = None  # the sid of the conference the call is in
    attending: Any = None  # the conference participant whose events its runner listens to now
    queue_time: int = 0  # milliseconds in the account's calls-per-second queue (Twilio docs: Call resource)
    phase: str = ""  # a dialed leg's part in its <Dial>: ringing, whisper, bridged
    reported: bool = False  # its final status callback has gone out
    _inbox: deque[tuple[str, Any]] = field(default_factory=deque)
    _waiter: Signal[None] | None = None

    @property
    def over(self) -> bool:
        """Tell whether the call has ended."""
        return self.status in FINAL_STATUSES

    @property
    def root(self) -> Call:
        """Return the call this leg belongs to (itself for a parent)."""
        return self.parent.root if self.parent else self

    def duration(self) -> int:
        """Return CallDuration: a leg's time since it answered; a parent's since it arrived (as Twilio reports)."""
        if self.ended is None:
            return 0
        if self.direction == "outbound-dial" or self.direction == "outbound-api":
            return int((self.ended - self.answered).total_seconds()) if self.answered else 0
        return int((self.ended - self.created).total_seconds())

    def post(self, kind: str, value: Any = None) -> None:
        """Hand the call's runner an event (an actor's move, a timer, a REST request)."""
        self._inbox.append((kind, value))
        if self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            waiter.fire(None)

    async def next_event(self) -> tuple[str, Any]:
        """Wait for the next event handed to this call."""
        while not self._inbox:
            self._waiter = Signal(self.activity)
            await self._waiter.wait()
        return self._inbox.popleft()

    def params(self) -> dict[str, str]:
        """Return Twilio's standard request parameters for this leg (Twilio docs: TwiML Voice webhooks)."""
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.sid,
            "CallStatus": self.status,
            "Called": self.to,
            "Caller": self.from_,
            "Direction": self.direction,
            "From": self.from_,
            "To": self.to,
        }
        if self.parent is not None:
            params["ParentCallSid"] = self.parent.sid
        for side, geo in (("From", self.from_geo), ("To", self.to_geo)):
            if geo is None:
                continue
            legacy = "Caller" if side == "From" else "Called"
            for name, value in (("City", geo.city), ("State", geo.state), ("Zip", geo.zip), ("Country", geo.country)):
                params[side + name] = value
                params[legacy + name] = value
        params.update(self.extra)
        return params

    def resource(self) -> dict[str, Any]:
        """Return the Call resource as the REST API shows it (Twilio docs: Call resource)."""
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "parent_call_sid": self.parent.sid if self.parent else None,
            "direction": self.direction,
            "from": self.from_,
            "from_formatted": self.from_,
            "to": self.to,
            "to_formatted": self.to,
            "status": "queued" if self.status == "initiated" else self.status,
            "start_time": rfc2822(self.answered or self.created) if self.status != "queued" else None,
            "end_time": rfc2822(self.ended) if self.ended else None,
            "duration": str(self.duration()) if self.ended else None,
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.ended or self.answered or self.created),
            "answered_by": self.extra.get("AnsweredBy"),
            "annotation": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "forwarded_from": None,
            "group_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": str(self.queue_time),
            "trunk_sid": None,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}.json",
            "subresource_uris": {
                "recordings": f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}/Recordings.json",
            },
        }


def recording_url(account_sid: str, sid: str) -> str:
    """Return a RecordingUrl as Twilio sends it: on api.twilio.com, with no extension."""
    return f"{API_HOST}/{API_VERSION}/Accounts/{account_sid}/Recordings/{sid}"


def recording_resource(account_sid: str, recording: Recording) -> dict[str, Any]:
    """Return the Recording resource as the REST API shows it (Twilio docs: Recording resource)."""
    return {
        "sid": recording.sid,
        "account_sid": account_sid,
        "call_sid": recording.call_sid,
        "conference_sid": recording.conference_sid,
        "status": recording.status,
        "source": recording.source,
        "channels": recording.channels,
        "duration": str(recording.duration) if recording.status == "completed" else "-1",
        "start_time": rfc2822(recording.started),
        "date_created": rfc2822(recording.started),
        "date_updated": rfc2822(recording.started),
        "api_version": API_VERSION,
        "error_code": None,
        "price": None,
        "price_unit": "USD",
        "uri": f"/{API_VERSION}/Accounts/{account_sid}/Recordings/{recording.sid}.json",
    }
