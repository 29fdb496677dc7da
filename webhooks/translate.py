"""Translate Twilio's parsed webhook forms into CallEvents, purely: the caller passes the time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from bridge.core import call_room
from bridge.core.events import CallEvent, Direction, EventKind, LegStatus, QueueResult
from bridge.core.phones import is_device, is_sip, sip_user
from bridge.twilio.words import media_url, recording_of
from schemas.twilio import (
    CallForm,
    DialAction,
    IncomingCall,
    MenuChoice,
    QueueAction,
    RecordAction,
    RecordingStatus,
    RoomStatus,
    ScreenResult,
    StatusCallback,
    Transcription,
)
from webhooks.names import Route

# The form fields that tell one callback from another. Never the CallSid alone: one call sends many
# distinct callbacks. Stored keys are built from exactly these, in this order, so never change them.
KEY_FIELDS = (
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
_LEG_STATUS = {
    "queued": LegStatus.INITIATED,
    "initiated": LegStatus.INITIATED,
    "ringing": LegStatus.RINGING,
    # Twilio reports the `answered` event as CallStatus=in-progress (Twilio docs: Voice API, statusCallbackEvent).
    "in-progress": LegStatus.ANSWERED,
    "answered": LegStatus.ANSWERED,
    "completed": LegStatus.COMPLETED,
    "busy": LegStatus.BUSY,
    "no-answer": LegStatus.NO_ANSWER,
    "failed": LegStatus.FAILED,
    "canceled": LegStatus.CANCELED,
}


# Twilio's QueueResult values (Twilio docs: TwiML <Enqueue>, action: QueueResult) in the core's words. The
# bridge moves callers out of the queue with the REST API (`redirected`); it never dequeues with <Dial><Queue>,
# so `bridged` and its kin say only that the caller is out of the queue and on their way elsewhere.
_QUEUE_RESULTS: dict[str, QueueResult] = {
    "hangup": "hung_up",
    "redirected": "moved",
    "redirected-from-bridged": "moved",
    "bridged": "moved",
    "bridging-in-process": "moved",
    "leave": "left",
    "queue-full": "full",
    "error": "failed",
    "system-error": "failed",
}


class InvalidField(ValueError):
    """A field that parsed but cannot be translated; the route answers 400 naming it."""

    def __init__(self, field: str, problem: str = "invalid value") -> None:
        """Name the field at fault."""
        super().__init__(f"{problem}: {field}")
        self.field = field
        self.problem = problem


def incoming(form: IncomingCall, now: datetime) -> CallEvent:
    """Translate a call to our number."""
    event = CallEvent(kind=EventKind.CALL_STARTED, call_sid=form.call_sid, at=now, **_parent(form))
    return event.model_copy(update={"direction": "inbound"})


def outgoing(form: IncomingCall, now: datetime) -> CallEvent:
    """Translate an agent's call out (from the browser, or from a desk phone through a SIP domain)."""
    event = CallEvent(kind=EventKind.CALL_STARTED, call_sid=form.call_sid, at=now, **_parent(form))
    return event.model_copy(update={"direction": "outbound", "ticket_id": ticket_id(form.ticket_id)})


def ticket_id(raw: str | None) -> int | None:
    """Return the Zendesk ticket id the softphone passed, or None for anything that is not one.

    Never a 400: the call matters more than where its comment goes, and a new ticket is the fallback.
    """
    value = (raw or "").strip()
    return int(value) if value.isdigit() and 0 < int(value) < 2**63 else None


def dialed_number(to: str) -> str:
    """Return the number an agent dialed: a SIP domain call says To=sip:NUMBER@DOMAIN (Twilio docs: SIP Domains)."""
    return sip_user(to) if is_sip(to) else to


def status(form: StatusCallback, now: datetime) -> CallEvent:
    """Translate a call-progress event: of a dialed leg when it names its parent, else of the parent call."""
    at = _when(form.timestamp, "Timestamp", now)
    if form.parent_call_sid:
        # A CallStatus Twilio adds tomorrow is kept as it came: the state machine logs it and moves on.
        # A 400 here would be lost for good, since Twilio does not retry a refused status callback.
        leg_status = _LEG_STATUS.get(form.call_status)
        return CallEvent(
            kind=EventKind.LEG_STATUS,
            call_sid=form.parent_call_sid,
            at=at,
            leg_sid=form.call_sid,
            leg_to=form.to,
            to_location=_place(form.to_city, form.to_state, form.to_country),
            status=leg_status.value if leg_status else form.call_status,
            sequence=form.sequence_number,
            duration=form.call_duration,
        )
    return CallEvent(
        kind=EventKind.CALL_STATUS,
        call_sid=form.call_sid,
        at=at,
        status=form.call_status,
        sequence=form.sequence_number,
        duration=form.call_duration,
        **_parent(form),
    )


