"""Execute TwiML the way Twilio does: fetch a document, run its verbs in order, follow actions and redirects."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from bridge.devtools.fake_twilio.account import Account
from bridge.devtools.fake_twilio.state import Call, Prompt, recording_url
from bridge.devtools.fake_twilio.twiml import TOP_LEVEL, TwimlError, Verb, parse
from bridge.devtools.fake_twilio.webhooks import FetchError

# Fixed estimates of how long prompts last, so virtual time moves predictably (Twilio does not document them):
SAY_WORDS_PER_SECOND = 2.5  # about 150 words a minute
PLAY_SECONDS = 10.0  # any audio file, unless the test sets `Interpreter.audio_seconds[url]`
ENDLESS_LOOPS = 1000  # Twilio docs: <Play>, loop="0" repeats up to 1000 times
APPLICATION_ERROR = "An application error has occurred. Goodbye."
# Events that end whatever verb is running: a hang-up, a REST redirect, a queue's dequeue or bridge, a change
# in the conference the call is in (it started, the call was held or dropped, an announcement).
INTERRUPTS = frozenset({"hangup", "redirect", "dequeue", "bridge", "conference"})


@dataclass
class Fetch:
    """Go on with a new document: fetched from `url` (with `params`), or given inline as `twiml`."""

    url: str
    method: str = "POST"
    params: dict[str, str] = field(default_factory=dict)
    twiml: str | None = None
    then: Callable[[], Awaitable[None]] | None = None  # work Twilio does once the request went out (callbacks)


class End:
    """The call is over (hung up, or ended by the document)."""


class Fall:
    """The document ran out of verbs."""


END, FALL = End(), Fall()
Flow = Fetch | End | Fall | None  # None: go on with the next verb


@dataclass
class Context:
    """Where a document runs: which verbs it may use, and what its end means there."""

    allowed: frozenset[str] = TOP_LEVEL
    on_fall: Callable[[Call], Awaitable[None]] | None = None  # default: Twilio hangs up at the end of a document
    on_error: Callable[[Call, Exception], Awaitable[None]] | None = None  # default: the application-error message
    queue: Any = None  # the queue a waitUrl document runs for (<Leave> needs it)
    nested: bool = False  # a document run inside a verb (waitUrl, hold music): hang-ups and redirects go up


class Interrupt(Exception):
    """An event that ends the current verb early: the caller hung up, or a REST request redirected the call."""

    def __init__(self, kind: str, value: Any = None) -> None:
        """Keep what happened."""
        super().__init__(kind)
        self.kind = kind
        self.value = value


Verbs = Callable[["Interpreter", Call, Verb, Context, str], Awaitable[Flow]]


class Interpreter:
    """Run calls' TwiML against the account."""

    def __init__(self, account: Account) -> None:
        """Bind the account; verbs beyond the simple ones are registered by their modules."""
        self.account = account
        self.audio_seconds: dict[str, float] = {}
        self.verbs: dict[str, Verbs] = {
            "Say": _say,
            "Play": _play,
            "Pause": _pause,
            "Hangup": _hangup,
            "Reject": _reject,
            "Redirect": _redirect,
            "Record": _record,
        }

    async def run(self, call: Call, start: Fetch, context: Context | None = None) -> None:
        """Execute documents for `call` until it ends, falls off a document, or fails."""
        context = context or Context()
        flow: Flow = start
        while isinstance(flow, Fetch) and not call.over:
            try:
                verbs = await self.load(call, flow)
                if flow.then is not None:
                    await flow.then()
                flow = await self.execute(call, verbs, context, flow.url or call.url)
            except (FetchError, TwimlError) as exc:
                call.errors.append(str(exc.code))
                if context.on_error is not None:
                    await context.on_error(call, exc)
                else:
                    await self.application_error(call)
                return
        if isinstance(flow, Fall) and not call.over:
            if context.on_fall is not None:
                await context.on_fall(call)
            else:
                await self.account.end(call)  # Twilio docs: TwiML, "the call ends when the document ends"

    async def load(self, call: Call, fetch: Fetch) -> list[Verb]:
        """Fetch (or take inline) a document and parse it; relative URLs in it resolve against its own URL."""
        if fetch.twiml is not None:
            return parse(fetch.twiml)
        call.url, call.method = fetch.url, fetch.method
        params = {**call.params(), **fetch.params}
        root = call.root
        body = await self.account.sender.fetch(root.sid, root.created, fetch.url, fetch.method, params)
        return parse(body)

    async def execute(self, call: Call, verbs: list[Verb], context: Context, url: str) -> Flow:
        """Run one document's verbs; return what comes next."""
        for verb in verbs:
            if verb.name not in context.allowed:
                raise TwimlError(12200, f"<{verb.name}> is not allowed here (allowed: {sorted(context.allowed)})")
            try:
                flow = await self.verbs[verb.name](self, call, verb, context, url)
            except Interrupt as interrupt:
                if context.nested:
                    raise
                return await self.interrupted(call, interrupt)
            if flow is not None:
                return flow
            if call.over:
                return END
        return FALL

    async def interrupted(self, call: Call, interrupt: Interrupt) -> Flow:
        """End the call after a hang-up, or go to the TwiML of a REST redirect."""
        if interrupt.kind == "redirect":
            return interrupt.value  # type: ignore[no-any-return]
        await self.account.end(call)
        return END

    async def wait(self, call: Call, seconds: float | None, accept: frozenset[str] = frozenset()) -> tuple[str, Any]:
        """Wait up to `seconds` of virtual time for an accepted event ("timeout" when it runs out)."""
        # Hang-ups, redirects and queue moves always interrupt. Other events the verb does not accept are
        # dropped, as keypresses outside a <Gather> are (stricter than Twilio, which may buffer them).
        token = object()
        if seconds is not None:
            self.account.clock.after(seconds, lambda: call.post("timer", token))
        while True:
            kind, value = await call.next_event()
            if kind == "timer":
                if value is token:
                    return "timeout", None
                continue
            if kind == "conference" and (not isinstance(value, tuple) or value[0] is not call.attending):
                continue  # about a conference the call has since left
            if kind in accept:
                return kind, value
            if kind in INTERRUPTS:
                raise Interrupt(kind, value)

    async def answer(self, call: Call) -> None:
        """Answer an inbound call that is still ringing (Twilio answers when it runs a verb that needs the line)."""
        if call.direction == "inbound" and call.status in ("ringing", "queued"):
            await self.account.progress(call, "in-progress")

    async def action(self, call: Call, url: str, method: str, params: dict[str, str]) -> Flow:
        """Request an action URL: its TwiML drives the call, unless the caller has gone (then it is ignored)."""
        if call.over:
            root = call.root
            try:
                await self.account.sender.fetch(root.sid, root.created, url, method, {**call.params(), **params})
            except FetchError as exc:
                call.errors.append(str(exc.code))
            return END
        return Fetch(url, method, params)

    async def application_error(self, call: Call) -> None:
        """Say Twilio's application-error message and hang up (Twilio docs: error 11200, no fallback URL)."""
        if call.over:
            return
        await self.answer(call)
        call.heard.append(Prompt("Say", APPLICATION_ERROR, {}, self.account.now))
        await self.account.end(call)

    def heard(self, call: Call, verb: Verb) -> None:
        """Note what the caller heard, for the test's asserts."""
        call.heard.append(Prompt(verb.name, verb.text, dict(verb.attributes), self.account.now))

    async def prompt(self, call: Call, verb: Verb, accept: frozenset[str] = frozenset()) -> tuple[str, Any]:
        """Play a Say, Play or Pause for its estimated length; an accepted event (a keypress) cuts it short."""
        self.heard(call, verb)
        if verb.name == "Pause":
            return await self.wait(call, verb.number("length", 1), accept)  # Twilio docs: <Pause>, default 1 s
        if verb.name == "Say":
            once = max(1.0, math.ceil(len(verb.text.split()) / SAY_WORDS_PER_SECOND))
        else:
            once = self.audio_seconds.get(verb.text, PLAY_SECONDS) if verb.text else 0.5 * len(verb.get("digits"))
        loops = int(verb.number("loop", 1)) or ENDLESS_LOOPS
        return await self.wait(call, max(once, 0.1) * loops, accept)


