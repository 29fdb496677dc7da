"""Serve Twilio's Voice webhooks on a sub-app: guard, then parse -> translate -> store -> reply."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from multidict import MultiDict
from pydantic import BaseModel, ValidationError
from twilio.twiml.voice_response import VoiceResponse

from bridge.appkeys import CAPTURE, CLOCK, CUSTOMERS, INGEST, METRICS, SCHEDULES
from bridge.core import call_menu, call_room, hours
from bridge.core.calls import Call
from bridge.core.events import AfterHours, CallEvent
from bridge.core.lines import Line
from bridge.core.phones import is_device, is_e164, mask
from bridge.ops.frontdoor import BadField
from bridge.ops.settings import Settings
from schemas.twilio import (
    DialAction,
    IncomingCall,
    MenuChoice,
    QueueAction,
    QueueWait,
    RecordAction,
    RecordingStatus,
    RoomStatus,
    ScreenResult,
    StatusCallback,
    Transcription,
)
from webhooks import callback_twiml, room_twiml, signature, translate, twiml
from webhooks.names import PREFIX, Route, route_label
from webhooks.twiml import AFTER_HOURS_PARAM, PARENT_PARAM, TURN_PARAM, TwilioConfig

log = logging.getLogger("bridge.webhooks")

MAX_BODY = 64 * 1024  # Twilio's webhook bodies are a few KiB; anything near this is not Twilio
FORM_TYPE = "application/x-www-form-urlencoded"

FORM = web.RequestKey("twilio_form", MultiDict[str])
DIGEST = web.RequestKey("twilio_digest", str)  # of the signed URL and body: a replay's, whatever its headers
CONFIG = web.AppKey("twilio_config", TwilioConfig)
VALIDATORS = web.AppKey("twilio_validators", signature.Validators)
Model = TypeVar("Model", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- the guard: size -> method -> signature -> content type -> fields -----------------------------------
# Cheapest refusal first, and nothing unverified is parsed, stored or logged beyond its path. The size came
# first, at the root app's front door, which read the body within BODY_TIMEOUT_SECONDS and MAX_BODY.


@web.middleware
async def guard(request: web.Request, handler: Handler) -> Any:
    """Reject wrong-method, unsigned and non-form requests before anything is parsed or stored."""
    if not request.path.startswith(PREFIX + "/"):
        return await handler(request)  # the bare prefix also reaches this sub-app: a plain 404, not a webhook
    if request.match_info.http_exception is not None:
        raise _reject(request, request.match_info.http_exception)
    body = await request.read()  # read already, whole, by the front door
    is_form = request.content_type == FORM_TYPE
    params = signature.signed_params(body, is_form)
    # TLS ends at Heroku's and Fly's proxies, so request.url says http:// and an internal port:
    # the signed URL is rebuilt from PUBLIC_URL and the raw, un-normalised path and query.
    url = request.config_dict[CONFIG].public_url + request.raw_path
    if not signature.is_signed(
        request.config_dict[VALIDATORS],
        url,
        params,
        request.headers.get("X-Twilio-Signature", ""),
        request.headers.get("X-Twilio-Webhooks-Signature-Settings"),
    ):
        raise _reject(request, web.HTTPForbidden(reason="missing or invalid X-Twilio-Signature"))
    if not is_form or not isinstance(params, MultiDict):
        raise _reject(request, web.HTTPUnsupportedMediaType(reason=f"Content-Type must be {FORM_TYPE}"))
    request[FORM] = params
    request[DIGEST] = hashlib.sha256(url.encode("utf-8", "surrogateescape") + b"\n" + body).hexdigest()
    try:
        return await handler(request)
    except BadField as exc:
        raise _reject(request, exc) from None
    except translate.InvalidField as exc:
        raise _reject(request, BadField(exc.field, exc.problem)) from None


def _reject(request: web.Request, exc: web.HTTPException) -> web.HTTPException:
    """Count a rejected webhook by route; the front door logs it (quietly, and never its parameters)."""
    request.config_dict[METRICS].webhooks.labels(route_label(request.path), f"rejected_{exc.status}").inc()
    return exc


# --- the steps every handler takes ------------------------------------------------------------------------


def _last_values(form: MultiDict[str]) -> dict[str, str]:
    """Flatten a form to one value per name (the last, should Twilio ever repeat one)."""
    return {key: form.getall(key)[-1] for key in form}


def _parse(model: type[Model], request: web.Request, fallback: dict[str, str] | None = None) -> Model:
    """Validate the form into a model, or answer 400 naming the first bad field (`fallback`: values for absent ones)."""
    values = _last_values(request[FORM])
    for name, value in (fallback or {}).items():
        if value and not values.get(name):
            values[name] = value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "body"
        problem = "missing required field" if error["type"] == "missing" else "invalid value"
        raise BadField(field, problem) from exc


def _now(request: web.Request) -> datetime:
    """Return the app clock's time."""
    return request.config_dict[CLOCK]()


