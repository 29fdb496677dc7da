"""The call state machine's state: what a call is, its policy, what a step returns (no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from bridge.core import call_room
from bridge.core.actions import (
    Action,
)
from bridge.core.call_controls import Toggle
from bridge.core.callback_model import Callback
from bridge.core.events import AfterHours, Direction, EventKind, LegStatus, RouteKind
from bridge.core.lines import Lines
from bridge.core.preference import Customer
from schemas.zendesk import ABANDONED_IN_IVR, ABANDONED_IN_QUEUE, COMPLETED

# Twilio ends any call after 4 hours unless the account enabled 24-hour calls (Twilio docs: TwiML
# <Dial>, timeLimit, default 14400 s): silence on an answered call means nothing before that.
MAX_CALL_SECONDS = 4 * 3600
# Twilio transcribes a <Record> only when it is longer than 2 s and shorter than 120 s (Twilio docs:
# TwiML <Record>, transcribe); any other length never gets a transcription, so nothing waits for one.
TRANSCRIBABLE_SECONDS = (2, 120)
RECORDING_WAIT = "recording_wait"
TRANSCRIPTION_WAIT = "transcription_wait"
STALE = "stale"  # reconciliation gave up waiting for callbacks: decide with what is known
WRAP_UP = "wrap_up"  # the agent's wrap-up after the call (WRAP_UP_SECONDS) ran its full length
QUEUE_WAIT = "queue_wait"  # the caller's longest wait (QUEUE_MAX_WAIT_SECONDS from arrival) ran out

WARNINGS = frozenset(
    {"notice:unmapped", "notice:transcription_failed", "notice:unknown", "notice:unknown_status", "notice:unknown_line"}
)
EPOCH = datetime.fromtimestamp(0, UTC)
# ZENDESK_API=calls: what each outcome is as a record's completion_status. abandoned_in_queue: rang the
# agents (or waited in the queue), nobody answered, no voicemail; abandoned_in_voicemail: sent to voicemail,
# message or not.
NOT_ANSWERED = ABANDONED_IN_QUEUE  # a call out the customer never answered
OUTSIDE_COMPLETED = COMPLETED  # a Studio flow or forwarded phone talked with the caller
OUTSIDE_ABANDONED = ABANDONED_IN_IVR  # the flow ended the call before anyone talked
UNKNOWN_LINE = "unknown"  # from_line and to_line are mandatory; Twilio always sends both, but a stale state may not
# The fields the TPE voice comment shows (its `call_fields`); a voicemail ticket plays its message already.
CALL_FIELDS = (
    "from_line",
    "to_line",
    "direction",
    "call_started_at",
    "call_ended_at",
    "agent_id",
    "time_to_answer",
    "talk_time",
    "duration",
    "completion_status",
    "recording_url",
    "transcript",
)
ANSWER_FIELDS = ("agent_id", "time_to_answer", "talk_time")  # what a record made at a pick-up must unsay
DETAIL_FIELDS = tuple(name for name in CALL_FIELDS if name not in ("recording_url", "transcript"))
# Events only a call that reached our TwiML sends: the number's own status callback is not one of them.
_ROUTED_KINDS = frozenset(
    {
        EventKind.CALL_STARTED,
        EventKind.LEG_STATUS,
        EventKind.DIAL_ENDED,
        EventKind.VOICEMAIL_LEFT,
        EventKind.SCREENED,
        EventKind.QUEUE_LEFT,
        EventKind.RESUMED,
        EventKind.MENU_CHOSEN,
    }
)
# Events that show a ring of the call's (a leg, the end of a dial, a phone agent's answer to the whisper).
_RINGS = frozenset({EventKind.LEG_STATUS, EventKind.DIAL_ENDED, EventKind.SCREENED})
# What a call asks of routing after an event: an agent now (it arrived, or an offer rang out), to keep the
# offer it was moved to (it came back after a move), to leave the queue for voicemail (its wait ran out),
# or to be let out of line (answered, or the caller is gone).
# A ring that ended for a call routing never placed (its arrival came later, or before this version ran)
# asks to `settle` where it goes: nobody is left to offer it to, as before routing existed.
# A caller whose move failed is still in the queue and asks no TwiML: it asks to be `requeued` (offered
# again, by a new move).
# A queued caller whose Zendesk data came asks to `refresh` their rank and their agent (bridge.core.preference).
# `line`: an answered call in its room was transferred to a line and waits there; `rang`: an agent invited into its
# room from that line's queue did not answer.
# A waiting caller who pressed for voicemail asks to go there (`voicemail`); one who asked to be called back asks
# for a callback row in their place (`callback`); a callback's turn that ended, or its cancellation, asks for the
# row to be brought up to date (`callback_next`: a later turn, or out of line).
RouteRequest = Literal[
    "offer",
    "resume",
    "expire",
    "done",
    "settle",
    "requeue",
    "refresh",
    "line",
    "rang",
    "voicemail",
    "callback",
    "callback_next",
]
# What an agent is to a call: rung now, talking, talked (their part is over), missed it (their offer rang
# out), or released (their offer stopped ringing for another reason: answered elsewhere, the caller left).
Engagement = Literal["ringing", "talking", "talked", "missed", "released"]
# How a menu led the caller on: a key it names, no key within its timeout, or too many keys it does not name.
MenuWay = Literal["key", "timeout", "invalid"]

Emit = Callable[[Action], None]
Notice = Callable[[str, str], None]


@dataclass(frozen=True)
class Policy:
    """The settings that shape what a call becomes in Zendesk."""

    agents: Mapping[str, int] = field(default_factory=dict)  # Twilio identity -> Zendesk user id
    ticket_on: Literal["answer", "end"] = "answer"
    record_calls: bool = True
    voicemail: bool = True
    transcribe_voicemail: bool = True
    missed_call_tickets: bool = True
    recording_wait: float = 120.0
    transcription_wait: float = 60.0
    caller_id: str | None = None
    default_region: str | None = None
    screen_phone_agents: bool = True
    api: Literal["tickets", "calls"] = "tickets"  # ZENDESK_API: calls adds a TPE call record for every call
    queue_max_wait: float = 300.0  # QUEUE_MAX_WAIT_SECONDS: a waiting caller goes to voicemail after this long
    wrap_up: float = 0.0  # WRAP_UP_SECONDS: the agent's wrap-up after a call, unless they end it sooner
    # The numbers the bridge answers: each call's group, brand, nickname, caller id and longest wait are its line's.
    lines: Lines = field(default_factory=Lines)
    # RECORDINGS: whether one link can play a recording in several parts (the bridge's link, a Zendesk upload); when
    # only the provider's own links can be given, the other parts are named in a note on the ticket.
    joined_recordings: bool = True
    callback_attempts: int = 3  # CALLBACK_ATTEMPTS: turns that miss the customer before a request is closed
    callback_retry: float = 600.0  # CALLBACK_RETRY_MINUTES, in seconds: the wait after a turn that missed them


class Recording(BaseModel):
    """A recording Twilio reported for the call."""

    sid: str | None = None
    url: str | None = None
    duration: int | None = None
    started_at: datetime | None = None
    status: str | None = None  # completed | absent; None when only hinted by an action callback


class Leg(BaseModel):
    """One dialed leg of the call: an agent rung for inbound, the customer for outbound."""

    sid: str
    to: str | None = None
    to_location: str | None = None
    status: LegStatus = LegStatus.INITIATED
    sequence: int = -1
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration: int | None = None
    screen: Literal["accepted", "declined"] | None = None  # what the agent pressed at the whisper
    stale: bool = False  # rang in an offer that ended without connecting anyone: it never takes the call

    @property
    def answered(self) -> bool:
        """Tell whether this leg was picked up (a dialed leg only ends `completed` if it was)."""
        return self.status in (LegStatus.ANSWERED, LegStatus.COMPLETED)


class Offer(BaseModel):
    """An offer of the call to agents: who it rang, from when, for how long."""

    agents: list[str]
    at: datetime
    seconds: int
    moved: bool = False  # the caller was waiting in the queue and had to be moved to it
    ended: bool = False  # it stopped ringing (the ring ended unanswered, or the move failed)


class Placed(BaseModel):
    """Where the bridge last sent the caller."""

    kind: RouteKind
    at: datetime
    reason: str | None = None  # voicemail or unavailable: why nobody could take the call
    to: str | None = None  # forward: the number the call is forwarded to


class Press(BaseModel):
    """One answer to the menu: the key pressed ("" for none within its timeout), and when."""

    key: str
    at: datetime
    # The line this answer leads to was closed when it came: where that line sends its callers after hours.
    closed: AfterHours | None = None


class MenuPath(BaseModel):
    """The caller's way through their line's menu: each answer by turn (the menu's first hearing is turn 1).

    Answers are kept by turn, whatever order they arrive in; where the menu led is decided once the turns
    before it are all known (core/call_menu.py), so a late or repeated request changes nothing.
    """

    line: str  # the key of the line whose menu it is (the number called)
    entered_at: datetime  # when the caller began to hear it: the call's arrival, as the bridge received it
    presses: dict[int, Press] = Field(default_factory=dict)
    target: str | None = None  # where it led, as configured: line:KEY, voicemail, or the number forwarded to
    how: MenuWay | None = None  # a key named it; none was pressed; too many keys it does not name
    key: str | None = None  # the key that named the target (how == "key")
    turn: int | None = None  # the answer that decided
    left_at: datetime | None = None  # when the menu sent the caller on


class Call(BaseModel):
    """Everything known about one parent call."""

    sid: str
    direction: Direction | None = None
    from_number: str | None = None
    to_number: str | None = None
    from_location: str | None = None
    first_seen: datetime | None = None
    legs: dict[str, Leg] = Field(default_factory=dict)
    answered_leg: str | None = None
    answer_known_at: datetime | None = None  # our clock when we learned of the answer (Twilio's can lag)
    routed: bool | None = None  # our TwiML handled it; False for a call only its status callback told of
    dial_status: str | None = None
    dial_bridged: bool | None = None
    dial_duration: int | None = None
    dial_at: datetime | None = None
    voicemail_offered: bool = False
    parent_status: str | None = None
    parent_sequence: int = -1
    parent_duration: int | None = None
    ended_at: datetime | None = None
    recording: Recording | None = None  # the conversation (<Dial record>)
    recording_hint: Recording | None = None  # from <Dial action>, used if the callback never comes
    voicemail: Recording | None = None  # the message (<Record>)
    voicemail_hint: Recording | None = None  # from <Record action>
    transcription_status: str | None = None
    transcription_text: str | None = None
    transcription_in_ticket: bool = False
    fired: list[str] = Field(default_factory=list)
    emitted: list[str] = Field(default_factory=list)
    finished: bool = False  # the call's final Zendesk effect is emitted; its pending timers are moot
    ticket_id: int | None = None  # outbound: the existing ticket the agent called from, which gets the comments
    line: str | None = None  # the key of its line: the number called (inbound), or the agent's choice (outbound)
    placed: Placed | None = None  # where the bridge last sent the caller
    offers: list[Offer] = Field(default_factory=list)
    last_dial_status: str | None = None  # how the last ring ended, while routing decides what comes next
    queued_at: datetime | None = None  # when the caller first entered the queue
    queue_since: datetime | None = None  # in the queue now, since then
    queue_seconds: float = 0.0  # time spent in the queue before `queue_since`
    resumed: int = 0  # the last of the bridge's moves of the call that landed (it came back asking what next)
    no_agent: str | None = None  # why routing gave up: no_agent, exceeded_queue_time or overflowed
    abandoned_position: int | None = None  # the caller's place in line when they hung up waiting
    # Its line was closed when it arrived (or the line its menu led to, when the caller chose it): voicemail, a
    # message or a forward, as that line says; nobody is offered the call.
    after_hours: AfterHours | None = None
    wrap_up_time: int | None = None  # seconds the agent spent in wrap-up after the call, once it ended
    menu: MenuPath | None = None  # the caller's way through their line's menu, when it has one
    chosen_line: str | None = None  # the line the menu led the caller to: its agents, queue, group and brand
    customer: Customer | None = None  # what Zendesk says of the caller (the look-up at the arrival)
    open_ticket: int | None = None  # the caller's open ticket whose agent an offer rang first (shown to them)
    open_ticket_agent: str | None = None  # that agent
    room: call_room.Room | None = None  # where the answered call moved to be held or transferred, once it did
    part_of: str | None = None  # an agent's way into another call's room: that call has the ticket, not this one
    recording_toggles: list[Toggle] = Field(default_factory=list)  # the agent's pauses and resumes of the recording
    # What the record last said of the fields a late report can change (bridge.core.call_progress.decide_corrections).
    record_said: str | None = None
    callback: Callback | None = None  # the caller asked to be called back instead of waiting (docs/callbacks.md)
    voicemail_chosen: bool = False  # the waiting caller pressed the key for voicemail (the callback offer's 2)

    @property
    def asked(self) -> Callback | None:
        """Return the caller's callback request, once filed (docs/callbacks.md)."""
        return self.callback if self.callback is not None and self.callback.filed else None

    @property
    def route_line(self) -> str | None:
        """Return the key of the line whose agents and queue take the call: the menu's choice, else its own."""
        return self.chosen_line or self.line

    @property
    def answered_agent(self) -> str | None:
        """Return who answered the call: the answering leg's client:<name> or number."""
        leg = self.legs.get(self.answered_leg) if self.answered_leg else None
        return leg.to if leg is not None else None

    @property
    def over(self) -> bool:
        """Tell whether nobody is talking any more (some signal of the end has arrived)."""
        if self.room is not None:
            # In its room the call outlives the ring that answered it: the customer's stay there is the call.
            return self.ended_at is not None or call_room.spans(self.room).ended_at is not None
        if self.ended_at is not None or self.dial_status is not None:
            return True
        leg = self.legs.get(self.answered_leg) if self.answered_leg else None
        if leg is None or not leg.status.terminal:
            return False
        # The answering leg ended, but the caller may still be there: the bridge may have moved them into the call's
        # room, which ends the ring (and the leg with it). Only the <Dial action> or the call's own end says (for a
        # call whose direction is not known yet too: an end never turns back); a call out's leg is the customer,
        # whose hang-up is the end.
        return self.direction == "outbound" or self.routed is False

    @property
    def waiting(self) -> bool:
        """Tell whether the caller is waiting for an agent: being offered, or in the queue."""
        return (
            self.placed is not None
            and self.placed.kind in ("offer", "queue")
            and (self.callback is None or not self.callback.filed)
            and self.answered_leg is None
            and not self.over
        )

    def arrival(self, now: datetime) -> datetime:
        """Return when the call arrived, or `now` when the call's times disagree by more than any call lasts.

        Routing decisions are dated by the bridge's clock, callbacks by Twilio's Timestamp: only a replay of an
        old recording makes them disagree that much, and a wait counted from the recording's date is none.
        """
        first = self.first_seen
        if first is None or abs((now - first).total_seconds()) > MAX_CALL_SECONDS:
            return now
        return first

    def queue_time(self, until: datetime | None = None) -> float:
        """Return the seconds the caller has spent in the queue (until `until` for a stay not yet over)."""
        stay = 0.0
        if self.queue_since is not None and until is not None:
            stay = max(0.0, (until - self.queue_since).total_seconds())
        return self.queue_seconds + stay


@dataclass(frozen=True)
class AgentChange:
    """What an agent now is to the call (the store updates their presence from it)."""

    identity: str
    engagement: Engagement


@dataclass
class Outcome:
    """The result of one step: the new state, the store's orders, and what is worth logging.

    The store carries the orders out in the event's own transaction: queue `actions` (an action whose
    key is already queued is never queued twice), make the `revive` keys pending again if they died,
    and drop the `cancel` keys if they are still pending.
    """

    call: Call
    actions: list[Action]
    notices: list[tuple[str, str]]  # (key, text); keys in WARNINGS deserve a warning in the log
    revive: list[str] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)
    route: RouteRequest | None = None  # what the call asks of routing, decided in the same transaction
    agents: list[AgentChange] = field(default_factory=list)  # agents whose part in the call changed
