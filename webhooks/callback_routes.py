"""Callbacks' webhooks: the caller's keys at the offer, and the calls of each turn (docs/callbacks.md).

Every event is the original call's (named in our own URLs after the caller has gone), so a callback's turns
land on the state, and the ticket, of the call that asked.
"""

from __future__ import annotations

import logging

from aiohttp import web
from twilio.twiml.voice_response import VoiceResponse

from bridge.appkeys import INGEST
from bridge.core.callback_numbers import accepted
from bridge.core.events import CallEvent, EventKind
from bridge.core.phones import is_device, mask
from bridge.ops.frontdoor import BadField
from schemas.twilio import DialAction, IncomingCall, MenuChoice, StatusCallback
from webhooks import callback_twiml
from webhooks.names import Route
from webhooks.routes import CONFIG, Handler, _accept, _now, _parse, _twiml
from webhooks.twiml import LINE_PARAM, TURN_PARAM

log = logging.getLogger("bridge.webhooks")
# Twilio docs: Call resource, Status values: what the agent's call's statuses are as a leg's.
_STATUS = {"queued": "initiated", "in-progress": "answered"}


def _original(request: web.Request) -> tuple[str, int]:
    """Return the call that asked and the turn, from our own URL."""
    call_sid = request.query.get(callback_twiml.CALL_PARAM, "")
    turn = request.query.get(TURN_PARAM, "")
    if not call_sid.startswith("CA") or not turn.isdigit() or len(turn) > 6:
        raise BadField(callback_twiml.CALL_PARAM, "missing required field")
    return call_sid, int(turn)


async def callback_offer(request: web.Request) -> web.Response:
    """Hear the waiting caller's key at the offer: 1 asks for their number, 2 goes to voicemail, else the music."""
    form = _parse(MenuChoice, request)
    config = request.config_dict[CONFIG]
    line_key = request.query.get(LINE_PARAM)
    line = config.line(line_key)
    if form.digits == "2":
        event = CallEvent(kind=EventKind.VOICEMAIL_CHOSEN, call_sid=form.call_sid, at=_now(request), pressed="2")
        await _accept(request, Route.CALLBACK_OFFER, event)
        # Out of the queue; its action asks where to, and routing said voicemail (Twilio docs: TwiML <Leave>).
        return _twiml(_leave())
    if form.digits == "1":
        known = accepted(form.from_, line.number or form.to, config.callback_prefixes)
        return _twiml(callback_twiml.ask_number(config, known, line_key))
    return _twiml(VoiceResponse())


def _leave() -> VoiceResponse:
    """Return <Leave/>."""
    response = VoiceResponse()
    response.leave()
    return response


async def callback_number(request: web.Request) -> web.Response:
    """File the callback at the number the caller confirmed or keyed (checked), or ask again."""
    form = _parse(MenuChoice, request)
    config = request.config_dict[CONFIG]
    line_key = request.query.get(LINE_PARAM)
    line = config.line(line_key)
    home = line.number or form.to
    own = accepted(form.from_, home, config.callback_prefixes)
    digits = (form.digits or "").strip()
    number = own if digits == "1" and own is not None else accepted(digits, home, config.callback_prefixes)
    if number is None:
        log.info("call %s: callback number refused (%s)", form.call_sid, mask(digits))
        return _twiml(callback_twiml.ask_number(config, own, line_key, again=True))
    place, _, _ = await request.config_dict[INGEST].announce(form.call_sid, 0)
    event = CallEvent(kind=EventKind.CALLBACK_REQUESTED, call_sid=form.call_sid, at=_now(request),
                      callback_number=number, position=place)  # fmt: skip
    call = await _accept(request, Route.CALLBACK_NUMBER, event)
    if call is None or call.asked is None:
        return _twiml(VoiceResponse())  # no longer waiting: the music, or whatever comes next
    return _twiml(callback_twiml.filed(call.asked.number))


def _screened(request: web.Request, agent: str) -> bool:
    """Tell whether a callback's agent must press 1 first: a phone agent, with SCREEN_PHONE_AGENTS on."""
    return request.config_dict[CONFIG].screen_phone_agents and not is_device(agent)