async def _accept(request: web.Request, route: Route, event: CallEvent, turn: str | None = None) -> Call | None:
    """Store the event and its actions durably before any reply goes out; return the call as it now stands.

    `turn` tells apart requests whose key fields alone do not (else our URL's turn does).
    """
    form = request[FORM]
    # The raw MultiDict, not the flattened form: stored keys hold a repeated field's first value.
    turn = turn or request.query.get(TURN_PARAM) or None
    token = request.headers.get("I-Twilio-Idempotency-Token")
    keys = translate.dedupe_keys(route, form, token, request[DIGEST], turn)
    ingested = await request.config_dict[INGEST](keys, event)
    outcome = "duplicate" if ingested.duplicate else "accepted"
    capture = request.config_dict.get(CAPTURE)
    if capture is not None:
        capture.record(
            event.call_sid, request.raw_path, _last_values(form), request.headers, request.config_dict[CLOCK]()
        )
    request.config_dict[METRICS].webhooks.labels(route.value, outcome).inc()
    log.info("webhook %s %s for call %s (%s)", route.value, outcome, event.call_sid, event.kind)
    if ingested.outcome is not None:
        return ingested.outcome.call
    # A retry of a request already stored: answer it as the call now stands (the same TwiML, or what follows).
    return await request.config_dict[INGEST].current(event.call_sid)


def _placed(request: web.Request, call: Call | None, *, greet: bool = False, chose: bool = False) -> web.Response:
    """Answer a request of the caller's with where routing placed them, in their line's queue.

    `greet`: the call just arrived, so its line's greeting comes first (or, its line closed, its after hours).
    `chose`: the request is an answer to the menu, which may lead to a closed line's after hours.
    """
    if call is None:
        return _twiml(twiml.hangup())
    config = request.config_dict[CONFIG]
    own = config.line(call.line)  # the number called: its greeting and its menu
    line = config.line(call.route_line)  # the line whose queue takes the caller: the menu's choice, else its own
    if call.after_hours is not None and (greet or chose):
        # Closed (the number called, or the line its menu led to): that line's after hours, and never the menu.
        if call.ended_at is not None:
            return _twiml(twiml.hangup())
        applies = hours.resolved(line.hours, _schedules(request))
        words = hours.closed_words(line, call.after_hours, applies)
        return _twiml(twiml.after_hours(config, call.after_hours, words, line.after_hours.value))
    named = line.key if config.lines.configured else None
    greeting = own.greeting if greet else None
    return _twiml(twiml.placement(config, call, line.queue, line=named, greeting=greeting, menu=own.menu))


def _schedules(request: web.Request) -> hours.Schedules | None:
    """Return what the bridge last read of the lines' Zendesk schedules (None: no line uses one)."""
    book = request.config_dict.get(SCHEDULES)
    return book.schedules if book is not None else None


def _after_hours(request: web.Request, event: CallEvent, line: Line | None = None) -> CallEvent:
    """Say on the event whether its call came after hours: by a line's hours (`line`), or our URL's mark.

    At the call's arrival the hours of the line called decide, at the event's moment; at a menu's answer, those
    of the line its key leads to. Every later request of an after-hours call comes to a URL our after-hours
    TwiML marked.
    """
    closed: AfterHours | None
    if line is not None:
        schedules = _schedules(request)
        closed = hours.after_hours(line, event.at, schedules)
        if closed is not None:  # why nobody's phone rings for the call
            why = hours.opening(line.hours, event.at, schedules).why
            log.info("call %s: line %s is closed (%s): %s", event.call_sid, line.name or mask(line.number), why, closed)
    else:
        mark = request.query.get(AFTER_HOURS_PARAM)
        closed = "voicemail" if mark == "voicemail" else "forward" if mark == "forward" else None
    return event.model_copy(update={"after_hours": closed}) if closed is not None else event


