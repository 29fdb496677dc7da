"""Pydantic models of Twilio's Voice webhook payloads (PascalCase aliases; unknown fields kept)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _blank_is_none(value: object) -> object:
    """Treat Twilio's empty strings as absent (it sends `DialCallDuration=` on some calls)."""
    return None if value == "" else value


OptionalInt = Annotated[int | None, BeforeValidator(_blank_is_none)]


class TwilioForm(BaseModel):
    """Fields every Voice webhook carries. Twilio adds parameters over time, so extras are allowed."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    call_sid: str = Field(alias="CallSid", min_length=1)
    account_sid: str | None = Field(None, alias="AccountSid")


class CallForm(TwilioForm):
    """The standard call parameters (Twilio docs: TwiML Voice webhooks, "Parameters in Twilio's request")."""

    from_: str = Field("", alias="From")
    to: str = Field("", alias="To")
    call_status: str | None = Field(None, alias="CallStatus")
    direction: str | None = Field(None, alias="Direction")
    parent_call_sid: str | None = Field(None, alias="ParentCallSid")
    from_city: str | None = Field(None, alias="FromCity")
    from_state: str | None = Field(None, alias="FromState")
    from_country: str | None = Field(None, alias="FromCountry")
    to_city: str | None = Field(None, alias="ToCity")
    to_state: str | None = Field(None, alias="ToState")
    to_country: str | None = Field(None, alias="ToCountry")


class IncomingCall(CallForm):
    """The number's "A call comes in" request, or the TwiML App's Voice URL request."""

    # The softphone's `device.connect({params: {To, TicketId, CallFrom}})`: Twilio forwards custom parameters to the
    # TwiML App's Voice URL as form fields (Twilio docs: Voice JavaScript SDK, Device.connect params).
    ticket_id: str | None = Field(None, alias="TicketId")
    # The softphone's `Call from` choice: the number of the line an agent serving several calls out from.
    call_from: str | None = Field(None, alias="CallFrom")
    # The softphone's Resume on a call in its room: the customer's call whose room the agent goes back into.
    room: str | None = Field(None, alias="Room")


class StatusCallback(CallForm):
    """A call-progress event of the parent or a dialed leg (Twilio docs: <Number>/<Client> statusCallbackEvent)."""

    call_status: str = Field(alias="CallStatus")
    sequence_number: OptionalInt = Field(None, alias="SequenceNumber")
    timestamp: str | None = Field(None, alias="Timestamp")
    call_duration: OptionalInt = Field(None, alias="CallDuration")
    callback_source: str | None = Field(None, alias="CallbackSource")


class DialAction(CallForm):
    """The <Dial action> request: the parent's parameters and how the dial ended (Twilio docs: TwiML <Dial>)."""

    dial_call_status: str | None = Field(None, alias="DialCallStatus")
    dial_call_sid: str | None = Field(None, alias="DialCallSid")
    dial_call_duration: OptionalInt = Field(None, alias="DialCallDuration")
    dial_bridged: str | None = Field(None, alias="DialBridged")
    recording_url: str | None = Field(None, alias="RecordingUrl")
    recording_sid: str | None = Field(None, alias="RecordingSid")
    recording_duration: OptionalInt = Field(None, alias="RecordingDuration")


class RecordAction(CallForm):
    """The <Record action> request after the caller left a message (Twilio docs: TwiML <Record>, action)."""

    recording_url: str | None = Field(None, alias="RecordingUrl")
    recording_sid: str | None = Field(None, alias="RecordingSid")
    recording_duration: OptionalInt = Field(None, alias="RecordingDuration")
    digits: str | None = Field(None, alias="Digits")


class RecordingStatus(TwilioForm):
    """The recordingStatusCallback request: no From/To, CallSid is the parent (Twilio docs: recordingStatusCallback)."""

    recording_sid: str = Field(alias="RecordingSid", min_length=1)
    recording_url: str | None = Field(None, alias="RecordingUrl")
    recording_status: str = Field(alias="RecordingStatus", min_length=1)
    recording_duration: OptionalInt = Field(None, alias="RecordingDuration")
    recording_source: str | None = Field(None, alias="RecordingSource")
    recording_start_time: str | None = Field(None, alias="RecordingStartTime")
    error_code: str | None = Field(None, alias="ErrorCode")


class Transcription(CallForm):
    """The transcribeCallback request (Twilio docs: TwiML <Record>, transcribeCallback)."""

    transcription_sid: str | None = Field(None, alias="TranscriptionSid")
    transcription_status: str = Field(alias="TranscriptionStatus", min_length=1)
    transcription_text: str | None = Field(None, alias="TranscriptionText")
    recording_sid: str | None = Field(None, alias="RecordingSid")


class ScreenResult(CallForm):
    """The whisper's <Gather action> on a phone agent's leg: CallSid is the leg (Twilio docs: TwiML <Gather>)."""

    digits: str | None = Field(None, alias="Digits")


class MenuChoice(CallForm):
    """The menu's <Gather action>: the caller's parameters and the key pressed, empty when none came in time.

    Twilio docs: TwiML <Gather>, action (`Digits`) and actionOnEmptyResult (the request is made without input too).
    """

    digits: str | None = Field(None, alias="Digits")


class QueueAction(CallForm):
    """The <Enqueue action> request: how the caller left the queue (Twilio docs: TwiML <Enqueue>, action).

    QueueSid and QueueTime are sent only when the call was actually enqueued (not on `queue-full`).
    """

    queue_result: str = Field(alias="QueueResult", min_length=1)
    queue_sid: str | None = Field(None, alias="QueueSid")
    queue_time: OptionalInt = Field(None, alias="QueueTime")


class QueueWait(CallForm):
    """The <Enqueue waitUrl> request, made each time the wait music runs out (Twilio docs: TwiML <Enqueue>)."""

    queue_position: OptionalInt = Field(None, alias="QueuePosition")
    queue_sid: str | None = Field(None, alias="QueueSid")
    queue_time: OptionalInt = Field(None, alias="QueueTime")
    current_queue_size: OptionalInt = Field(None, alias="CurrentQueueSize")


class RoomStatus(BaseModel):
    """A <Conference statusCallback> request (Twilio docs: TwiML <Conference>, statusCallbackEvent parameters).

    The conference's own events (start, end) name no call; the bridge names its rooms after the customer's call,
    so FriendlyName says whose room it is.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    conference_sid: str = Field(alias="ConferenceSid", min_length=1)
    friendly_name: str = Field(alias="FriendlyName", min_length=1)
    event: str = Field(alias="StatusCallbackEvent", min_length=1)
    sequence_number: OptionalInt = Field(None, alias="SequenceNumber")
    timestamp: str | None = Field(None, alias="Timestamp")
    call_sid: str | None = Field(None, alias="CallSid")
    participant_label: str | None = Field(None, alias="ParticipantLabel")
    hold: str | None = Field(None, alias="Hold")
    reason_participant_left: str | None = Field(None, alias="ReasonParticipantLeft")
    end_conference_on_exit: str | None = Field(None, alias="EndConferenceOnExit")
    account_sid: str | None = Field(None, alias="AccountSid")
