"""The Twilio adapter: verify a signed form post, turn it into a CallEvent, answer with TwiML or 204.

Nothing here talks to Zendesk. Each handler is: parse -> store event and its actions -> reply; the
`guard` middleware has already checked size, method and signature.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict
from pydantic import BaseModel, ValidationError
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.twiml.voice_response import Dial, VoiceResponse

from bridge.appkeys import CAPTURE, CLOCK, INGEST, METRICS
from bridge.core.events import CallEvent, Direction, EventKind, LegStatus
from bridge.core.phones import is_client, is_e164, mask
from bridge.ops.settings import MAX_RUNG_AGENTS, Settings
from schemas.twilio import (
    CallForm,
    DialAction,
    IncomingCall,
    RecordAction,
    RecordingStatus,
    StatusCallback,
    Transcription,
)

log = logging.getLogger("bridge.webhooks")

PREFIX = "/twilio/voice"
MAX_BODY = 64 * 1024  # Twilio's webhook bodies are a few KiB; anything near this is not Twilio
FORM_TYPE = "application/x-www-form-urlencoded"
KNOWN_ALGORITHMS = frozenset({"HMAC_SHA1", "HMAC_SHA256"})
CALL_EVENTS = "initiated ringing answered completed"
RECORDING_EVENTS = "completed absent"
TRANSCRIBE_MAX_SECONDS = 120  # Twilio transcribes recordings of at most two minutes

FORM = web.RequestKey("twilio_form", MultiDict[str])
ROUTES = ("incoming", "outgoing", "status", "dial-action", "record-action", "recording-status", "transcription")
_LEG_STATUS = {
    "queued": LegStatus.INITIATED,
    "initiated": LegStatus.INITIATED,
    "ringing": LegStatus.RINGING,
    # Twilio reports the `answered` event as CallStatus=in-progress (twilio-voice §2.2).
    "in-progress": LegStatus.ANSWERED,
    "answered": LegStatus.ANSWERED,
    "completed": LegStatus.COMPLETED,
    "busy": LegStatus.BUSY,
    "no-answer": LegStatus.NO_ANSWER,
    "failed": LegStatus.FAILED,
    "canceled": LegStatus.CANCELED,
}
Model = TypeVar("Model", bound=BaseModel)


class BadField(web.HTTPBadRequest):
    """A signed request whose field is missing or malformed (400 naming the field)."""

    def __init__(self, field: str, problem: str) -> None:
        """Name the field at fault."""
        super().__init__(reason=f"{problem}: {field}")
        self.field = field


@dataclass(frozen=True)
class TwilioConfig:
    """What the adapter needs from the settings, prepared once per app."""

    public_url: str
    validator: RequestValidator
    agents: tuple[str, ...]
    dial_timeout: int
    record_calls: bool
    voicemail: bool
    transcribe: bool
    greeting: str
    caller_id: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioConfig:
        """Build the adapter's view of the settings."""
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        return cls(
            public_url=settings.public_url,
            validator=RequestValidator(token),
            agents=tuple(settings.agents)[:MAX_RUNG_AGENTS],
            dial_timeout=settings.dial_timeout,
            record_calls=settings.record_calls,
            voicemail=settings.voicemail,
            transcribe=settings.transcribe_voicemail,
            greeting=settings.voicemail_greeting,
            caller_id=settings.caller_id,
        )

    def url(self, route: str) -> str:
        """Return the absolute callback URL of one of our routes."""
        return f"{self.public_url}{PREFIX}/{route}"


CONFIG = web.AppKey("twilio_config", TwilioConfig)


# --- the guard: size -> method -> signature -> content type (DESIGN: order of checks) ---------------


def _form(body: bytes) -> MultiDict[str]:
    """Parse a form body; Twilio sends UTF-8."""
    return MultiDict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


@web.middleware
async def guard(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    """Reject oversized, wrong-method, unsigned and non-form requests before anything is parsed or stored."""
    if not request.path.startswith(PREFIX + "/"):
        return await handler(request)
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _reject(request, web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length))
    if request.match_info.http_exception is not None:
        raise _reject(request, request.match_info.http_exception)
    body = await request.read()  # the app's client_max_size stops a chunked body past the limit
    config = request.app[CONFIG]
    is_form = request.content_type == FORM_TYPE
    try:
        params: MultiDict[str] | str = _form(body) if is_form else body.decode("utf-8")
    except UnicodeDecodeError:
        params = MultiDict()
    signature = request.headers.get("X-Twilio-Signature", "")
    algorithm = get_signature_algorithm(request.headers.get("X-Twilio-Webhooks-Signature-Settings"))
    # TLS ends at Heroku's and Fly's proxies, so request.url says http:// and an internal port:
    # the signed URL is rebuilt from PUBLIC_URL and the raw, un-normalised path and query.
    url = config.public_url + request.raw_path
    if not signature or not _signed(config.validator, url, params, signature, algorithm):
        raise _reject(request, web.HTTPForbidden(reason="missing or invalid X-Twilio-Signature"))
    if not is_form or not isinstance(params, MultiDict):
        raise _reject(request, web.HTTPUnsupportedMediaType(reason=f"Content-Type must be {FORM_TYPE}"))
    request[FORM] = params
    try:
        return await handler(request)
    except BadField as exc:
        raise _reject(request, exc) from None


