"""Build the TwiML that answers Twilio's voice requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twilio.twiml.voice_response import Dial, VoiceResponse

from bridge.core.phones import is_client
from bridge.ops.settings import MAX_RUNG_AGENTS, Settings
from schemas.twilio import DialAction
from webhooks.names import Route, route_url

CALL_EVENTS = "initiated ringing answered completed"
RECORDING_EVENTS = "completed absent"
TRANSCRIBE_MAX_SECONDS = 120  # Twilio transcribes recordings of at most two minutes (Twilio docs: TwiML <Record>)


@dataclass(frozen=True)
class TwilioConfig:
    """What the TwiML builders need from the settings, prepared once per app."""

    public_url: str
    agents: tuple[str, ...]
    dial_timeout: int
    record_calls: bool
    voicemail: bool
    transcribe: bool
    greeting: str
    caller_id: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioConfig:
        """Build the builders' view of the settings."""
        return cls(
            public_url=settings.public_url,
            agents=tuple(settings.agents)[:MAX_RUNG_AGENTS],
            dial_timeout=settings.dial_timeout,
            record_calls=settings.record_calls,
            voicemail=settings.voicemail,
            transcribe=settings.transcribe_voicemail,
            greeting=settings.voicemail_greeting,
            caller_id=settings.caller_id,
        )

    def url(self, route: Route) -> str:
        """Return the absolute callback URL of one of our routes."""
        return route_url(self.public_url, route)


def ring_agents(config: TwilioConfig) -> VoiceResponse:
    """Ring every agent at once; the first to answer wins, the others are canceled."""
    response = VoiceResponse()
    if not config.agents:
        return voicemail(config) if config.voicemail else unavailable()
    dial = start_dial(config, timeout=config.dial_timeout, answer_on_bridge=True)
    for identity in config.agents:
        _add_leg(dial, identity, config)
    response.append(dial)
    return response


def dial_number(config: TwilioConfig, number: str) -> VoiceResponse:
    """Dial a browser agent's call out to `number`, with our caller id when one is set."""
    response = VoiceResponse()
    dial = start_dial(config, caller_id=config.caller_id) if config.caller_id else start_dial(config)
    dial.number(number, status_callback=config.url(Route.STATUS), status_callback_event=CALL_EVENTS)
    response.append(dial)
    return response


def start_dial(config: TwilioConfig, **extra: Any) -> Dial:
    """Start a <Dial> that reports its end to the dial-action route and records when asked to."""
    options: dict[str, Any] = {"action": config.url(Route.DIAL_ACTION), "method": "POST", **extra}
    if config.record_calls:
        options.update(
            record="record-from-answer-dual",
            recording_status_callback=config.url(Route.RECORDING_STATUS),
            recording_status_callback_event=RECORDING_EVENTS,
        )
    return Dial(**options)


def _add_leg(dial: Dial, identity: str, config: TwilioConfig) -> None:
    """Add a <Client> or <Number> whose every progress event reaches the status route."""
    callbacks = {"status_callback": config.url(Route.STATUS), "status_callback_event": CALL_EVENTS}
    if is_client(identity):
        dial.client(identity.removeprefix("client:"), **callbacks)
    else:
        dial.number(identity, **callbacks)


def after_dial(config: TwilioConfig, form: DialAction, bridged: bool | None) -> VoiceResponse:
    """Hang up after a conversation or when the caller is gone; otherwise offer voicemail."""
    answered = form.dial_call_status in ("completed", "answered") and bridged is not False
    # Twilio ignores this TwiML when the caller already hung up (CallStatus=completed); an agent's own
    # outgoing call (From=client:NAME) is not one a caller would leave a message on.
    if answered or is_client(form.from_) or form.call_status != "in-progress":
        return hangup()
    return voicemail(config) if config.voicemail else unavailable()


def voicemail(config: TwilioConfig) -> VoiceResponse:
    """Play the greeting and record a message, transcribed when asked to."""
    response = VoiceResponse()
    response.say(config.greeting)
    options: dict[str, Any] = {
        "action": config.url(Route.RECORD_ACTION),
        "method": "POST",
        "finish_on_key": "#",
        "play_beep": True,
        "recording_status_callback": config.url(Route.RECORDING_STATUS),
        "recording_status_callback_event": RECORDING_EVENTS,
    }
    if config.transcribe:
        options.update(
            max_length=TRANSCRIBE_MAX_SECONDS, transcribe=True, transcribe_callback=config.url(Route.TRANSCRIPTION)
        )
    response.record(**options)
    response.hangup()
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


def hangup() -> VoiceResponse:
    """End the call."""
    response = VoiceResponse()
    response.hangup()
    return response
