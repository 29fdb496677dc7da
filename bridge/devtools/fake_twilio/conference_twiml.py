"""<Dial><Conference>: a call in a room, hearing wait music, hold music, announcements or the others, until it leaves.

Twilio docs: TwiML <Conference> (waitUrl played once then silence; participantLabel 16025; maxParticipants;
coach 13240), <Dial> (with a conference, the action gets DialCallStatus=answered and neither DialCallSid nor
DialCallDuration; timeLimit and hangupOnStar apply, callerId and timeout have no effect), errors 13238
(the verbs a waitUrl, holdUrl or announceUrl document may use) and 16020 (conference full).
"""

from __future__ import annotations

from urllib.parse import urljoin

from bridge.devtools.fake_twilio.conference_state import Conference, Participant, Settings, live_conference
from bridge.devtools.fake_twilio.interpreter import END, Context, Fetch, Flow, Interpreter, Interrupt
from bridge.devtools.fake_twilio.outbound import Placement, record_call, ring
from bridge.devtools.fake_twilio.queues import DEFAULT_PLAYLIST
from bridge.devtools.fake_twilio.state import Call
from bridge.devtools.fake_twilio.twiml import TwimlError, Verb, parse
from bridge.devtools.fake_twilio.webhooks import FetchError

MUSIC_VERBS = frozenset({"Play", "Say", "Pause", "Redirect"})  # Twilio docs: error 13238
MUSIC = Context(allowed=MUSIC_VERBS, nested=True)
IDLE_HOPS = 10  # <Redirect>s followed without any time passing before the music is given up (a loop of nothing)
Music = tuple[list[Verb], str]  # a document and its URL, which its relative <Redirect>s resolve against


def checked(verbs: list[Verb]) -> list[Verb]:
    """Refuse a music or announcement document using a verb other than Play, Say, Pause, Redirect (13238)."""
    for verb in verbs:
        if verb.name not in MUSIC_VERBS:
            raise TwimlError(13238, f"<{verb.name}> is not allowed in waitUrl, holdUrl or announceUrl TwiML")
    return verbs


async def load_music(rt: Interpreter, call: Call, url: str | None, method: str, base: str = "") -> Music:
    """Fetch wait or hold music for a call (audio becomes a <Play>); None is Twilio's own music, '' silence."""
    if url is None:
        return [Verb("Play", {}, DEFAULT_PLAYLIST)], ""  # played, never fetched (Twilio docs: default playlist)
    if url == "":
        return [], ""
    target = urljoin(base, url)
    return checked(await rt.load(call, Fetch(target, method))), target


async def load_announcement(rt: Interpreter, conference: Conference, url: str, method: str) -> Music:
    """Fetch an AnnounceUrl document once for a whole room (inferred: with the conference's parameters)."""
    params = {"AccountSid": rt.account.sid, "ConferenceSid": conference.sid, "FriendlyName": conference.name}
    body = await rt.account.sender.fetch(conference.sid, conference.created, url, method, params)
    return checked(parse(body)), url


async def play(rt: Interpreter, call: Call, music: Music) -> None:
    """Play a music or announcement document once, following its <Redirect>s; a failure leaves silence."""
    verbs, url = music
    idle_hops, since = 0, rt.account.now
    try:
        while True:
            flow = await rt.execute(call, verbs, MUSIC, url)
            if not isinstance(flow, Fetch):
                return  # Twilio docs: waitUrl: "once the TwiML document … runs out of verbs, silence will be played"
            idle_hops = idle_hops + 1 if rt.account.now == since else 0
            since = rt.account.now
            if idle_hops > IDLE_HOPS:
                return
            verbs, url = checked(await rt.load(call, flow)), flow.url
    except (FetchError, TwimlError) as exc:
        call.errors.append(str(exc.code))


async def attend(rt: Interpreter, call: Call, part: Participant, wait: Music | None, star: bool = False) -> str:
    """Hear the room until the participant is out: 'left', 'star' or 'time-limit'; hang-ups and redirects raise."""
    conference = part.conference
    call.attending = part
    heard = ""
    try:
        while not part.left:
            try:
                if part.announcements:
                    await play(rt, call, part.announcements.popleft())
                    continue
                mode = "hold" if part.hold else "wait" if conference.status == "init" else "talk"
                if mode != heard:
                    heard = mode
                    if mode == "hold":
                        await _hold_music(rt, call, part)
                    elif mode == "wait" and wait is not None:
                        music, wait = wait, None  # Twilio docs: <Conference waitUrl> is not requested again
                        await play(rt, call, music)
                _, keys = await rt.wait(call, None, frozenset({"digits"}))
                if star and "*" in str(keys):
                    return "star"  # Twilio docs: <Dial hangupOnStar>: leave the conference with '*'
            except Interrupt as interrupt:
                if interrupt.kind != "conference":
                    raise
                if interrupt.value[1] == "time-limit":
                    return "time-limit"
        return "left"
    finally:
        call.attending = None


async def _hold_music(rt: Interpreter, call: Call, part: Participant) -> None:
    """Play the participant's HoldUrl (GET by default), or Twilio's music when it has none."""
    try:
        music = await load_music(rt, call, part.hold_url, part.hold_method)
    except (FetchError, TwimlError) as exc:
        call.errors.append(str(exc.code))  # inferred: the participant stays held, in silence
        return
    await play(rt, call, music)


def _settings(noun: Verb, url: str) -> Settings:
    """Read what this noun would set for a conference it creates (Twilio docs: the first participant's wins)."""
    callback, recording = noun.get("statusCallback"), noun.get("recordingStatusCallback")
    return Settings(
        callback=urljoin(url, callback) if callback else None,
        method=noun.get("statusCallbackMethod", "POST"),
        events=noun.events("statusCallbackEvent", frozenset()),
        record=noun.get("record") == "record-from-start",
        recording_callback=urljoin(url, recording) if recording else None,
        recording_method=noun.get("recordingStatusCallbackMethod", "POST"),
        recording_events=noun.events("recordingStatusCallbackEvent", frozenset({"completed"})),
        max_participants=int(noun.number("maxParticipants", 250)),
    )