def _route(request: web.Request) -> str:
    """Name the route for metrics (bounded: unknown paths are all 'unknown')."""
    name = request.path.rsplit("/", 1)[-1]
    return name if name in ROUTES else "unknown"


def _signed(
    validator: RequestValidator, url: str, params: MultiDict[str] | str, signature: str, algorithm: str
) -> bool:
    """Check the signature against the URL as configured first: one HMAC instead of the library's two.

    The library also tries the URL with and without the default port (Twilio's back end is not
    consistent about it); that fallback runs only when the plain URL does not match.
    """
    if algorithm.upper() not in KNOWN_ALGORITHMS:
        return False  # an algorithm the library cannot compute is a forgery, not a server error
    if isinstance(params, str) and "bodySHA256" not in url:
        params = MultiDict()  # a non-form body without a body hash: only the URL can have been signed
    if isinstance(params, MultiDict):
        expected = validator.compute_signature(url, params, algorithm)
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return True
    return bool(validator.validate(url, params, signature, algorithm))


def _reject(request: web.Request, exc: web.HTTPException) -> web.HTTPException:
    """Log and count a rejected webhook with its reason (no parameters: it is unverified input)."""
    log.warning("webhook %s %s rejected: %s %s", request.method, request.path, exc.status, exc.reason)
    request.app[METRICS].webhooks.labels(_route(request), f"rejected_{exc.status}").inc()
    return exc


# --- parsing helpers ----------------------------------------------------------------------------------


def _last_values(form: MultiDict[str]) -> dict[str, str]:
    """Flatten a form to one value per name (the last, should Twilio ever repeat one)."""
    return {key: form.getall(key)[-1] for key in form}


def _parse(model: type[Model], request: web.Request) -> Model:
    """Validate the form into a model, or answer 400 naming the first bad field."""
    form = request[FORM]
    try:
        return model.model_validate(_last_values(form))
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "body"
        problem = "missing required field" if error["type"] == "missing" else "invalid value"
        raise BadField(field, problem) from exc


def _when(raw: str | None, field: str, now: datetime) -> datetime:
    """Parse an RFC 2822 Twilio timestamp, or use the receipt time when none was sent."""
    if not raw:
        return now
    try:
        return parsedate_to_datetime(raw).astimezone(UTC)
    except (TypeError, ValueError) as exc:
        raise BadField(field, "invalid value") from exc


def _place(city: str | None, state: str | None, country: str | None) -> str | None:
    """Join Twilio's best-effort geodata into a Zendesk `location`."""
    return ", ".join(part for part in (city, state, country) if part) or None


def _parent(form: CallForm) -> dict[str, Any]:
    """Return what a parent-level request says about the call."""
    # Calls placed from the browser (Voice SDK) reach us as From=client:NAME (twilio-voice §7.3).
    direction: Direction = "outbound" if is_client(form.from_) else "inbound"
    return {
        "direction": direction,
        "from_number": form.from_,
        "to_number": form.to,
        "from_location": _place(form.from_city, form.from_state, form.from_country),
    }


def _keys(request: web.Request, form: BaseModel) -> list[str]:
    """Return the dedupe keys: Twilio's idempotency token when sent, and always a composite key.

    Never the CallSid alone: one call sends many distinct callbacks (reference lessons).
    """
    data = request[FORM]
    parts = [
        _route(request),
        *(
            data.get(name, "")
            for name in (
                "CallSid",
                "CallStatus",
                "SequenceNumber",
                "DialCallSid",
                "DialCallStatus",
                "RecordingSid",
                "RecordingStatus",
                "TranscriptionSid",
                "TranscriptionStatus",
            )
        ),
    ]
    keys = ["|".join(parts)]
    token = request.headers.get("I-Twilio-Idempotency-Token")
    if token:
        keys.insert(0, f"token|{token}")
    return keys