async def callback_agent(request: web.Request) -> web.Response:
    """The agent answered a callback's call: say whose it is, then dial the customer from the line's number.

    A phone agent presses 1 first (their voicemail never does, and never gets the customer): until then
    nothing is stored, and the screen's answer comes back here with `accepted`.
    """
    form = _parse(MenuChoice, request)
    call_sid, turn = _original(request)
    if _screened(request, form.to) and request.query.get(callback_twiml.ACCEPTED_PARAM) != "1":
        current = await request.config_dict[INGEST].current(call_sid)
        number = current.asked.number if current is not None and current.asked is not None else ""
        return _twiml(callback_twiml.agent_screen(request.config_dict[CONFIG], call_sid, turn, number))
    if _screened(request, form.to) and form.digits != "1":
        return _twiml(VoiceResponse().hangup())
    event = CallEvent(kind=EventKind.CALLBACK_LEG, call_sid=call_sid, at=_now(request), sequence=turn,
                      leg_sid=form.call_sid, leg_to=form.to, status="answered")  # fmt: skip
    call = await _accept(request, Route.CALLBACK_AGENT, event)
    if call is None or call.asked is None or call.asked.closed is not None:
        return _twiml(callback_twiml.not_needed())
    config = request.config_dict[CONFIG]
    line = config.line(call.route_line)
    shown = line.number or call.to_number or form.from_
    whisper = callback_twiml.agent_whisper(config, call_sid, turn, call.asked.number, call.first_seen, shown)
    return _twiml(whisper)


async def callback_status(request: web.Request) -> web.Response:
    """Record the progress of a callback's call to its agent."""
    form = _parse(StatusCallback, request)
    call_sid, turn = _original(request)
    status = _STATUS.get(form.call_status, form.call_status)
    if _screened(request, form.to):
        # A phone agent has answered only once they pressed 1 (callback-agent says so); a call that ends without
        # it was their voicemail, or nobody: a miss.
        status = {"in-progress": "ringing", "completed": "no-answer"}.get(form.call_status, status)
    event = CallEvent(kind=EventKind.CALLBACK_LEG, call_sid=call_sid, at=_now(request), sequence=turn,
                      leg_sid=form.call_sid, leg_to=form.to, status=status)  # fmt: skip
    await _accept(request, Route.CALLBACK_STATUS, event)
    return web.Response(status=204)


async def callback_dial(request: web.Request) -> web.Response:
    """Record how the customer's dial ended, and hang up the agent's call."""
    form = _parse(DialAction, request)
    call_sid, turn = _original(request)
    event = CallEvent(
        kind=EventKind.CALLBACK_ENDED,
        call_sid=call_sid,
        at=_now(request),
        sequence=turn,
        dial_status=form.dial_call_status,
        dial_bridged=None if form.dial_bridged is None else form.dial_bridged.lower() == "true",
        duration=form.dial_call_duration,
        recording_sid=form.recording_sid,
        recording_url=form.recording_url,
        recording_duration=form.recording_duration,
    )
    await _accept(request, Route.CALLBACK_DIAL, event)
    response = VoiceResponse()
    response.hangup()
    return _twiml(response)


async def callback_screen(request: web.Request) -> web.Response:
    """Ask the customer who picked up to press 1 (nothing is stored: the dial's end says whether they did)."""
    _parse(IncomingCall, request)
    call_sid, turn = _original(request)
    return _twiml(callback_twiml.customer_whisper(request.config_dict[CONFIG], call_sid, turn))


async def callback_screen_result(request: web.Request) -> web.Response:
    """Connect the customer who pressed 1 (an empty document bridges the call), else hang up their leg."""
    form = _parse(MenuChoice, request)
    response = VoiceResponse()
    if form.digits != "1":
        response.hangup()
    return _twiml(response)


CALLBACK_HANDLERS: dict[Route, Handler] = {
    Route.CALLBACK_OFFER: callback_offer,
    Route.CALLBACK_NUMBER: callback_number,
    Route.CALLBACK_AGENT: callback_agent,
    Route.CALLBACK_STATUS: callback_status,
    Route.CALLBACK_DIAL: callback_dial,
    Route.CALLBACK_SCREEN: callback_screen,
    Route.CALLBACK_SCREEN_RESULT: callback_screen_result,
}