async def _say(rt: Interpreter, call: Call, verb: Verb, context: Context, url: str) -> Flow:
    """Speak text (Twilio docs: TwiML <Say>)."""
    await rt.answer(call)
    await rt.prompt(call, verb)
    return None


async def _play(rt: Interpreter, call: Call, verb: Verb, context: Context, url: str) -> Flow:
    """Play audio or DTMF digits (Twilio docs: TwiML <Play>)."""
    await rt.answer(call)
    await rt.prompt(call, verb)
    return None


async def _pause(rt: Interpreter, call: Call, verb: Verb, context: Context, url: str) -> Flow:
    """Wait silently; as the first verb it delays the pick-up (Twilio docs: TwiML <Pause>)."""
    await rt.prompt(call, verb)
    await rt.answer(call)
    return None


async def _hangup(rt: Interpreter, call: Call, verb: Verb, context: Context, url: str) -> Flow:
    """End the call (Twilio docs: TwiML <Hangup>)."""
    await rt.account.end(call)
    return END


async def _reject(rt: Interpreter, call: Call, verb: Verb, context: Context, url: str) -> Flow:
    """Refuse an unanswered call without picking up (Twilio docs: TwiML <Reject>, reason rejected|busy)."""
    if call.answered is not None:
        raise TwimlError(12200, "<Reject> on a call that was already answered")
    # Inferred: a busy rejection ends the call `busy`, a plain one `failed` (both are unanswered, unbilled).
    await rt.account.end(call, "busy" if verb.get("reason", "rejected") == "busy" else "failed")
    return END


