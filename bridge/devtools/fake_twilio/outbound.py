"""Calls placed through the REST API: the calls-per-second queue, ringing the callee, answering-machine detection.

Twilio docs: Call resource (create), Answering Machine Detection, error 22005 (the call queue holds 24 hours of
calls) and the support article on calls per second (1 by default; REST-created calls only; over 24 h: canceled).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bridge.devtools.fake_twilio.account import Account
from bridge.devtools.fake_twilio.interpreter import Fetch, Interpreter, Interrupt
from bridge.devtools.fake_twilio.state import Call, Recording
from bridge.devtools.fake_twilio.twiml import Verb

DAY = 86400.0  # Twilio docs: error 22005 and the CPS article: a call is placed within 24 hours, or not at all
# Twilio docs: Answering Machine Detection, AnsweredBy: what each MachineDetection mode can answer.
VERDICTS = {
    "Enable": frozenset({"human", "machine_start", "fax", "unknown"}),
    "DetectMessageEnd": frozenset(
        {"human", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax", "unknown"}
    ),
}
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
# Twilio docs: Test Credentials, "Test calls": the magic numbers and the REST errors they answer.
MAGIC_FROM = "+15005550006"
MAGIC_TO = {
    "+15005550001": (21217, "Phone number does not appear to be valid"),
    "+15005550002": (21214, "'To' phone number cannot be reached"),
    "+15005550003": (21215, "Account not authorized to call this number (geographic permissions)"),
    "+15005550004": (21216, "Account not allowed to call this number (blocked)"),
}


def is_phone(endpoint: str) -> bool:
    """Tell whether an endpoint is an E.164 phone number (not client: or sip:)."""
    return bool(E164.match(endpoint))


def endpoint_error(account: Account, from_: str, to: str) -> tuple[int, str] | None:
    """Return the REST error Twilio answers for a From/To pair, or None (Twilio docs: Call resource, From and To)."""
    if not to:
        return 21201, "No 'To' number is specified"
    if not from_:
        return 21213, "No 'From' number is specified"
    if to in MAGIC_TO:
        return MAGIC_TO[to]
    if not (is_phone(to) or to.startswith(("client:", "sip:"))):
        return 21211, f"Invalid 'To' Phone Number: {to}"
    if from_ == "+15005550001":
        return 21212, "Invalid 'From' Phone Number"  # Twilio docs: Test Credentials, the invalid caller id
    if is_phone(from_):
        if from_ not in account.numbers and from_ not in account.verified and from_ != MAGIC_FROM:
            # Twilio docs: error 21210: From must be a Twilio number or a verified outgoing caller id.
            return 21210, f"The source phone number provided, {from_}, is not yet verified for your account"
        return None
    if is_phone(to) or not from_.startswith("client:"):
        return 21212, "Invalid 'From': calling a phone number needs a phone number as From"
    return None


class QueueFull(Exception):
    """Twilio docs: error 22005: the call would not be placed within 24 hours."""


@dataclass
class Pickup:
    """How a callee picked up: AMD's verdict (None: AMD finds nothing and times out) and how long it took."""

    answered_by: str | None = None
    detection: float = 3.0


class Dialer:
    """Twilio's call queue: REST-created calls leave it at the account's calls per second, oldest first."""

    def __init__(self, account: Account) -> None:
        """Start with Twilio's default of one call per second and nobody waiting."""
        self.account = account
        self.cps = 1.0  # Twilio docs: CPS article: 1 per account by default (a float here, so a test can slow it)
        self.waiting: deque[Call] = deque()
        self._last: datetime | None = None
        self._due: datetime | None = None

    def _next_slot(self) -> datetime:
        """Return when the next call may leave the queue."""
        now = self.account.now
        if self._last is None:
            return now
        return max(now, self._last + timedelta(seconds=1 / self.cps))

    def wait(self) -> float:
        """Return how long, in seconds, a call queued now would wait."""
        ahead = sum(1 for waiting in self.waiting if waiting.status == "queued")
        return (self._next_slot() - self.account.now).total_seconds() + ahead / self.cps

    def enqueue(self, call: Call) -> None:
        """Queue a call, estimating its queue time; raise QueueFull when it would wait over 24 hours."""
        wait = self.wait()
        if wait > DAY:
            raise QueueFull
        call.queue_time = int(wait * 1000)  # Twilio docs: Call resource, queue_time in milliseconds
        self.waiting.append(call)
        # Twilio docs: CPS article: "calls that exceed 24 hours in the queue will be cancelled".
        self.account.clock.after(DAY, lambda: call.post("queue-expired") if call.status == "queued" else None)
        self._pump()

    def _pump(self) -> None:
        """Release the head now if its slot has come, else set a timer for it."""
        if not self.waiting or self._due is not None:
            return
        due = self._next_slot()
        if due <= self.account.now:
            self._release()
        else:
            self._due = due
            self.account.clock.at(due, self._fire)

    def _fire(self) -> None:
        """Release the head when its timer falls due."""
        self._due = None
        self._release()

    def _release(self) -> None:
        """Hand the oldest still-queued call to its runner."""
        while self.waiting and self.waiting[0].status != "queued":
            self.waiting.popleft()  # canceled while it waited
        if not self.waiting:
            return
        call = self.waiting.popleft()
        self._last = self.account.now
        call.queue_time = int((self.account.now - call.created).total_seconds() * 1000)
        call.post("release")
        self._pump()


