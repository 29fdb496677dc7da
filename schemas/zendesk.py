"""Pydantic models of the Zendesk Talk Partner Edition bodies the bridge sends."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

OPTIONAL_VOICE_FIELDS = frozenset({"from", "to", "recording_url", "transcription_text", "location"})
# A TPE voice ticket's via id (Zendesk docs: Talk Partner Edition API, "Creating tickets").
VIA_VOICEMAIL, VIA_INBOUND, VIA_OUTBOUND = 44, 45, 46
VIA_NAMES = {VIA_VOICEMAIL: "voicemail", VIA_INBOUND: "inbound call", VIA_OUTBOUND: "outbound call"}
# A call record's completion_status (Zendesk docs: Talk Partner Edition API, Calls: its allowed values).
COMPLETED = "completed"
ABANDONED_IN_QUEUE = "abandoned_in_queue"
ABANDONED_IN_IVR = "abandoned_in_ivr"
ABANDONED_IN_VOICEMAIL = "abandoned_in_voicemail"
ABANDONED_ON_HOLD = "abandoned_on_hold"
COMPLETION_STATUSES = frozenset(
    {COMPLETED, ABANDONED_IN_QUEUE, ABANDONED_IN_IVR, ABANDONED_IN_VOICEMAIL, ABANDONED_ON_HOLD}
)


class VoiceComment(BaseModel):
    """The `voice_comment` of a TPE ticket (Zendesk docs: Talk Partner Edition API, Voice comment)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    from_: str = Field("", alias="from")  # empty (withheld) is omitted on the wire, and stored rows may lack it
    to: str = ""
    recording_url: str | None = None
    started_at: str
    call_duration: int
    answered_by_id: int | None = None
    transcription_text: str | None = None
    location: str | None = None

    def wire(self) -> dict[str, object]:
        """Return the JSON object Zendesk receives (absent and empty fields omitted, `from` as Zendesk spells it)."""
        # An empty string is not "unknown" to Zendesk: it is a value, and a blank one may be refused.
        body = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return {k: v for k, v in body.items() if not (v == "" and k in OPTIONAL_VOICE_FIELDS)}


class Comment(BaseModel):
    """A plain ticket comment."""

    model_config = ConfigDict(frozen=True)

    body: str
    public: bool = False


class VoiceTicket(BaseModel):
    """The `ticket` of `POST /api/v2/channels/voice/tickets`, exactly as the outbox sends it."""

    model_config = ConfigDict(frozen=True)

    via_id: int = Field(ge=44, le=46)
    subject: str
    external_id: str
    requester_id: int | None = None
    assignee_id: int | None = None
    comment: Comment | None = None
    voice_comment: VoiceComment | None = None
    tags: list[str] | None = None

    def wire(self) -> dict[str, object]:
        """Return the JSON object Zendesk receives (absent fields omitted, `from` spelled as Zendesk spells it)."""
        body = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if self.voice_comment is not None:
            body["voice_comment"] = self.voice_comment.wire()
        return body


class CallRecord(BaseModel):
    """The bridge's part of a TPE call record (Zendesk docs: Talk Partner Edition API, Calls, JSON format).

    `app_id`, `end_user_id`, `ticket_id` and `brand_id` are not call state: the outbox fills them in from
    ZENDESK_APP_ID, the caller look-up, the call's ticket and the line's brand (or ZENDESK_BRAND_ID). Every
    field is optional so that one model serves the create (which carries the mandatory ones) and each partial
    update.
    """

    model_config = ConfigDict(frozen=True)

    from_line: str | None = None
    from_line_nickname: str | None = None  # the line's name, on a call out from it
    to_line: str | None = None
    to_line_nickname: str | None = None  # the line's name, on a call in to it
    call_started_at: str | None = None
    direction: str | None = None  # inbound | outbound
    external_id: str | None = None
    agent_id: int | None = None
    call_ended_at: str | None = None
    duration: int | None = None
    time_to_answer: int | None = None
    talk_time: int | None = None
    completion_status: str | None = None
    voicemail: bool | None = None
    recording_url: str | None = None
    recording_time: int | None = None
    transcript: str | None = None
    end_user_location: str | None = None
    wait_time: int | None = None  # seconds from arrival to the answer, or to when the caller stopped waiting
    queue_time: int | None = None  # seconds of that in the queue
    exceeded_queue_time: bool | None = None  # sent to voicemail because the longest wait ran out
    overflowed: bool | None = None  # sent to voicemail because the queue was full
    call_abandoned_position: int | None = None  # the caller's place in line when they hung up waiting
    wrap_up_time: int | None = None  # seconds the agent spent in wrap-up after the call
    recording_control_interactions: int | None = None  # the agent's pauses and resumes of the recording
    not_recording_time: int | None = None  # seconds the recording was paused
    outside_business_hours: bool | None = None  # the call's line was closed when it arrived
    # The caller's way through their line's menu (docs/call-records.md, "Menus").
    ivr_time_spent: int | None = None  # seconds from the call's arrival until the menu sent them on (or they hung up)
    ivr_hops: int | None = None  # the menus they went through: one (a menu never leads into another)
    ivr_action: str | None = None  # the route taken, in Zendesk's IVR words: group, voicemail or phone_number
    ivr_routed_to: str | None = None  # where it led: the line's name, voicemail, or the number forwarded to
    ivr_destination_group_name: str | None = None  # the name of the group of the line it led to
    hold_time: int | None = None  # seconds the customer spent on hold (docs/call-records.md, "Calls in progress")
    consultation_time: int | None = None  # seconds agents talked with a colleague while the customer was held
    customer_requested_voicemail: bool | None = None  # the caller pressed the menu's (or the queue's) voicemail key
    # A waiting caller asked to be called back (Zendesk docs: Talk Partner Edition API, Calls: callback,
    # callback_source "queue" or "web widget", callback_number).
    callback: bool | None = None
    callback_source: str | None = None
    callback_number: str | None = None

    def wire(self) -> dict[str, object]:
        """Return the JSON object Zendesk receives (absent fields omitted: a PATCH changes only what it names)."""
        return self.model_dump(mode="json", exclude_none=True)


class CallComment(BaseModel):
    """The `comment` section that shows a call record on its ticket as a TPE voice comment.

    Zendesk docs, "Creating a voice comment in a ticket": the comment shows the `call_fields` it names,
    read from the call record, so later updates of the record show without a new comment.
    """

    model_config = ConfigDict(frozen=True)

    title: str
    call_fields: list[str]
    author_id: int | None = None

    def wire(self) -> dict[str, object]:
        """Return the JSON object Zendesk receives."""
        return self.model_dump(mode="json", exclude_none=True)
