"""The provider-neutral CallEvent vocabulary that the webhook adapters produce."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bridge.core.preference import Customer

Direction = Literal["inbound", "outbound"]
# Where the bridge sends a caller: their line's menu, an offer that rings agents, the queue, voicemail, the
# apology, a number the call is forwarded to; `left` says the caller stopped waiting (answered, or gone) and is
# no longer in line.
RouteKind = Literal["menu", "offer", "queue", "voicemail", "unavailable", "forward", "left"]
# How a caller left the queue: hung up, was moved by the bridge (to an offer, or to voicemail), was asked to
# leave (their wait ran out), was refused (the queue was full), or the queue failed them.
QueueResult = Literal["hung_up", "moved", "left", "full", "failed"]
# What a recording holds: the message left at the greeting, the conversation with an agent, or the conversation
# once the call moved into its room (everything said there after a hold, a transfer or a third party joined).
RecordingOf = Literal["voicemail", "conversation", "room"]
# Where a caller goes who calls while their line is closed: voicemail, a message and the end of the call, or a
# forward to another number. Nobody is offered the call and it never waits in the queue.
AfterHours = Literal["voicemail", "message", "forward"]


class EventKind(StrEnum):
    """What happened to a call."""

    CALL_STARTED = "call_started"  # the call reached us (/incoming or /outgoing)
    CALL_STATUS = "call_status"  # the parent leg changed status
    LEG_STATUS = "leg_status"  # a dialed leg rang, was answered or ended
    DIAL_ENDED = "dial_ended"  # the <Dial> finished (answered or not)
    VOICEMAIL_LEFT = "voicemail_left"  # the caller finished a <Record>
    RECORDING = "recording"  # a recording is ready or absent
    TRANSCRIPTION = "transcription"  # a voicemail transcription is ready or failed
    TIMER = "timer"  # a durable wait ran out
    SCREENED = "screened"  # a phone agent's leg accepted (status "accepted") or declined the call
    ROUTED = "routed"  # the bridge decided where the caller goes next (`route`: an offer, the queue, voicemail…)
    QUEUE_LEFT = "queue_left"  # the caller left the queue (`queue_result` says how)
    RESUMED = "resumed"  # the bridge moved the call (out of the queue) and it came back asking what next
    MOVE_FAILED = "move_failed"  # moving the call failed (`status` "gone": it had ended; "refused": it could not)
    WRAP_UP_ENDED = "wrap_up_ended"  # the agent who took the call ended their wrap-up after it (`duration` s)
    MENU_CHOSEN = "menu_chosen"  # the caller answered their line's menu (`pressed`: the key; None: none in time)
    CUSTOMER_FOUND = "customer_found"  # the caller's Zendesk data arrived (`customer`: organization, tags, tickets)
    # Something happened in the call's room, where it moves to be held, transferred or joined by a third party
    # (`status`: entered, start, end, join, leave, hold, unhold, left; `leg_sid` and `leg_to` name who).
    ROOM = "room"
    CONTROL_ASKED = "control_asked"  # the agent on the call clicked a control (`reason`: which); no fact of the call
    RECORDING_PAUSED = "recording_paused"  # the agent paused the conversation's recording (confirmed by the provider)
    RECORDING_RESUMED = "recording_resumed"  # the agent resumed it (confirmed by the provider)
    # Callbacks (docs/callbacks.md): every one is the original call's, whichever call of Twilio's reported it.
    VOICEMAIL_CHOSEN = "voicemail_chosen"  # the waiting caller pressed the key for voicemail
    CALLBACK_REQUESTED = "callback_requested"  # the waiting caller asked to be called back (`callback_number`)
    CALLBACK_LEG = "callback_leg"  # the call to the agent of callback turn `sequence` changed `status` (a LegStatus)
    CALLBACK_ENDED = "callback_ended"  # the dial of the customer of turn `sequence` ended (`dial_status`, …)
    CALLBACK_CANCELLED = "callback_cancelled"  # an admin cancelled the callback request


class LegStatus(StrEnum):
    """A leg's status in the order a leg moves through them."""

    INITIATED = "initiated"
    RINGING = "ringing"
    ANSWERED = "answered"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def rank(self) -> int:
        """Order statuses so that a late, lower one never overwrites a higher one."""
        return {LegStatus.INITIATED: 0, LegStatus.RINGING: 1, LegStatus.ANSWERED: 2}.get(self, 3)

    @property
    def terminal(self) -> bool:
        """Tell whether no further status can follow."""
        return self.rank == 3


TERMINAL_CALL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
# Every CallStatus Twilio documents (Twilio docs: "Call resource", Call Status values).
CALL_STATUSES = frozenset({"queued", "initiated", "ringing", "in-progress", *TERMINAL_CALL_STATUSES})


class CallEvent(BaseModel):
    """One thing that happened to a parent call, whichever provider reported it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: EventKind
    call_sid: str  # always the parent call: one Zendesk ticket per parent call
    at: datetime  # the provider's timestamp when it sent one, else when we received it
    direction: Direction | None = None
    from_number: str | None = None  # the parent call's From, when the event carries it
    to_number: str | None = None  # the parent call's To
    from_location: str | None = None
    to_location: str | None = None
    status: str | None = None  # parent call status, or the leg's LegStatus value
    sequence: int | None = None
    duration: int | None = None
    leg_sid: str | None = None
    leg_to: str | None = None  # who the leg rang: client:NAME or a number
    dial_status: str | None = None
    dial_bridged: bool | None = None
    recording_sid: str | None = None
    recording_url: str | None = None
    recording_duration: int | None = None
    recording_status: str | None = None
    recording_of: RecordingOf | None = None  # what the recording holds, when its source says
    recording_started_at: datetime | None = None
    transcription_status: str | None = None
    transcription_text: str | None = None
    timer: str | None = None
    ticket_id: int | None = None  # an agent's call out placed from this Zendesk ticket (the softphone's TicketId)
    line: str | None = None  # CALL_STARTED outbound: the key of the line the agent calls from (checked theirs)
    route: RouteKind | None = None  # ROUTED: where the caller goes
    agents: tuple[str, ...] | None = None  # ROUTED offer: the agents it rings
    moved: bool | None = None  # ROUTED: the caller waits in the queue and must be moved there
    reason: str | None = None  # ROUTED voicemail/unavailable: why nobody can take the call
    position: int | None = None  # ROUTED: the caller's place in line (at entry, or when they left)
    queue_result: QueueResult | None = None  # QUEUE_LEFT
    # The call's line was closed when it arrived: where the caller went. MENU_CHOSEN: the line the key leads to
    # was closed when it was pressed, and where that line sends its callers after hours.
    after_hours: AfterHours | None = None
    pressed: str | None = None  # MENU_CHOSEN: the key the caller pressed (None: none within the menu's timeout)
    customer: Customer | None = None  # CUSTOMER_FOUND: what Zendesk says of the caller
    open_ticket: int | None = None  # ROUTED offer: it rings the agent of this open ticket of the caller's, first
    room: str | None = None  # ROOM: the room's own id at the provider, once it has one
    joins: str | None = None  # CALL_STARTED: this call is an agent's way into another call's room (that call's id)
    callback_number: str | None = None  # CALLBACK_REQUESTED: the E.164 number to call back