async def ring(rt: Interpreter, call: Call, seconds: float) -> Pickup | None:
    """Wait for the queue to release the call, ring it, and return how it was picked up (None: it was not)."""
    account = rt.account
    try:
        kind, _ = await rt.wait(call, None, frozenset({"release", "queue-expired"}))
        if kind == "queue-expired":
            await account.end(call, "canceled")
            return None
        await account.progress(call, "initiated")
        await account.progress(call, "ringing")
        _follow_script(rt, call)
        kind, value = await rt.wait(call, seconds, frozenset({"answer", "reject"}))
    except Interrupt as interrupt:
        # A REST cancel (or Status=completed) before the answer ends it `canceled`; the callee declining: `busy`.
        await account.end(call, "canceled" if interrupt.value == "api" or call.status == "queued" else "busy")
        return None
    if kind == "timeout":
        await account.end(call, "no-answer")  # Twilio docs: Call resource, Timeout
        return None
    if kind == "reject":
        await account.end(call, str(value))
        return None
    await account.progress(call, "in-progress")
    return value if isinstance(value, Pickup) else Pickup()


def _follow_script(rt: Interpreter, call: Call) -> None:
    """Let a destination with a scripted Outcome answer or refuse by itself once it has rung a while."""
    outcome = rt.account.script.outcomes.get(call.to)
    if outcome is None or outcome.status == "no-answer":
        return  # a test acts, or the call rings out at its Timeout
    if outcome.status == "answered":
        move: tuple[str, object] = ("answer", Pickup(outcome.answered_by, outcome.detection))
    else:
        move = ("reject", outcome.status)
    rt.account.clock.after(outcome.after, lambda: call.post(*move) if call.status == "ringing" else None)


@dataclass
class Placement:
    """What a POST /Calls.json asked for, beyond the call itself."""

    start: Fetch
    timeout: float = 60.0  # Twilio docs: Call resource, Timeout default 60
    machine_detection: str | None = None
    amd_timeout: float = 30.0  # Twilio docs: MachineDetectionTimeout default 30 s, then `unknown`
    async_amd: bool = False
    amd_callback: str | None = None
    amd_method: str = "POST"
    send_digits: str = ""
    record: bool = False
    channels: int = 1
    recording_callback: str | None = None
    recording_method: str = "POST"
    recording_events: frozenset[str] = field(default_factory=lambda: frozenset({"completed"}))


async def record_call(rt: Interpreter, call: Call, placement: Placement) -> Recording:
    """Record a REST-created call from its answer (Twilio docs: Call resource, Record and RecordingChannels)."""
    recording = rt.account.start_recording(
        call,
        "OutboundAPI",
        placement.channels,
        callback=placement.recording_callback,
        method=placement.recording_method,
        events=placement.recording_events,
    )
    await rt.account.recording_started(recording)
    return recording


async def run_placed(rt: Interpreter, call: Call, placement: Placement) -> None:
    """Queue, ring and answer a REST-created call, detect a machine if asked, then run its TwiML."""
    pickup = await ring(rt, call, placement.timeout)
    if pickup is None:
        return
    if placement.send_digits:
        rt.heard(call, Verb("Play", {"digits": placement.send_digits}, ""))
    if placement.record:
        await record_call(rt, call, placement)
    # Twilio docs: Call resource, SendDigits: with SendDigits, MachineDetection is ignored.
    mode = None if placement.send_digits else placement.machine_detection
    if mode is not None:
        verdict = pickup.answered_by or "unknown"
        if verdict not in VERDICTS[mode]:
            raise ValueError(f"AnsweredBy {verdict!r} is not an answer of MachineDetection={mode}")
        seconds = pickup.detection if pickup.answered_by else placement.amd_timeout
        if placement.async_amd:
            _detect_later(rt, call, placement, verdict, seconds)
        else:
            try:
                # Twilio docs: AMD: synchronous detection holds the TwiML request until it decides.
                await rt.wait(call, seconds)
            except Interrupt:
                await rt.account.end(call)
                return
            call.extra["AnsweredBy"] = verdict  # on the Url request and every request after it
    await rt.run(call, placement.start)


def _detect_later(rt: Interpreter, call: Call, placement: Placement, verdict: str, seconds: float) -> None:
    """Send the asynchronous AMD callback once detection is done (Twilio docs: AMD, AsyncAmdStatusCallback)."""
    account = rt.account
    if not placement.amd_callback:
        call.errors.append("21262")  # Twilio docs: warning 21262: AMD enabled without a callback URL
        return
    callback = placement.amd_callback

    async def send() -> None:
        """Post AnsweredBy and MachineDetectionDuration (ms), unless the call has ended meanwhile."""
        if call.over:
            return
        call.extra["AnsweredBy"] = verdict
        params = {
            "AccountSid": account.sid,
            "CallSid": call.sid,
            "AnsweredBy": verdict,
            "MachineDetectionDuration": str(int(seconds * 1000)),
        }
        await account.sender.notify(call.root.sid, call.root.created, callback, placement.amd_method, params)

    def due() -> None:
        """Start sending the verdict."""
        account.activity.spawn(send(), name=f"amd {call.sid}")

    account.clock.after(seconds, due)


class Outbound:
    """Place REST-created calls: the queue they wait in and the runners that ring them."""

    def __init__(self, rt: Interpreter) -> None:
        """Bind the interpreter; the account's dialer starts at one call per second."""
        self.rt = rt
        self.dialer = Dialer(rt.account)

    def place(self, call: Call, placement: Placement) -> None:
        """Queue a call (raise QueueFull past 24 hours) and start its runner."""
        self.dialer.enqueue(call)
        self.rt.account.activity.spawn(run_placed(self.rt, call, placement), name=f"placed {call.sid}")