async def _after(rt: Interpreter, call: Call, verb: Verb, url: str, status: str) -> Flow:
    """Request the <Dial action> with DialCallStatus only, or go on with the next verb (Twilio docs: <Dial>)."""
    if not verb.get("action"):
        return END if call.over else None
    return await rt.action(
        call, urljoin(url, verb.get("action")), verb.get("method", "POST"), {"DialCallStatus": status}
    )


async def dial_conference(rt: Interpreter, call: Call, verb: Verb, context: Context, url: str) -> Flow:
    """Join the named room; when the call leaves it, request the Dial action or go on (Twilio docs: <Conference>)."""
    noun = verb.children[0]
    if verb.get("record", "do-not-record") not in ("do-not-record", "false"):
        raise TwimlError(12200, "<Dial record> does not record a <Conference>: use <Conference record>")
    account = rt.account
    await rt.answer(call)
    conference = live_conference(account, noun.text)
    label, coach = noun.get("participantLabel") or None, noun.get("coach") or None
    start = noun.flag("startConferenceOnEnter", True)
    coached = conference.find(coach) if conference is not None and coach is not None else None
    if coach is not None and (
        coached is None or not coached.joined or conference is None or not conference.starts_with()
    ):
        call.errors.append("13240")  # Twilio docs: coach: "the call failing to the action URL"
        return await _after(rt, call, verb, url, "failed")
    if label is not None and conference is not None and conference.find(label) is not None:
        call.errors.append("16025")  # Twilio docs: participantLabel: not added; the next verb runs
        return None
    if conference is not None and conference.full():
        call.errors.append("16020")  # Twilio docs: error 16020, conference full; inferred: the Dial fails
        return await _after(rt, call, verb, url, "failed")
    wait: Music | None = None
    wait_url, wait_method = noun.attributes.get("waitUrl"), noun.get("waitMethod", "POST")
    if conference is None or not conference.starts_with(start):
        try:
            wait = await load_music(rt, call, wait_url, wait_method, url)
        except (FetchError, TwimlError) as exc:
            # Twilio docs: waitUrl: "If the request to your waitUrl fails, the Conference will not be fully
            # established": the Dial ends, to its action or the next verb.
            call.errors.append(str(exc.code))
            return await _after(rt, call, verb, url, "failed")
    conference = live_conference(account, noun.text) or Conference(account, noun.text, _settings(noun, url))
    part = Participant(
        call,
        conference,
        account.now,
        label=label,
        muted=noun.flag("muted"),
        coaching=coach is not None,
        call_sid_to_coach=coach,
        start_on_enter=start,
        end_on_exit=noun.flag("endConferenceOnExit"),
        beep=noun.get("beep", "true"),
        wait_url=wait_url,
        wait_method=wait_method,
    )
    await conference.join(part)
    limit = verb.number("timeLimit", 14400)  # Twilio docs: <Dial timeLimit>: "you'll be removed from the conference"
    account.clock.after(limit, lambda: None if part.left else call.post("conference", (part, "time-limit")))
    try:
        why = await attend(rt, call, part, wait, star=verb.flag("hangupOnStar"))
    except Interrupt as interrupt:
        if interrupt.kind == "redirect":
            await conference.leave(part, "participant_updated_via_api", "in-progress")
            return interrupt.value  # type: ignore[no-any-return]
        account.close(call)
        reason = "participant_updated_via_api" if interrupt.value == "api" else "participant_hung_up"
        await conference.leave(part, reason, "completed")
        await _after(rt, call, verb, url, "answered")  # requested; its reply is ignored
        await account.report_end(call)
        return END
    if why != "left":
        await conference.leave(part, None, "in-progress")  # inferred: the docs name no reason for these two
    return await _after(rt, call, verb, url, "answered")


async def run_added(rt: Interpreter, call: Call, part: Participant, seconds: float, record: Placement | None) -> None:
    """Ring a participant added through the REST API; answered, it is in the room until it leaves, then hangs up."""
    account, conference = rt.account, part.conference
    pickup = await ring(rt, call, seconds)
    if pickup is None:
        if not part.left:
            await conference.add_failed(part, call.status)  # Twilio docs: participant_add_failed
        return
    if record is not None:
        await record_call(rt, call, record)
    wait: Music | None = None
    if not part.left and not conference.starts_with(part.start_on_enter):
        try:
            wait = await load_music(rt, call, part.wait_url, part.wait_method)
        except (FetchError, TwimlError) as exc:
            call.errors.append(str(exc.code))
            await account.end(call)
            await conference.add_failed(part, call.status)  # inferred: as for a call that failed
            return
    if part.left:  # the room ended, or it was removed, while it rang
        await account.end(call)
        return
    await conference.join(part)
    try:
        await attend(rt, call, part, wait)
    except Interrupt as interrupt:
        if interrupt.kind == "redirect":
            await conference.leave(part, "participant_updated_via_api", "in-progress")
            await rt.run(call, interrupt.value)
            return
        account.close(call)
        reason = "participant_updated_via_api" if interrupt.value == "api" else "participant_hung_up"
        await conference.leave(part, reason, "completed")
        await account.report_end(call)
        return
    await account.end(call)  # removed, or the room ended: it has no TwiML of its own to go on with


def register(rt: Interpreter) -> None:
    """Teach the interpreter <Dial><Conference>."""
    rt.verbs["DialConference"] = dial_conference
