"""Build the TwiML that answers Twilio's voice requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from bridge.core.calls import Call
from bridge.core.events import AfterHours
from bridge.core.lines import Line, Lines, Menu
from bridge.core.phones import is_anonymous, is_client, is_sip
from bridge.ops.settings import TWILIO_HOLD_MUSIC, Settings
from webhooks.names import Route, route_url

CALL_EVENTS = "initiated ringing answered completed"
RECORDING_EVENTS = "completed absent"
# Twilio transcribes a <Record> only when it is shorter than 120 s (Twilio docs: TwiML <Record>,
# transcribe), so a message cut off at the limit must stop one second before it to be transcribed.
TRANSCRIBE_MAX_SECONDS = 119
SCREEN_SECONDS = 6  # how long the whisper waits for the agent's 1 before hanging up their leg
PARENT_PARAM = "ParentCallSid"  # the caller's CallSid, carried in the whisper's URLs
TURN_PARAM = "turn"  # which ring, stay in the queue or move of the call a request is about (our dedupe keys)
LINE_PARAM = "line"  # the line whose queue a caller waits in (the wait music's URL, with several lines)
# Where a caller who came after hours went (voicemail, forward), in the URLs of the TwiML that sent them there:
# each request Twilio makes of it says so, whichever of them arrives first.
AFTER_HOURS_PARAM = "after_hours"


@dataclass(frozen=True)
class TwilioConfig:
    """What the TwiML builders need from the settings, prepared once per app."""

    public_url: str
    record_calls: bool
    voicemail: bool
    transcribe: bool
    greeting: str
    caller_id: str | None
    screen_phone_agents: bool
    hold_music: str = TWILIO_HOLD_MUSIC
    queue_announce: float = 60.0  # QUEUE_ANNOUNCE_SECONDS: how often the wait music says the caller's place
    queue_max_wait: float = 300.0  # QUEUE_MAX_WAIT_SECONDS: the wait music lets the caller go after this long
    # Each line's queue, greeting, hold music and caller id (a line's unset one: the settings above).
    lines: Lines = field(default_factory=Lines)
    callback_offer: float | None = None  # CALLBACK_OFFER_SECONDS of the line made from the environment
    callback_prefixes: tuple[str, ...] = ()  # CALLBACK_ALLOWED_PREFIXES

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioConfig:
        """Build the builders' view of the settings."""
        return cls(
            public_url=settings.public_url,
            record_calls=settings.record_calls,
            voicemail=settings.voicemail,
            transcribe=settings.transcribe_voicemail,
            greeting=settings.voicemail_greeting,
            caller_id=settings.caller_id,
            screen_phone_agents=settings.screen_phone_agents,
            hold_music=settings.hold_music_url,
            queue_announce=settings.queue_announce_seconds,
            queue_max_wait=settings.queue_max_wait_seconds,
            lines=settings.phone_lines,
            callback_offer=settings.callback_offer_seconds,
            callback_prefixes=settings.callback_allowed_prefixes or (),
        )

    def url(self, route: Route) -> str:
        """Return the absolute callback URL of one of our routes."""
        return route_url(self.public_url, route)

    def line(self, key: str | None) -> Line:
        """Return a line by its key (an unknown one: the first line)."""
        return self.lines.get(key)

    def hold_music_of(self, line: Line) -> str:
        """Return what the line's waiting callers hear."""
        return line.hold_music_url or self.hold_music

    def announce_of(self, line: Line) -> float:
        """Return how often the line's waiting callers hear their place."""
        return line.queue_announce_seconds if line.queue_announce_seconds is not None else self.queue_announce

    def callback_offer_of(self, line: Line) -> float | None:
        """Return after how long the line's waiting callers are offered a callback (None: never)."""
        return line.callback_offer_seconds if self.lines.configured else self.callback_offer

    def max_wait_of(self, line: Line) -> float:
        """Return how long the line's callers may wait in its queue."""
        return line.routing.max_wait if line.routing is not None else self.queue_max_wait


