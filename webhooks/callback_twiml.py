"""The TwiML of callbacks: the offer in the wait music, the number's confirmation, the agent's whisper and dial.

Twilio docs: TwiML <Enqueue> (a waitUrl may run Play, Say, Pause, Gather, Redirect, Leave and Hangup; a
<Gather> there hears the caller's keys while the music plays), <Gather>, <Dial>, <Number url>.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from bridge.core.callback_numbers import spoken
from webhooks.names import Route
from webhooks.twiml import LINE_PARAM, SCREEN_SECONDS, TURN_PARAM, TwilioConfig

CALL_PARAM = "call"  # the call that asked to be called back (bridge.twilio.dialer.CALL_PARAM)
KEY_SECONDS = 8  # how long the caller has to start keying a number (Twilio docs: <Gather> timeout)
DIAL_SECONDS = 30  # how long the customer's phone rings
ACCEPTED_PARAM = "accepted"  # a phone agent's answer to the screen: the Gather's action names it


def _url(config: TwilioConfig, route: Route, **params: str | int) -> str:
    """Return a route's URL with our own parameters."""
    return config.url(route) + (f"?{urlencode(params)}" if params else "")


def offer(config: TwilioConfig, position: int | None, music: str, line: str | None) -> VoiceResponse:
    """Play the wait music with the callback offer before it: 1 to be called back, 2 to leave a message."""
    response = VoiceResponse()
    action = _url(config, Route.CALLBACK_OFFER, **({LINE_PARAM: line} if line is not None else {}))
    gather = Gather(num_digits=1, timeout=1, action=action, method="POST")
    place = f"You are number {position} in line. " if position is not None else ""
    gather.say(
        f"{place}Press 1 to be called back when it is your turn, keeping your place in line, "
        "or press 2 to leave a message."
    )
    gather.play(music)
    response.append(gather)
    return response


def ask_number(config: TwilioConfig, known: str | None, line: str | None, *, again: bool = False) -> VoiceResponse:
    """Ask the caller to confirm the number they call from (1), or to key another followed by the pound key."""
    response = VoiceResponse()
    action = _url(config, Route.CALLBACK_NUMBER, **({LINE_PARAM: line} if line is not None else {}))
    gather = Gather(finish_on_key="#", timeout=KEY_SECONDS, action=action, method="POST")
    sorry = "Sorry, we cannot call that number back. " if again else ""
    if known is not None:
        gather.say(
            f"{sorry}We will call you back at the number ending in {spoken(known)}. Press 1 then the pound key to "
            "confirm, or key another number followed by the pound key."
        )
    else:
        gather.say(f"{sorry}Please key the number we should call you back at, followed by the pound key.")
    response.append(gather)
    return response  # no keys: the document ends and the wait music comes back


def filed(number: str) -> VoiceResponse:
    """Thank the caller and end the call: their place is kept and they will be called back."""
    response = VoiceResponse()
    response.say(
        f"Thank you. We will call you back at the number ending in {spoken(number)} when it is your turn. Goodbye."
    )
    response.hangup()
    return response


def agent_whisper(
    config: TwilioConfig, call_sid: str, turn: int, number: str, since: datetime | None, caller_id: str
) -> VoiceResponse:
    """Tell the agent whose callback this is, then dial the customer from the line's number."""
    response = VoiceResponse()
    waiting = f", waiting since {since:%H:%M} UTC" if since is not None else ""
    response.say(f"Callback for the caller ending in {spoken(number)}{waiting}. Calling them now.")
    params: dict[str, str | int] = {CALL_PARAM: call_sid, TURN_PARAM: turn}
    options: dict[str, object] = {"action": _url(config, Route.CALLBACK_DIAL, **params), "method": "POST",
                                  "timeout": DIAL_SECONDS, "caller_id": caller_id}  # fmt: skip
    if config.record_calls:
        # The recording's parameters come with the dial's action (Twilio docs: TwiML <Dial>, record).
        options["record"] = "record-from-answer-dual"
    dial = Dial(**options)
    dial.number(number, url=_url(config, Route.CALLBACK_SCREEN, **params), method="POST")
    response.append(dial)
    return response


def agent_screen(config: TwilioConfig, call_sid: str, turn: int, number: str) -> VoiceResponse:
    """Ask a phone agent to press 1 before the customer is dialled: a voicemail that picks up never does."""
    response = VoiceResponse()
    params: dict[str, str | int] = {CALL_PARAM: call_sid, TURN_PARAM: turn, ACCEPTED_PARAM: 1}
    gather = Gather(num_digits=1, timeout=SCREEN_SECONDS, action=_url(config, Route.CALLBACK_AGENT, **params),
                    method="POST")  # fmt: skip
    gather.say(f"Callback for the caller ending in {spoken(number)}. Press 1 to call them now.")
    response.append(gather)
    response.hangup()
    return response


def customer_whisper(config: TwilioConfig, call_sid: str, turn: int) -> VoiceResponse:
    """Ask the customer to press 1 to talk: a voicemail that picks up never does, and its leg is hung up."""
    response = VoiceResponse()
    params: dict[str, str | int] = {CALL_PARAM: call_sid, TURN_PARAM: turn}
    action = _url(config, Route.CALLBACK_SCREEN_RESULT, **params)
    gather = Gather(num_digits=1, timeout=SCREEN_SECONDS, action=action, method="POST")
    gather.say("Hello, this is the call back you asked for. Press 1 to speak with us now.")
    response.append(gather)
    response.hangup()
    return response


def not_needed() -> VoiceResponse:
    """Tell an agent the callback is no longer needed, and hang up."""
    response = VoiceResponse()
    response.say("This callback is no longer needed. Goodbye.")
    response.hangup()
    return response