def dial_action(form: DialAction, now: datetime) -> CallEvent:
    """Translate how the <Dial> ended (Twilio docs: TwiML <Dial>, action URL parameters)."""
    bridged = None if form.dial_bridged is None else form.dial_bridged.lower() == "true"
    return CallEvent(
        kind=EventKind.DIAL_ENDED,
        call_sid=form.call_sid,
        at=now,
        status=form.call_status,
        dial_status=form.dial_call_status,
        dial_bridged=bridged,
        leg_sid=form.dial_call_sid,
        duration=form.dial_call_duration,
        recording_sid=form.recording_sid,
        recording_url=media_url(form.recording_url),
        recording_duration=form.recording_duration,
        **_parent(form),
    )


def record_action(form: RecordAction, now: datetime) -> CallEvent:
    """Translate the caller having left a message."""
    return CallEvent(
        kind=EventKind.VOICEMAIL_LEFT,
        call_sid=form.call_sid,
        at=now,
        status=form.call_status,
        recording_sid=form.recording_sid,
        recording_url=media_url(form.recording_url),
        recording_duration=form.recording_duration,
        **_parent(form),
    )


def recording_status(form: RecordingStatus, now: datetime) -> CallEvent:
    """Translate a recording being ready (or absent)."""
    return CallEvent(
        kind=EventKind.RECORDING,
        call_sid=form.call_sid,
        at=now,
        recording_sid=form.recording_sid,
        recording_url=media_url(form.recording_url),
        recording_duration=form.recording_duration,
        recording_status=form.recording_status,
        recording_of=recording_of(form.recording_source),
        recording_started_at=_when(form.recording_start_time, "RecordingStartTime", now)
        if form.recording_start_time
        else None,
    )


def transcription(form: Transcription, now: datetime) -> CallEvent:
    """Translate a voicemail transcription (or its failure)."""
    return CallEvent(
        kind=EventKind.TRANSCRIPTION,
        call_sid=form.call_sid,
        at=now,
        status=form.call_status,
        transcription_status=form.transcription_status,
        transcription_text=form.transcription_text,
        recording_sid=form.recording_sid,
        **_parent(form),
    )


def queue_left(form: QueueAction, now: datetime) -> CallEvent:
    """Translate how the caller left the queue; a result Twilio adds tomorrow counts as the queue failing them."""
    result = _QUEUE_RESULTS.get(form.queue_result, "failed")
    return CallEvent(kind=EventKind.QUEUE_LEFT, call_sid=form.call_sid, at=now, status=form.call_status,
                     queue_result=result, **_parent(form))  # fmt: skip


def resumed(form: IncomingCall, now: datetime) -> CallEvent:
    """Translate a call the bridge moved coming back to ask what next (Twilio fetches the move's Url)."""
    return CallEvent(kind=EventKind.RESUMED, call_sid=form.call_sid, at=now, status=form.call_status, **_parent(form))


def menu_chosen(form: MenuChoice, turn: int, now: datetime) -> CallEvent:
    """Translate the caller's answer to their line's menu (the `turn`th time they heard it): a key, or none in time.

    The menu asks for one key (numDigits=1), so anything longer is no key it names: the first one is kept.
    """
    pressed = (form.digits or "").strip()[:1] or None
    return CallEvent(kind=EventKind.MENU_CHOSEN, call_sid=form.call_sid, at=now, status=form.call_status,
                     sequence=turn, pressed=pressed, **_parent(form))  # fmt: skip


def screened(form: ScreenResult, parent_sid: str, now: datetime) -> CallEvent:
    """Translate a phone agent's answer to the whisper: 1 accepts the call, anything else declines it."""
    return CallEvent(
        kind=EventKind.SCREENED,
        call_sid=parent_sid,
        at=now,
        leg_sid=form.call_sid,
        leg_to=form.to or None,
        status="accepted" if form.digits == "1" else "declined",
    )


# Twilio's conference events (Twilio docs: TwiML <Conference>, statusCallbackEvent) in the room's words; the ones the
# bridge does not subscribe to (mute, modify, speaker, announcement) have none and are kept as they came.
_ROOM_HAPPENINGS = {
    "conference-start": "start",
    "conference-end": "end",
    "participant-join": "join",
    "participant-leave": "leave",
    "participant-hold": "hold",
    "participant-unhold": "unhold",
    "participant-modify": "modify",
}


def room_status(form: RoomStatus, now: datetime) -> CallEvent:
    """Translate something that happened in a call's room (its conference is named after the customer's call)."""
    return CallEvent(
        kind=EventKind.ROOM,
        call_sid=form.friendly_name,
        at=_when(form.timestamp, "Timestamp", now),
        status=_ROOM_HAPPENINGS.get(form.event, form.event),
        sequence=form.sequence_number,
        leg_sid=form.call_sid or None,
        leg_to=form.participant_label or None,
        reason=form.reason_participant_left or _owner(form),
        room=form.conference_sid,
    )