def dial_number(config: TwilioConfig, number: str, caller_id: str | None = None) -> VoiceResponse:
    """Dial an agent's call out to `number`, showing the line's caller id (else CALLER_ID) when one is set.

    answerOnBridge keeps the agent's own leg unanswered until the customer picks up, so the agent hears
    the customer's phone ring rather than silence (Twilio docs: TwiML <Dial>, answerOnBridge).
    """
    response = VoiceResponse()
    extra: dict[str, Any] = {"answer_on_bridge": True}
    shown = caller_id or config.caller_id
    if shown:
        extra["caller_id"] = shown
    dial = start_dial(config, **extra)
    dial.number(number, status_callback=config.url(Route.STATUS), status_callback_event=CALL_EVENTS)
    response.append(dial)
    return response


def offer(config: TwilioConfig, call_sid: str, agents: list[str], seconds: int, turn: int) -> VoiceResponse:
    """Ring these agents at once for `seconds`; the first to answer takes the call, the others are canceled.

    `turn` numbers the call's rings, so that the end of each (the dial action) is told from the others.
    """
    response = VoiceResponse()
    dial = start_dial(config, timeout=seconds, answer_on_bridge=True, turn=turn)
    for identity in agents:
        _add_leg(dial, identity, config, call_sid)
    response.append(dial)
    return response


def enqueue(config: TwilioConfig, queue: str, turn: int, line: str | None = None) -> VoiceResponse:
    """Put the caller in the line's queue: the bridge's wait music, and its action says how they left.

    The bridge keeps the order and each caller's wait itself; Twilio's queue only holds the call until the
    bridge moves it (Twilio docs: TwiML <Enqueue>; Calls resource, update). With lines configured, the wait
    music's URL names the line, whose music, announcements and longest wait it plays.
    """
    response = VoiceResponse()
    action = f"{config.url(Route.QUEUE_ACTION)}?{urlencode({TURN_PARAM: turn})}"
    wait = config.url(Route.QUEUE_WAIT) + (f"?{urlencode({LINE_PARAM: line})}" if line is not None else "")
    response.enqueue(queue, action=action, method="POST", wait_url=wait, wait_url_method="POST")
    return response


def queue_wait(
    config: TwilioConfig, position: int | None, music: str | None = None, expected: str | None = None
) -> VoiceResponse:
    """Play the wait music (the line's, else HOLD_MUSIC_URL), saying the caller's place first when `position` is given.

    Twilio asks the waitUrl again each time this document ends (Twilio docs: TwiML <Enqueue>, waitUrl), so
    the music loops and the place is said again at the next turn that is due. `expected` is the wait the
    caller can expect, as people say it ("about five minutes"; bridge.core.estimate), said after the place.
    """
    response = VoiceResponse()
    if position is not None:
        response.say(f"Thank you for waiting. You are number {position} in line.")
        if expected is not None:
            response.say(f"Your expected wait is {expected}.")
    response.play(music or config.hold_music)
    return response


def leave() -> VoiceResponse:
    """Take the caller out of the queue; the queue's action then says where they go (Twilio docs: TwiML <Leave>)."""
    response = VoiceResponse()
    response.leave()
    return response


def come_back(config: TwilioConfig, turn: int) -> VoiceResponse:
    """Answer the queue's action after a move: harmless, and the same place the move sent the call to.

    Twilio runs the move's TwiML, not this (Twilio docs: TwiML <Enqueue>, action: `redirected`); should it
    ever run, it fetches what the move fetches rather than ending the call.
    """
    response = VoiceResponse()
    response.redirect(f"{config.url(Route.RESUME)}?{urlencode({TURN_PARAM: turn})}", method="POST")
    return response


def placement(
    config: TwilioConfig,
    call: Call,
    queue: str,
    *,
    line: str | None = None,
    greeting: str | None = None,
    menu: Menu | None = None,
) -> VoiceResponse:
    """Answer a request of the caller's with where they are: the menu, ring agents, wait, voicemail, apology, forward.

    A call that was answered, has ended, or is a call out has nothing more to hear from us. `greeting` is
    said first (the line's, when the call arrives); `line` names the queue's line in its wait music's URL;
    `menu` is the menu of the caller's line, for a caller who has not answered it yet.
    """
    placed = call.placed
    if placed is None or call.answered_leg is not None or call.ended_at is not None or call.direction == "outbound":
        return hangup()
    response = VoiceResponse()
    if greeting:
        response.say(greeting)
    if placed.kind == "menu":
        path = call.menu
        turn = len(path.presses) + 1 if path is not None else 1
        then = menu_prompt(config, menu, turn)
    elif placed.kind == "forward" and placed.to:
        then = forward(config, placed.to)
    elif placed.kind == "offer" and call.offers:
        last = call.offers[-1]
        then = offer(config, call.sid, last.agents, last.seconds, turn=len(call.offers))
    elif placed.kind == "queue":
        then = enqueue(config, queue, turn=len(call.offers), line=line)
    elif placed.kind == "voicemail":
        then = voicemail(config)
    elif placed.kind == "unavailable":
        then = unavailable()
    else:
        then = hangup()
    for verb in then.verbs:
        response.append(verb)
    return response