async def _redirect(rt: Interpreter, call: Call, verb: Verb, context: Context, url: str) -> Flow:
    """Go on with the TwiML at another URL (Twilio docs: TwiML <Redirect>, method default POST)."""
    return Fetch(urljoin(url, verb.text), verb.get("method", "POST"))


async def _record(rt: Interpreter, call: Call, verb: Verb, context: Context, url: str) -> Flow:
    """Record the caller until a finish key, the maximum length or a hang-up (Twilio docs: TwiML <Record>)."""
    account = rt.account
    await rt.answer(call)
    if verb.flag("playBeep", True):
        rt.heard(call, Verb("Play", {}, "beep"))
    finish_keys = verb.get("finishOnKey", "1234567890*#")  # Twilio docs: <Record>, finishOnKey default: any key
    callback = verb.get("recordingStatusCallback")
    recording = account.start_recording(
        call,
        "RecordVerb",
        1,
        callback=urljoin(url, callback) if callback else None,
        method=verb.get("recordingStatusCallbackMethod", "POST"),
        events=verb.events("recordingStatusCallbackEvent", frozenset({"completed"})),
    )
    await account.recording_started(recording)
    digits: str | None = None
    hung_up = False
    try:
        while digits is None:
            kind, value = await rt.wait(call, verb.number("maxLength", 3600), frozenset({"digits"}))
            if kind == "timeout":
                break  # the maximum length: no Digits
            pressed = [key for key in str(value) if key in finish_keys]
            if pressed:
                digits = pressed[0]
    except Interrupt as interrupt:
        if interrupt.kind == "redirect":
            await account.finish_recording(recording)
            raise
        hung_up, digits = True, "hangup"
        account.close(call)
    recording.duration = account.recording_seconds(recording)
    params = {
        "RecordingUrl": recording_url(account.sid, recording.sid),
        "RecordingDuration": str(recording.duration),
        "RecordingSid": recording.sid,
    }
    if digits is not None:
        params["Digits"] = digits
    action = urljoin(url, verb.get("action")) if verb.get("action") else url  # default: the current document
    flow: Flow = None
    # Twilio docs: <Record>: an empty recording makes no action request; the next verb runs.
    if recording.duration > 0 or hung_up:
        flow = await rt.action(call, action, verb.get("method", "POST"), params)
    if hung_up:
        await account.report_end(call)

    async def callbacks() -> None:
        """Send the recording's callback, then its transcription."""
        await account.finish_recording(recording)
        if verb.flag("transcribe") and verb.get("transcribeCallback") and recording.status == "completed":
            await account.transcribe(call, recording, urljoin(url, verb.get("transcribeCallback")))

    if isinstance(flow, Fetch):
        flow.then = callbacks  # the recording's callbacks follow the action request
    else:
        await callbacks()
    return END if hung_up else flow