def _owner(form: RoomStatus) -> str | None:
    """Say a modified participant's leaving now ends the room (EndConferenceOnExit=true on participant-modify)."""
    ends = form.event == "participant-modify" and (form.end_conference_on_exit or "").lower() == "true"
    return call_room.OWNER if ends else None


def room_entered(form: IncomingCall, now: datetime) -> CallEvent:
    """Translate the customer's call fetching the room's TwiML: the bridge's move reached it."""
    return CallEvent(kind=EventKind.ROOM, call_sid=form.call_sid, at=now, status="entered", leg_sid=form.call_sid)


def room_left(form: DialAction, now: datetime) -> CallEvent:
    """Translate the end of the customer's stay in the room (the <Dial action> around its <Conference>)."""
    return CallEvent(kind=EventKind.ROOM, call_sid=form.call_sid, at=now, status="left", leg_sid=form.call_sid)


def dedupe_keys(
    route: Route, fields: Mapping[str, str], token: str | None, digest: str | None = None, turn: str | None = None
) -> list[str]:
    """Return the dedupe keys: the request's digest, a composite key, and Twilio's idempotency token when sent.

    `digest` is of the signed URL and body: a captured request replayed with a fresh
    I-Twilio-Idempotency-Token (Twilio docs: Webhooks, I-Twilio-Idempotency-Token; the same on every retry
    of one callback) is still the same request. It comes first, so that such a replay is found before any
    key is stored and adds no row. `fields.get` must give a repeated name's first value, as the request's
    MultiDict does: that is how the stored keys were built. `turn` tells apart requests a call makes more
    than once with the same fields (the end of its second ring, its second move), from the bridge's own
    URL; the keys of requests without one are as they always were.
    """
    composite = [route.value, *(fields.get(name, "") for name in KEY_FIELDS)]
    keys = ["|".join([*composite, turn] if turn else composite)]
    if digest:
        keys.insert(0, f"digest|{digest}")
    if token:
        keys.append(f"token|{token}")
    return keys


def _when(raw: str | None, field: str, now: datetime) -> datetime:
    """Parse an RFC 2822 Twilio timestamp, or use the receipt time when none was sent."""
    if not raw:
        return now
    fast = _twilio_utc(raw)
    if fast is not None:
        return fast
    try:
        return parsedate_to_datetime(raw).astimezone(UTC)
    except (TypeError, ValueError) as exc:
        raise InvalidField(field) from exc


_MONTHS = {name: number for number, name in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
                                                        "Oct", "Nov", "Dec"), start=1)}  # fmt: skip


def _twilio_utc(raw: str) -> datetime | None:
    """Read the one shape Twilio sends, `Tue, 15 Sep 2026 14:02:08 +0000`, in a fifth of the email parser's time.

    None for anything else, which the full RFC 2822 parser then reads (or refuses).
    """
    parts = raw.split(" ")
    if len(parts) != 6 or parts[5] != "+0000" or parts[2] not in _MONTHS or not parts[0].endswith(","):
        return None
    clock = parts[4].split(":")
    numbers = (parts[1], parts[3], *clock)
    if len(clock) != 3 or len(parts[3]) != 4 or not all(n.isascii() and n.isdigit() for n in numbers):
        return None
    try:
        return datetime(int(parts[3]), _MONTHS[parts[2]], int(parts[1]), int(clock[0]), int(clock[1]), int(clock[2]),
                        tzinfo=UTC)  # fmt: skip
    except ValueError:
        return None


def _identity(raw: str) -> str:
    """Normalise a SIP caller to `sip:user@domain` (no parameters), as AGENTS names it; others pass as sent."""
    return "sip:" + raw.split(":", 1)[1].split(";", 1)[0] if is_sip(raw) else raw


def _place(city: str | None, state: str | None, country: str | None) -> str | None:
    """Join Twilio's best-effort geodata into a Zendesk `location`."""
    return ", ".join(part for part in (city, state, country) if part) or None


def _parent(form: CallForm) -> dict[str, Any]:
    """Return what a parent-level request says about the call."""
    # Calls placed from the browser reach us as From=client:NAME (Twilio docs: Voice JavaScript SDK, TwiML
    # App), from a desk phone as From=sip:NAME@DOMAIN (Twilio docs: SIP Domains); a call our account placed
    # through the REST API says Direction=outbound-api (Twilio docs: Call resource, direction).
    outbound = is_device(form.from_) or form.direction == "outbound-api"
    direction: Direction = "outbound" if outbound else "inbound"
    return {
        "direction": direction,
        "from_number": _identity(form.from_),
        "to_number": dialed_number(form.to),
        "from_location": _place(form.from_city, form.from_state, form.from_country),
    }