def menu_prompt(config: TwilioConfig, menu: Menu | None, turn: int) -> VoiceResponse:
    """Ask for one key while the menu's prompt plays; its action gets the key, or nothing once the timeout passed.

    Twilio docs, TwiML <Gather>: a key cuts the nested <Say> or <Play> short; `timeout` runs after it ends;
    actionOnEmptyResult makes the request without input too, so no key leads to the menu's default rather than
    past the <Gather>; an empty finishOnKey lets `#` be a key of the menu (by default it only ends the input).
    A prompt that is an http(s) URL is played, anything else said. `turn` numbers the hearings of the menu (a
    key it does not name repeats it), telling each answer from the others.
    """
    response = VoiceResponse()
    if menu is None:
        # The caller's line has no menu now (the lines changed meanwhile): no key leads to the line's own agents.
        response.redirect(f"{config.url(Route.MENU)}?{urlencode({TURN_PARAM: turn})}", method="POST")
        return response
    if turn > 1:
        response.say("Sorry, that is not one of the choices.")
    action = f"{config.url(Route.MENU)}?{urlencode({TURN_PARAM: turn})}"
    gather = Gather(num_digits=1, timeout=menu.timeout, action=action, method="POST", action_on_empty_result=True,
                    finish_on_key="")  # fmt: skip
    if menu.prompt.startswith(("https://", "http://")) and " " not in menu.prompt:
        gather.play(menu.prompt)
    else:
        gather.say(menu.prompt)
    response.append(gather)
    return response


def forward(config: TwilioConfig, number: str, *, after_hours: bool = False) -> VoiceResponse:
    """Forward the call to a number (a menu's key, or a closed line's after hours); its end comes to the dial action.

    Its <Number> reports no progress (no statusCallback): the number is nobody's phone to pop or hold. The
    caller's number shows, <Dial>'s default callerId (Twilio docs: TwiML <Dial>, callerId); answerOnBridge lets
    a caller not answered yet hear it ring. `after_hours`: the dial action's URL says the call came after hours.
    """
    response = VoiceResponse()
    mark = {AFTER_HOURS_PARAM: "forward"} if after_hours else {}
    dial = start_dial(config, turn=1, query=mark, answer_on_bridge=True)
    dial.number(number)
    response.append(dial)
    return response


def start_dial(
    config: TwilioConfig, turn: int | None = None, *, query: dict[str, str] | None = None, **extra: Any
) -> Dial:
    """Start a <Dial> that reports its end to the dial-action route and records when asked to.

    `turn` and `query` go in the dial action's URL (which ring it was; an after-hours mark).
    """
    params = {TURN_PARAM: str(turn)} if turn else {}
    params |= query or {}
    action = config.url(Route.DIAL_ACTION) + (f"?{urlencode(params)}" if params else "")
    options: dict[str, Any] = {"action": action, "method": "POST", **extra}
    if config.record_calls:
        options.update(
            record="record-from-answer-dual",
            recording_status_callback=config.url(Route.RECORDING_STATUS),
            recording_status_callback_event=RECORDING_EVENTS,
        )
    return Dial(**options)


def _add_leg(dial: Dial, identity: str, config: TwilioConfig, call_sid: str) -> None:
    """Add a <Client>, <Sip> or <Number> whose every progress event reaches the status route.

    A phone agent's <Number> gets a whisper (its `url` runs on the agent's leg after they pick up and
    before the caller is connected; Twilio docs: TwiML <Number>, url): a mobile voicemail that answers
    never presses 1, so it is hung up instead of taking the call.
    """
    callbacks = {"status_callback": config.url(Route.STATUS), "status_callback_event": CALL_EVENTS}
    if is_client(identity):
        dial.client(identity.removeprefix("client:"), **callbacks)
    elif is_sip(identity):
        dial.sip(identity, **callbacks)
    elif config.screen_phone_agents:
        whisper = f"{config.url(Route.SCREEN)}?{urlencode({PARENT_PARAM: call_sid})}"
        dial.number(identity, url=whisper, method="POST", **callbacks)
    else:
        dial.number(identity, **callbacks)


