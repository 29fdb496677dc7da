"""<Dial> to people: <Client>, <Number> and <Sip> legs ringing at once, the first to answer bridged.

Twilio docs: TwiML <Dial> (action, timeout, callerId, record, answerOnBridge, timeLimit, hangupOnStar),
<Client>, <Number> (url, sendDigits) and <Sip> (statusCallback, statusCallbackEvent on each noun).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin

from bridge.devtools.fake_twilio.interpreter import END, Context, Fetch, Flow, Interpreter, Interrupt
from bridge.devtools.fake_twilio.state import Call, Recording, recording_url
from bridge.devtools.fake_twilio.twiml import TOP_LEVEL, TwimlError, Verb

MAX_LEGS = 10  # Twilio docs: <Client>/<Number>: up to ten nouns ring at once
RECORDS = {"true": "record-from-answer", "false": "do-not-record"}  # Twilio docs: <Dial record>, legacy values


@dataclass
class Dialing:
    """One <Dial>'s legs and what became of them."""

    legs: list[Call] = field(default_factory=list)
    nouns: dict[str, Verb] = field(default_factory=dict)  # by leg sid
    winner: Call | None = None
    bridged: bool = False
    status: str = "no-answer"
    recording: Recording | None = None


def identity(noun: Verb) -> str:
    """Return the `To` of a noun's leg: client:NAME, the number, or the SIP URI."""
    if noun.name == "Client":
        named = [child.text for child in noun.children if child.name == "Identity"]
        return "client:" + (named[0] if named else noun.text)
    return noun.text


async def dial(rt: Interpreter, call: Call, verb: Verb, context: Context, url: str) -> Flow:
    """Ring the nouns, bridge the first to answer, then request the action (or go on with the next verb)."""
    nouns = verb.children or [Verb("Number", {}, verb.text)]
    names = {noun.name for noun in nouns}
    if names & {"Queue", "Conference"}:
        if len(nouns) != 1:
            raise TwimlError(12200, "<Queue> and <Conference> must be the only noun of their <Dial>")
        handler = rt.verbs.get("Dial" + nouns[0].name)
        if handler is None:
            raise TwimlError(12100, f"<Dial><{nouns[0].name}> is TwiML the stand-in does not model yet")
        return await handler(rt, call, verb, context, url)
    if len(nouns) > MAX_LEGS:
        raise TwimlError(12200, f"<Dial> rings at most {MAX_LEGS} nouns at once")
    account = rt.account
    if not verb.flag("answerOnBridge"):
        await rt.answer(call)  # Twilio docs: <Dial answerOnBridge>: without it the caller is answered at once
    record = RECORDS.get(verb.get("record"), verb.get("record", "do-not-record"))
    state = Dialing()
    caller_id = verb.get("callerId") or call.from_  # Twilio docs: <Dial callerId>: default, the caller's number
    for noun in nouns:
        callback = noun.get("statusCallback")
        leg = account.new_call(
            "outbound-dial",
            caller_id,
            identity(noun),
            parent=call,
            status_callback=urljoin(url, callback) if callback else None,
            status_callback_method=noun.get("statusCallbackMethod", "POST"),
            # Twilio docs: <Client>/<Number> statusCallbackEvent: without it only `completed` is sent.
            status_events=noun.events("statusCallbackEvent", frozenset({"completed"})),
            phase="ringing",
        )
        state.legs.append(leg)
        state.nouns[leg.sid] = noun
    for leg in state.legs:
        await account.progress(leg, "initiated")
    for leg in state.legs:
        await account.progress(leg, "ringing")
    if record.startswith("record-from-ringing"):
        state.recording = await _start_recording(rt, call, verb, url, record)
    try:
        await _ring(rt, call, verb, url, state)
        if state.bridged:
            await _talk(rt, call, verb, url, state, record)
    except Interrupt as interrupt:
        await _drop_legs(rt, state)
        if interrupt.kind == "redirect":
            if state.recording is not None:
                await account.finish_recording(state.recording)
            return interrupt.value  # type: ignore[no-any-return]
        account.close(call)
    return await _after(rt, call, verb, url, state)


async def _ring(rt: Interpreter, call: Call, verb: Verb, url: str, state: Dialing) -> None:
    """Wait for a leg to answer and be bridged, every leg to fail, or the timeout."""
    account = rt.account
    deadline = verb.number("timeout", 30)  # Twilio docs: <Dial timeout>, default 30 s
    token = object()
    account.clock.after(deadline, lambda: call.post("dial-timeout", token))
    while not state.bridged:
        kind, value = await rt.wait(call, None, frozenset({"leg", "dial-timeout"}))
        if kind == "dial-timeout":
            if value is token and state.winner is None:
                for leg in state.legs:
                    await account.end(leg, "no-answer")  # Twilio: SIP 487 on the legs nobody picked up
                state.status = "no-answer"
                return
            continue
        leg, move, detail = value
        if leg not in state.legs or (leg.over and move != "ended"):
            continue
        if move == "answer" and state.winner is None:
            state.winner = leg
            leg.extra.update(detail or {})
            await account.progress(leg, "in-progress")
            for other in state.legs:
                if other is not leg:
                    await account.end(other, "canceled")  # Twilio docs: <Client>: the others are canceled
            noun = state.nouns[leg.sid]
            if noun.get("sendDigits"):
                rt.heard(leg, Verb("Play", {"digits": noun.get("sendDigits")}, ""))
            if noun.get("url"):
                leg.phase = "whisper"
                _whisper(rt, leg, Fetch(urljoin(url, noun.get("url")), noun.get("method", "POST")))
            else:
                state.bridged = True
        elif move == "whispered" and leg is state.winner:
            state.bridged = True
        elif move == "reject" and leg.phase == "ringing":
            await account.end(leg, detail)
            state.status = detail
            if all(other.over for other in state.legs):
                return
        elif move == "hangup":
            if leg.phase == "whisper":
                leg.post("hangup")  # the whisper's runner ends the leg and says so
            elif leg.phase == "ringing":
                await account.end(leg, "busy")  # declined while ringing
                state.status = "busy"
                if all(other.over for other in state.legs):
                    return
        elif move == "ended" and leg is state.winner:
            state.status = "completed"  # hung up during the whisper: answered, never bridged
            return