async def _accept(request: web.Request, form: BaseModel, event: CallEvent) -> None:
    """Store the event and its actions durably before any reply goes out."""
    ingested = await request.app[INGEST](_keys(request, form), event)
    outcome = "duplicate" if ingested.duplicate else "accepted"
    capture = request.app.get(CAPTURE)
    if capture is not None:
        capture.record(
            event.call_sid, request.raw_path, _last_values(request[FORM]), request.headers, request.app[CLOCK]()
        )
    request.app[METRICS].webhooks.labels(_route(request), outcome).inc()
    log.info("webhook %s %s for call %s (%s)", _route(request), outcome, event.call_sid, event.kind)


def _now(request: web.Request) -> datetime:
    """Return the app clock's time."""
    return datetime.fromtimestamp(request.app[CLOCK](), UTC)


def _twiml(response: VoiceResponse) -> web.Response:
    """Serve TwiML."""
    return web.Response(text=str(response), content_type="text/xml")


def _no_content() -> web.Response:
    """Answer a callback whose body Twilio ignores."""
    return web.Response(status=204)


# --- TwiML ----------------------------------------------------------------------------------------------


def ring_agents(config: TwilioConfig) -> VoiceResponse:
    """Ring every agent at once; the first to answer wins, the others are canceled."""
    response = VoiceResponse()
    if not config.agents:
        return voicemail(config) if config.voicemail else _unavailable()
    dial = _dial(config, timeout=config.dial_timeout, answer_on_bridge=True)
    for identity in config.agents:
        _add_leg(dial, identity, config)
    response.append(dial)
    return response


def _dial(config: TwilioConfig, **extra: Any) -> Dial:
    """Start a <Dial> that reports its end to /dial-action and records when asked to."""
    options: dict[str, Any] = {"action": config.url("dial-action"), "method": "POST", **extra}
    if config.record_calls:
        options.update(
            record="record-from-answer-dual",
            recording_status_callback=config.url("recording-status"),
            recording_status_callback_event=RECORDING_EVENTS,
        )
    return Dial(**options)


def _add_leg(dial: Dial, identity: str, config: TwilioConfig) -> None:
    """Add a <Client> or <Number> whose every progress event reaches /status."""
    callbacks = {"status_callback": config.url("status"), "status_callback_event": CALL_EVENTS}
    if is_client(identity):
        dial.client(identity.removeprefix("client:"), **callbacks)
    else:
        dial.number(identity, **callbacks)


def voicemail(config: TwilioConfig) -> VoiceResponse:
    """Play the greeting and record a message, transcribed when asked to."""
    response = VoiceResponse()
    response.say(config.greeting)
    options: dict[str, Any] = {
        "action": config.url("record-action"),
        "method": "POST",
        "finish_on_key": "#",
        "play_beep": True,
        "recording_status_callback": config.url("recording-status"),
        "recording_status_callback_event": RECORDING_EVENTS,
    }
    if config.transcribe:
        options.update(
            max_length=TRANSCRIBE_MAX_SECONDS, transcribe=True, transcribe_callback=config.url("transcription")
        )
    response.record(**options)
    response.hangup()
    return response


def _unavailable() -> VoiceResponse:
    """Tell the caller nobody is available, and hang up."""
    response = VoiceResponse()
    response.say("Sorry, nobody is available to take your call. Please try again later.")
    response.hangup()
    return response


def _hangup() -> VoiceResponse:
    """End the call."""
    response = VoiceResponse()
    response.hangup()
    return response


# --- handlers -------------------------------------------------------------------------------------------


async def incoming(request: web.Request) -> web.Response:
    """Answer a call to our number: store it, then ring the agents."""
    form = _parse(IncomingCall, request)
    event = CallEvent(kind=EventKind.CALL_STARTED, call_sid=form.call_sid, at=_now(request), **_parent(form))
    event = event.model_copy(update={"direction": "inbound"})
    await _accept(request, form, event)
    return _twiml(ring_agents(request.app[CONFIG]))


async def outgoing(request: web.Request) -> web.Response:
    """Place a browser agent's call to the number in `To`."""
    form = _parse(IncomingCall, request)
    config = request.app[CONFIG]
    if not is_client(form.from_) or not is_e164(form.to):
        log.warning(
            "outgoing call %s from %s to %s refused: needs From=client:NAME and an E.164 To",
            form.call_sid,
            mask(form.from_),
            mask(form.to),
        )
        response = VoiceResponse()
        response.say("Sorry, that number cannot be dialed. Please use the full international format.")
        response.hangup()
        return _twiml(response)
    event = CallEvent(
        kind=EventKind.CALL_STARTED, call_sid=form.call_sid, at=_now(request), **_parent(form)
    ).model_copy(update={"direction": "outbound"})
    await _accept(request, form, event)
    response = VoiceResponse()
    dial = _dial(config, caller_id=config.caller_id) if config.caller_id else _dial(config)
    dial.number(form.to, status_callback=config.url("status"), status_callback_event=CALL_EVENTS)
    response.append(dial)
    return _twiml(response)