def screen(config: TwilioConfig, caller: str, call_sid: str) -> VoiceResponse:
    """Whisper who is calling to a phone agent and ask for 1; no answer hangs up their leg only."""
    response = VoiceResponse()
    action = config.url(Route.SCREEN_RESULT) + (f"?{urlencode({PARENT_PARAM: call_sid})}" if call_sid else "")
    gather = Gather(num_digits=1, timeout=SCREEN_SECONDS, action=action, method="POST")
    gather.say(f"Call from {_spoken(caller)}. Press 1 to take the call.")
    response.append(gather)
    response.hangup()
    return response


def screen_result(accepted: bool) -> VoiceResponse:
    """Connect the agent (an empty document ends the whisper and bridges the call), or hang up their leg."""
    return VoiceResponse() if accepted else hangup()


def _spoken(number: str) -> str:
    """Spell a number digit by digit for text-to-speech; a withheld one is said as such."""
    if is_anonymous(number):
        return "an anonymous caller"
    return " ".join(ch for ch in number if ch.isdigit())


def voicemail(config: TwilioConfig, greeting: str | None = None, *, after_hours: bool = False) -> VoiceResponse:
    """Play the greeting (VOICEMAIL_GREETING, or the one given) and record a message, transcribed when asked to.

    `after_hours`: the line is closed; the record's callbacks say so in their URLs.
    """
    response = VoiceResponse()
    response.say(greeting or config.greeting)
    mark = f"?{urlencode({AFTER_HOURS_PARAM: 'voicemail'})}" if after_hours else ""
    options: dict[str, Any] = {
        "action": config.url(Route.RECORD_ACTION) + mark,
        "method": "POST",
        "finish_on_key": "#",
        "play_beep": True,
        "recording_status_callback": config.url(Route.RECORDING_STATUS) + mark,
        "recording_status_callback_event": RECORDING_EVENTS,
    }
    if config.transcribe:
        options.update(
            max_length=TRANSCRIBE_MAX_SECONDS,
            transcribe=True,
            transcribe_callback=config.url(Route.TRANSCRIPTION) + mark,
        )
    response.record(**options)
    response.hangup()
    return response


def after_hours(config: TwilioConfig, kind: AfterHours, words: str, forward_to: str | None) -> VoiceResponse:
    """Answer a call that came while its line is closed: voicemail, the closed message, or a forward.

    The forward is the one a menu's key makes (`forward`), its dial action marked after hours; a forward that
    rings out goes on to the line's voicemail or the apology. The message is said, and the call ends.
    """
    if kind == "voicemail":
        return voicemail(config, words, after_hours=True)
    response = VoiceResponse()
    if words:
        response.say(words)
    then = forward(config, forward_to, after_hours=True) if kind == "forward" and forward_to else hangup()
    for verb in then.verbs:
        response.append(verb)
    return response


def unavailable() -> VoiceResponse:
    """Tell the caller nobody is available, and hang up."""
    response = VoiceResponse()
    response.say("Sorry, nobody is available to take your call. Please try again later.")
    response.hangup()
    return response


def cannot_dial() -> VoiceResponse:
    """Tell a browser agent the number cannot be dialed, and hang up."""
    response = VoiceResponse()
    response.say("Sorry, that number cannot be dialed. Please use the full international format.")
    response.hangup()
    return response


def not_your_line() -> VoiceResponse:
    """Tell an agent they cannot call from the line they chose, and hang up."""
    response = VoiceResponse()
    response.say("Sorry, you cannot call from that line. Please choose one of your own lines.")
    response.hangup()
    return response


def not_your_call() -> VoiceResponse:
    """Tell an agent they cannot join that call, and hang up."""
    response = VoiceResponse()
    response.say("Sorry, you are not on that call any more.")
    response.hangup()
    return response


def hangup() -> VoiceResponse:
    """End the call."""
    response = VoiceResponse()
    response.hangup()
    return response