def _whisper(rt: Interpreter, leg: Call, start: Fetch) -> None:
    """Run a <Number url>/<Client url> document on the answering leg; its end bridges the call."""
    parent = leg.parent
    assert parent is not None

    async def bridge(call: Call) -> None:
        """Tell the <Dial> the whisper ended: bridge now."""
        parent.post("leg", (call, "whispered", None))

    async def failed(call: Call, exc: Exception) -> None:
        """End the leg whose whisper could not run."""
        await rt.account.end(call)
        parent.post("leg", (call, "ended", None))

    async def run() -> None:
        """Run the whisper, then report the leg's end to the <Dial>."""
        # Twilio docs: <Number url>: the document may not contain <Dial>.
        await rt.run(leg, start, Context(allowed=TOP_LEVEL - {"Dial", "Enqueue"}, on_fall=bridge, on_error=failed))
        if leg.over:
            parent.post("leg", (leg, "ended", None))

    rt.account.activity.spawn(run(), name=f"whisper {leg.sid}")


async def _talk(rt: Interpreter, call: Call, verb: Verb, url: str, state: Dialing, record: str) -> None:
    """Keep the two bridged until one hangs up, the time limit, or the caller's * under hangupOnStar."""
    account = rt.account
    leg = state.winner
    assert leg is not None
    leg.phase = "bridged"
    await rt.answer(call)  # answerOnBridge: the caller is answered now
    state.status = "completed"
    if record.startswith("record-from-answer"):
        state.recording = await _start_recording(rt, call, verb, url, record)
    limit = verb.number("timeLimit", 14400)  # Twilio docs: <Dial timeLimit>, default four hours
    accept = frozenset({"leg", "digits"})
    while True:
        kind, value = await rt.wait(call, limit, accept)
        if kind == "timeout":
            break
        if kind == "digits":
            if verb.flag("hangupOnStar") and "*" in str(value):
                break
            continue
        other, move, _ = value
        if other is leg and move in ("hangup", "ended"):
            break
    await account.end(leg)


async def _start_recording(rt: Interpreter, call: Call, verb: Verb, url: str, record: str) -> Recording:
    """Start the <Dial record> recording: on the parent call, two channels when `-dual`."""
    callback = verb.get("recordingStatusCallback")
    recording = rt.account.start_recording(
        call,
        "DialVerb",
        2 if record.endswith("-dual") else 1,
        callback=urljoin(url, callback) if callback else None,
        method=verb.get("recordingStatusCallbackMethod", "POST"),
        events=verb.events("recordingStatusCallbackEvent", frozenset({"completed"})),
    )
    await rt.account.recording_started(recording)
    return recording


async def _drop_legs(rt: Interpreter, state: Dialing) -> None:
    """Hang up every leg: the ones still ringing are canceled, the answered one completed."""
    for leg in state.legs:
        if leg.phase == "whisper":
            leg.post("hangup")  # stop the whisper's runner too
        await rt.account.end(leg, "completed" if leg.answered else "canceled")


async def _after(rt: Interpreter, call: Call, verb: Verb, url: str, state: Dialing) -> Flow:
    """Request the <Dial action> with how it went, or go on with the next verb (Twilio docs: <Dial action>)."""
    account = rt.account
    winner = state.winner
    gone = call.over
    if gone and not state.bridged and winner is None:
        state.status = "no-answer"  # the caller hung up while it rang (as Twilio reports it)
    recording = state.recording
    if recording is not None:
        recording.duration = account.recording_seconds(recording)
    decided = winner or (state.legs[0] if len(state.legs) == 1 else None)
    params = {
        "DialCallStatus": state.status,
        "DialBridged": "true" if state.bridged else "false",
        "DialCallDuration": str(winner.duration() if winner else 0),
    }
    if decided is not None:
        params["DialCallSid"] = decided.sid
    if recording is not None and recording.duration > 0:
        params.update(
            RecordingUrl=recording_url(account.sid, recording.sid),
            RecordingSid=recording.sid,
            RecordingDuration=str(recording.duration),
        )
    flow: Flow = None
    if verb.get("action"):
        flow = await rt.action(call, urljoin(url, verb.get("action")), verb.get("method", "POST"), params)
    if gone:
        await account.report_end(call)
        flow = END
    if recording is not None:
        finish = account.finish_recording(recording)
        if isinstance(flow, Fetch):
            flow.then = lambda: finish  # the recording's callback follows the action request
        else:
            await finish
    return flow