async def status(request: web.Request) -> web.Response:
    """Record a call-progress event of the parent leg or of a dialed leg."""
    form = _parse(StatusCallback, request)
    at = _when(form.timestamp, "Timestamp", _now(request))
    if form.parent_call_sid:
        leg_status = _LEG_STATUS.get(form.call_status)
        if leg_status is None:
            raise BadField("CallStatus", "invalid value")
        event = CallEvent(
            kind=EventKind.LEG_STATUS,
            call_sid=form.parent_call_sid,
            at=at,
            leg_sid=form.call_sid,
            leg_to=form.to,
            to_location=_place(form.to_city, form.to_state, form.to_country),
            status=leg_status.value,
            sequence=form.sequence_number,
            duration=form.call_duration,
        )
    else:
        event = CallEvent(
            kind=EventKind.CALL_STATUS,
            call_sid=form.call_sid,
            at=at,
            status=form.call_status,
            sequence=form.sequence_number,
            duration=form.call_duration,
            **_parent(form),
        )
    await _accept(request, form, event)
    return _no_content()


async def dial_action(request: web.Request) -> web.Response:
    """Record how the <Dial> ended; hang up after a conversation, else offer voicemail."""
    form = _parse(DialAction, request)
    bridged = None if form.dial_bridged is None else form.dial_bridged.lower() == "true"
    event = CallEvent(
        kind=EventKind.DIAL_ENDED,
        call_sid=form.call_sid,
        at=_now(request),
        status=form.call_status,
        dial_status=form.dial_call_status,
        dial_bridged=bridged,
        leg_sid=form.dial_call_sid,
        duration=form.dial_call_duration,
        recording_sid=form.recording_sid,
        recording_url=form.recording_url,
        recording_duration=form.recording_duration,
        **_parent(form),
    )
    await _accept(request, form, event)
    config = request.app[CONFIG]
    answered = form.dial_call_status in ("completed", "answered") and bridged is not False
    # Twilio ignores this TwiML when the caller already hung up (CallStatus=completed).
    if answered or is_client(form.from_) or form.call_status != "in-progress":
        return _twiml(_hangup())
    return _twiml(voicemail(config) if config.voicemail else _unavailable())


async def record_action(request: web.Request) -> web.Response:
    """Record that the caller left a message, and hang up."""
    form = _parse(RecordAction, request)
    event = CallEvent(
        kind=EventKind.VOICEMAIL_LEFT,
        call_sid=form.call_sid,
        at=_now(request),
        status=form.call_status,
        recording_sid=form.recording_sid,
        recording_url=form.recording_url,
        recording_duration=form.recording_duration,
        **_parent(form),
    )
    await _accept(request, form, event)
    return _twiml(_hangup())


async def recording_status(request: web.Request) -> web.Response:
    """Record that a recording is ready (or absent)."""
    form = _parse(RecordingStatus, request)
    now = _now(request)
    event = CallEvent(
        kind=EventKind.RECORDING,
        call_sid=form.call_sid,
        at=now,
        recording_sid=form.recording_sid,
        recording_url=form.recording_url,
        recording_duration=form.recording_duration,
        recording_status=form.recording_status,
        recording_source=form.recording_source,
        recording_started_at=_when(form.recording_start_time, "RecordingStartTime", now)
        if form.recording_start_time
        else None,
    )
    await _accept(request, form, event)
    return _no_content()


async def transcription(request: web.Request) -> web.Response:
    """Record a voicemail transcription (or its failure)."""
    form = _parse(Transcription, request)
    event = CallEvent(
        kind=EventKind.TRANSCRIPTION,
        call_sid=form.call_sid,
        at=_now(request),
        status=form.call_status,
        transcription_status=form.transcription_status,
        transcription_text=form.transcription_text,
        recording_sid=form.recording_sid,
        **_parent(form),
    )
    await _accept(request, form, event)
    return _no_content()


def setup(app: web.Application, settings: Settings) -> None:
    """Register the Twilio routes and the guard on an application."""
    app[CONFIG] = TwilioConfig.from_settings(settings)
    handlers = (incoming, outgoing, status, dial_action, record_action, recording_status, transcription)
    for route, handler in zip(ROUTES, handlers, strict=True):
        app.router.add_post(f"{PREFIX}/{route}", handler)
    app.middlewares.append(guard)


__all__ = ["FORM", "MAX_BODY", "PREFIX", "BadField", "TwilioConfig", "ring_agents", "setup", "voicemail"]