def _chosen_line(config: TwilioConfig, called: str, event: CallEvent) -> Line | None:
    """Return the line a menu's answer leads to, should it decide (None: it leads elsewhere, or repeats the menu)."""
    own = config.lines.called(called) or config.lines.first
    led = call_menu.leads(own.menu, own.key, event.pressed or "", event.sequence or 1)
    return config.line(led[0].value) if led is not None and led[0].kind == "line" else None


def _turn(request: web.Request) -> int:
    """Return which ring, stay or move of the call a request is about (from the bridge's own URL)."""
    raw = request.query.get(TURN_PARAM, "")
    return int(raw) if raw.isdigit() and len(raw) < 9 else 0


def _twiml(response: VoiceResponse) -> web.Response:
    """Serve TwiML."""
    return web.Response(text=str(response), content_type="text/xml")


def _no_content() -> web.Response:
    """Answer a callback whose body Twilio ignores."""
    return web.Response(status=204)


# --- handlers ---------------------------------------------------------------------------------------------


async def incoming(request: web.Request) -> web.Response:
    """Answer a call to our number: store it, and ring the agents routing offers it to (or queue it, or voicemail)."""
    form = _parse(IncomingCall, request)
    config = request.config_dict[CONFIG]
    called = config.lines.called(form.to) or config.lines.first
    event = _after_hours(request, translate.incoming(form, _now(request)), called)
    customers = request.config_dict[CUSTOMERS]
    led = [target.value for target in called.menu.options.values() if target.kind == "line"] if called.menu else []
    if event.after_hours is None and is_e164(form.from_) and customers.wanted(called.key, *led):
        # Routing that knows the customer needs their Zendesk data before the first agent rings: wait for it at
        # most LOOKUP_BUDGET_MS, else route on what the number's last look-up found; what comes later applies
        # from the next offer on (docs/routing.md). A menu plays first: the look-up runs while it does.
        arrival = await customers.arrive(form.call_sid, form.from_, wait=called.menu is None)
        log.info(
            "call %s: the caller's Zendesk data %s",
            form.call_sid,
            "in" if arrival.fresh else "late: routed on the last look-up's" if arrival.known else "late",
        )
        if arrival.known is not None:
            event = event.model_copy(update={"customer": arrival.known})
    call = await _accept(request, Route.INCOMING, event)
    return _placed(request, call, greet=True)


async def outgoing(request: web.Request) -> web.Response:
    """Place an agent's call (browser or SIP desk phone) to the number it dialed, or take them into a call's room."""
    form = _parse(IncomingCall, request)
    if form.room:
        return await _join_room(request, form, form.room)
    number = translate.dialed_number(form.to)
    if not is_device(form.from_) or not is_e164(number):
        log.warning(
            "outgoing call %s from %s to %s refused: needs From=client:NAME or sip:… and an E.164 number",
            form.call_sid,
            mask(form.from_),
            mask(form.to),
        )
        return _twiml(twiml.cannot_dial())
    config = request.config_dict[CONFIG]
    line = config.lines.for_call_out(form.from_, form.call_from)
    if line is None:
        # The softphone offers only the agent's own lines: anything else would show another line's number.
        log.warning("outgoing call %s from %s refused: CallFrom %s is not a line of theirs", form.call_sid,
                    mask(form.from_), mask(form.call_from))  # fmt: skip
        return _twiml(twiml.not_your_line())
    event = translate.outgoing(form, _now(request)).model_copy(update={"line": line.key})
    await _accept(request, Route.OUTGOING, event)
    return _twiml(twiml.dial_number(config, number, line.caller_id))


async def _join_room(request: web.Request, form: IncomingCall, parent: str) -> web.Response:
    """Take a browser agent into the room of a call they are on (the softphone's Resume); refuse anyone else."""
    config = request.config_dict[CONFIG]
    # Kept either way: the agent's call is a way into a room, never a call out of its own (no ticket, no record).
    event = translate.outgoing(form, _now(request)).model_copy(update={"joins": parent})
    await _accept(request, Route.OUTGOING, event)
    call = await request.config_dict[INGEST].current(parent)
    if call is None or call.room is None or call.over or form.from_ not in call_room.members(call):
        log.warning("room join %s from %s refused: not an agent of call %s, or it is not in its room",
                    form.call_sid, mask(form.from_), parent)  # fmt: skip
        return _twiml(twiml.not_your_call())
    line = config.line(call.route_line)
    named = line.key if config.lines.configured else None
    return _twiml(room_twiml.agent(config, parent, form.from_, named))


