"""Translate Twilio's parsed webhook forms into CallEvents, purely: the caller passes the time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from bridge.core.events import CallEvent, Direction, EventKind, LegStatus
from bridge.core.phones import is_client
from schemas.twilio import (
    CallForm,
    DialAction,
    IncomingCall,
    RecordAction,
    RecordingStatus,
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
    """Translate a browser agent's call out."""
    event = CallEvent(kind=EventKind.CALL_STARTED, call_sid=form.call_sid, at=now, **_parent(form))
    return event.model_copy(update={"direction": "outbound"})


def status(form: StatusCallback, now: datetime) -> CallEvent:
    """Translate a call-progress event: of a dialed leg when it names its parent, else of the parent call."""
    at = _when(form.timestamp, "Timestamp", now)
    if form.parent_call_sid:
        leg_status = _LEG_STATUS.get(form.call_status)
        if leg_status is None:
            raise InvalidField("CallStatus")
        return CallEvent(
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
        recording_url=form.recording_url,
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
        recording_url=form.recording_url,
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
        recording_url=form.recording_url,
        recording_duration=form.recording_duration,
        recording_status=form.recording_status,
        recording_source=form.recording_source,
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


def dedupe_keys(route: Route, fields: Mapping[str, str], token: str | None) -> list[str]:
    """Return the dedupe keys: Twilio's idempotency token when sent, and always a composite key.

    `token` is the I-Twilio-Idempotency-Token header, the same on every retry of one callback
    (Twilio docs: Webhooks, I-Twilio-Idempotency-Token). `fields.get` must give a repeated name's
    first value, as the request's MultiDict does: that is how the stored keys were built.
    """
    keys = ["|".join([route.value, *(fields.get(name, "") for name in KEY_FIELDS)])]
    if token:
        keys.insert(0, f"token|{token}")
    return keys


def _when(raw: str | None, field: str, now: datetime) -> datetime:
    """Parse an RFC 2822 Twilio timestamp, or use the receipt time when none was sent."""
    if not raw:
        return now
    try:
        return parsedate_to_datetime(raw).astimezone(UTC)
    except (TypeError, ValueError) as exc:
        raise InvalidField(field) from exc


def _place(city: str | None, state: str | None, country: str | None) -> str | None:
    """Join Twilio's best-effort geodata into a Zendesk `location`."""
    return ", ".join(part for part in (city, state, country) if part) or None


def _parent(form: CallForm) -> dict[str, Any]:
    """Return what a parent-level request says about the call."""
    # Calls placed from the browser reach us as From=client:NAME (Twilio docs: Voice JavaScript SDK, TwiML App).
    direction: Direction = "outbound" if is_client(form.from_) else "inbound"
    return {
        "direction": direction,
        "from_number": form.from_,
        "to_number": form.to,
        "from_location": _place(form.from_city, form.from_state, form.from_country),
    }