async def room(request: web.Request) -> web.Response:
    """Bring the customer's call into its room, where the bridge moved it (to hold it, or to bring others in)."""
    form = _parse(IncomingCall, request)
    call = await _accept(request, Route.ROOM, translate.room_entered(form, _now(request)))
    if call is None or call.ended_at is not None:
        return _twiml(twiml.hangup())
    config = request.config_dict[CONFIG]
    # Transferred to a line, the customer hears that line's music (the move's Url names it); else their own line's.
    line = config.line(request.query.get(room_twiml.MUSIC_PARAM) or call.route_line)
    return _twiml(room_twiml.customer(config, call.sid, line.key if config.lines.configured else None))


async def room_status(request: web.Request) -> web.Response:
    """Record what happened in a call's room: who joined, left or was held, its start and end."""
    form = _parse(RoomStatus, request)
    # Conference events name no call and share sequence numbers across rooms: the room and the event tell them apart.
    turn = f"{form.friendly_name}|{form.event}|{form.call_sid or ''}"
    await _accept(request, Route.ROOM_STATUS, translate.room_status(form, _now(request)), turn)
    return _no_content()


async def room_left(request: web.Request) -> web.Response:
    """Record that the customer's stay in the room is over, and end their call."""
    form = _parse(DialAction, request)
    await _accept(request, Route.ROOM_LEFT, translate.room_left(form, _now(request)))
    return _twiml(twiml.hangup())


async def hold_music(request: web.Request) -> web.Response:
    """Play the line's hold music to a customer on hold in the room, looped; nothing is stored."""
    config = request.config_dict[CONFIG]
    line = config.line(request.query.get(room_twiml.MUSIC_PARAM))
    return _twiml(room_twiml.hold_music(config.hold_music_of(line)))


async def status(request: web.Request) -> web.Response:
    """Record a call-progress event of the parent leg or of a dialed leg."""
    form = _parse(StatusCallback, request)
    await _accept(request, Route.STATUS, translate.status(form, _now(request)))
    return _no_content()


async def dial_action(request: web.Request) -> web.Response:
    """Record how the <Dial> ended; hang up after a conversation, else go where routing sends the caller next."""
    form = _parse(DialAction, request)
    event = _after_hours(request, translate.dial_action(form, _now(request)))
    return _placed(request, await _accept(request, Route.DIAL_ACTION, event))


async def resume(request: web.Request) -> web.Response:
    """Answer a call the bridge moved (out of the queue): ring the agents it was moved to, or what is due now."""
    form = _parse(IncomingCall, request)
    event = translate.resumed(form, _now(request)).model_copy(update={"sequence": _turn(request)})
    return _placed(request, await _accept(request, Route.RESUME, event))


async def queue_action(request: web.Request) -> web.Response:
    """Record how the caller left the queue, and answer as routing decided (Twilio ignores it after a hang-up)."""
    form = _parse(QueueAction, request)
    event = translate.queue_left(form, _now(request))
    call = await _accept(request, Route.QUEUE_ACTION, event)
    if event.queue_result == "moved":
        return _twiml(twiml.come_back(request.config_dict[CONFIG], 0))
    return _placed(request, call)


async def queue_wait(request: web.Request) -> web.Response:
    """Play the wait music, saying the caller's place when it is due; let a caller out whose wait is over.

    Nothing is stored but when the place was last said: the caller's wait is the bridge's own record.
    """
    form = _parse(QueueWait, request)
    config = request.config_dict[CONFIG]
    line = config.line(request.query.get(twiml.LINE_PARAM))  # our own URL names the caller's line
    place, due, waited = await request.config_dict[INGEST].announce(form.call_sid, config.announce_of(line))
    if place is None or waited >= config.max_wait_of(line):
        # Not in the bridge's queue (already sent elsewhere), or its wait is over and the move to voicemail did
        # not happen: leave, and the queue's action says where to (Twilio docs: TwiML <Leave>).
        return _twiml(twiml.leave())
    expected = await request.config_dict[CUSTOMERS].expected_wait(place, line.key) if due else None
    offer = config.callback_offer_of(line)
    if offer is not None and waited >= offer:
        # Long enough in line: the wait music offers a callback, or voicemail now (docs/callbacks.md).
        named = line.key if config.lines.configured else None
        return _twiml(callback_twiml.offer(config, place if due else None, config.hold_music_of(line), named))
    return _twiml(twiml.queue_wait(config, place if due else None, config.hold_music_of(line), expected))


async def menu(request: web.Request) -> web.Response:
    """Record the key the caller pressed at their line's menu (or that none came), and answer with where it leads."""
    form = _parse(MenuChoice, request)
    event = translate.menu_chosen(form, _turn(request), _now(request))
    chosen = _chosen_line(request.config_dict[CONFIG], form.to, event)
    # A line the key leads to that is closed now sends the caller to its after hours (bridge.core.call_menu).
    event = _after_hours(request, event, chosen) if chosen is not None else event
    return _placed(request, await _accept(request, Route.MENU, event), chose=True)


async def screen(request: web.Request) -> web.Response:
    """Whisper to a phone agent who picked up: who is calling, and press 1 to take the call.

    Nothing is stored: the whisper changes nothing yet; what the agent presses does (screen-result).
    """
    form = _parse(IncomingCall, request)  # the agent's leg; its From is the caller (the <Dial> caller id)
    parent = form.parent_call_sid or request.query.get(PARENT_PARAM, "")
    return _twiml(twiml.screen(request.config_dict[CONFIG], form.from_, parent))


async def screen_result(request: web.Request) -> web.Response:
    """Record whether the phone agent pressed 1, then connect them or hang up their leg."""
    form = _parse(ScreenResult, request)
    # The parent's sid rides in our own URL too: a <Gather action> request is the leg's, and Twilio's
    # docs do not promise it names the parent.
    parent = form.parent_call_sid or request.query.get(PARENT_PARAM)
    if not parent:
        raise BadField("ParentCallSid", "missing required field")
    event = translate.screened(form, parent, _now(request))
    await _accept(request, Route.SCREEN_RESULT, event)
    return _twiml(twiml.screen_result(event.status == "accepted"))


async def record_action(request: web.Request) -> web.Response:
    """Record that the caller left a message, and hang up."""
    form = _parse(RecordAction, request)
    await _accept(request, Route.RECORD_ACTION, _after_hours(request, translate.record_action(form, _now(request))))
    return _twiml(twiml.hangup())


async def recording_status(request: web.Request) -> web.Response:
    """Record that a recording is ready (or absent); a room's names no call, so our URL names it."""
    form = _parse(RecordingStatus, request, {"CallSid": request.query.get(PARENT_PARAM, "")})
    event = _after_hours(request, translate.recording_status(form, _now(request)))
    await _accept(request, Route.RECORDING_STATUS, event)
    return _no_content()


async def transcription(request: web.Request) -> web.Response:
    """Record a voicemail transcription (or its failure)."""
    form = _parse(Transcription, request)
    await _accept(request, Route.TRANSCRIPTION, _after_hours(request, translate.transcription(form, _now(request))))
    return _no_content()


HANDLERS: dict[Route, Handler] = {
    Route.INCOMING: incoming,
    Route.OUTGOING: outgoing,
    Route.STATUS: status,
    Route.DIAL_ACTION: dial_action,
    Route.RECORD_ACTION: record_action,
    Route.RECORDING_STATUS: recording_status,
    Route.TRANSCRIPTION: transcription,
    Route.SCREEN: screen,
    Route.SCREEN_RESULT: screen_result,
    Route.QUEUE_WAIT: queue_wait,
    Route.QUEUE_ACTION: queue_action,
    Route.RESUME: resume,
    Route.MENU: menu,
    Route.ROOM: room,
    Route.ROOM_STATUS: room_status,
    Route.ROOM_LEFT: room_left,
    Route.HOLD_MUSIC: hold_music,
}


def _all_handlers() -> dict[Route, Handler]:
    """Return every route's handler: these, and the callbacks' (webhooks/callback_routes.py)."""
    from webhooks.callback_routes import CALLBACK_HANDLERS  # it builds on this module's steps

    return {**HANDLERS, **CALLBACK_HANDLERS}


def setup(app: web.Application, settings: Settings) -> None:
    """Mount the Twilio routes, behind the guard, on a sub-app at PREFIX."""
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    # A sub-app, so that the guard runs only under PREFIX; the root app keeps client_max_size and
    # json_errors, and its keys (INGEST, CLOCK, METRICS, CAPTURE) are read through request.config_dict.
    sub = web.Application(middlewares=[guard])
    sub[CONFIG] = TwilioConfig.from_settings(settings)
    keys = {key_id: secret.get_secret_value() for key_id, secret in settings.twilio_webhook_keys.items()}
    sub[VALIDATORS] = signature.validators_for(token, keys)
    for route, handler in _all_handlers().items():
        sub.router.add_post(f"/{route.value}", handler)
    app.add_subapp(PREFIX, sub)


__all__ = ["FORM", "MAX_BODY", "BadField", "setup"]
