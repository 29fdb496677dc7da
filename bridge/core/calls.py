"""The pure call state machine: (Call, CallEvent, now, Policy) -> (Call, [Action]).

Twilio sends a call's webhooks as independent requests that can arrive late, twice or out of order
(Twilio docs, "Make outbound calls": status callbacks may arrive out of order, hence SequenceNumber), so
the machine never acts on "the next event". It folds each event into the call's state and then asks,
from the whole state, which effects are now due; every effect is emitted once (its key is
remembered), whatever order the events came in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from bridge.core.actions import (
    Action,
    AddNote,
    AddVoiceComment,
    CreateCallRecord,
    CreateTicket,
    DisplayUser,
    FindCaller,
    Timer,
    UpdateCallRecord,
    call_record_key,
    ticket_key,
    timer_key,
)
from bridge.core.events import TERMINAL_CALL_STATUSES, CallEvent, Direction, EventKind, LegStatus, RouteKind
from bridge.core.phones import is_anonymous, is_device, is_phone_number, mask, to_e164
from schemas.zendesk import CallComment, CallRecord, Comment, VoiceComment, VoiceTicket

# Twilio ends any call after 4 hours unless the account enabled 24-hour calls (Twilio docs: TwiML
# <Dial>, timeLimit, default 14400 s): silence on an answered call means nothing before that.
MAX_CALL_SECONDS = 4 * 3600
# Twilio transcribes a <Record> only when it is longer than 2 s and shorter than 120 s (Twilio docs:
# TwiML <Record>, transcribe); any other length never gets a transcription, so nothing waits for one.
TRANSCRIBABLE_SECONDS = (2, 120)
RECORDING_WAIT = "recording_wait"
TRANSCRIPTION_WAIT = "transcription_wait"
STALE = "stale"  # reconciliation gave up waiting for callbacks: decide with what is known
QUEUE_WAIT = "queue_wait"  # the caller's longest wait (QUEUE_MAX_WAIT_SECONDS from arrival) ran out
VIA_VOICEMAIL, VIA_INBOUND, VIA_OUTBOUND = 44, 45, 46

WARNINGS = frozenset({"notice:unmapped", "notice:transcription_failed", "notice:unknown", "notice:unknown_status"})
EPOCH = datetime.fromtimestamp(0, UTC)
# ZENDESK_API=calls: a call record's completion_status (Zendesk docs: Talk Partner Edition API, Calls).
COMPLETED = "completed"
ABANDONED_IN_QUEUE = "abandoned_in_queue"  # rang the agents, nobody answered, no voicemail offered
ABANDONED_IN_VOICEMAIL = "abandoned_in_voicemail"  # sent to voicemail, message or not
NOT_ANSWERED = "abandoned_in_queue"  # a call out the customer never answered
OUTSIDE_COMPLETED = "completed"  # a Studio flow or forwarded phone talked with the caller
OUTSIDE_ABANDONED = "abandoned_in_ivr"  # the flow ended the call before anyone talked
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
    }
)
# Events that show a ring of the call's (a leg, the end of a dial, a phone agent's answer to the whisper).
_RINGS = frozenset({EventKind.LEG_STATUS, EventKind.DIAL_ENDED, EventKind.SCREENED})
# What a call asks of routing after an event: an agent now (it arrived, or an offer rang out), to keep the
# offer it was moved to (it came back after a move), to leave the queue for voicemail (its wait ran out),
# or to be let out of line (answered, or the caller is gone).
# A ring that ended for a call routing never placed (its arrival came later, or before this version ran)
# asks to `settle` where it goes: nobody is left to offer it to, as before routing existed.
RouteRequest = Literal["offer", "resume", "expire", "done", "settle"]
# What an agent is to a call: rung now, talking, talked (their part is over), missed it (their offer rang
# out), or released (their offer stopped ringing for another reason: answered elsewhere, the caller left).
Engagement = Literal["ringing", "talking", "talked", "missed", "released"]

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
    placed: Placed | None = None  # where the bridge last sent the caller
    offers: list[Offer] = Field(default_factory=list)
    last_dial_status: str | None = None  # how the last ring ended, while routing decides what comes next
    queued_at: datetime | None = None  # when the caller first entered the queue
    queue_since: datetime | None = None  # in the queue now, since then
    queue_seconds: float = 0.0  # time spent in the queue before `queue_since`
    resumed: int = 0  # the last of the bridge's moves of the call that landed (it came back asking what next)
    no_agent: str | None = None  # why routing gave up: no_agent, exceeded_queue_time or overflowed
    abandoned_position: int | None = None  # the caller's place in line when they hung up waiting

    @property
    def over(self) -> bool:
        """Tell whether nobody is talking any more (some signal of the end has arrived)."""
        if self.ended_at is not None or self.dial_status is not None:
            return True
        leg = self.legs.get(self.answered_leg) if self.answered_leg else None
        return leg is not None and leg.status.terminal

    @property
    def waiting(self) -> bool:
        """Tell whether the caller is waiting for an agent: being offered, or in the queue."""
        return (
            self.placed is not None
            and self.placed.kind in ("offer", "queue")
            and self.answered_leg is None
            and not self.over
        )

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


def step(call: Call | None, event: CallEvent, now: datetime, policy: Policy) -> Outcome:
    """Fold one event into the call and return the effects that became due; the input is left as it was."""
    return advance(call.model_copy(deep=True) if call is not None else None, event, now, policy)


def advance(call: Call | None, event: CallEvent, now: datetime, policy: Policy) -> Outcome:
    """Do what `step` does, but on a call the caller gives up (the store's freshly parsed copy).

    Skipping the deep copy matters on the hot path: every webhook folds into a call read from the database.
    """
    # A call first heard of now starts as not routed by us; states stored before the flag existed are.
    state = call if call is not None else Call(sid=event.call_sid, routed=False)
    notices: list[tuple[str, str]] = []
    was_settled = state.answered_leg is not None or state.over
    was_waiting = state.waiting
    engaged = engagements(state)
    ignored = _apply(state, event, policy)
    if ignored:
        notices.append(ignored)
    if state.answered_leg is not None and state.answer_known_at is None:
        state.answer_known_at = now
    if state.queue_since is not None and (state.answered_leg is not None or state.over):
        _leave_queue(state, state.ended_at or event.at)
    request = _route_request(state, event, was_waiting)
    # A caller who gave up waiting is decided once routing has said where they were in line (its ROUTED
    # `left` event follows in the same transaction), so their missed call says it.
    deferred = request == "done" and state.answered_leg is None
    actions = [] if deferred else _decide(state, now, policy, notices)
    # A caller look-up that died (an outage past OUTBOX_MAX_AGE, an operator's drop) is tried again
    # when a new call needs it, or every later call from that number would go without a requester.
    revive = [action.key for action in actions if isinstance(action, FindCaller)]
    cancel = _moot_timers(state, event) + ([] if was_settled else _moot_pops(state, policy))
    changes = [AgentChange(who, what) for who, what in engagements(state).items() if engaged.get(who) != what]
    return Outcome(state, actions, notices, revive, cancel, request, changes)


def _route_request(call: Call, event: CallEvent, was_waiting: bool) -> RouteRequest | None:
    """Say what the call asks of routing after this event, if anything."""
    if call.direction != "inbound" or call.routed is False or (call.finished and not was_waiting):
        return None
    if was_waiting and not call.waiting and event.kind != EventKind.ROUTED:
        return "done"  # answered, or the caller is gone: out of line (their place is noted)
    if event.kind == EventKind.CALL_STARTED and call.placed is None:
        return "offer"
    if event.kind == EventKind.DIAL_ENDED and call.last_dial_status is not None and call.dial_status is None:
        return "offer" if call.placed is not None else "settle"  # it rang out and the caller is still there
    if event.kind == EventKind.RESUMED and call.waiting:
        return "resume"
    if event.kind == EventKind.MOVE_FAILED and call.waiting:
        return "offer"
    if event.kind == EventKind.QUEUE_LEFT and event.queue_result in ("left", "full", "failed") and not call.over:
        return "offer"
    if event.kind == EventKind.TIMER and event.timer == QUEUE_WAIT and call.placed and call.placed.kind == "queue":
        return "expire" if call.waiting else None
    return None


def engagements(call: Call) -> dict[str, Engagement]:
    """Return what each agent the call involved is to it now, from the whole state (so order does not matter)."""
    if call.direction == "outbound":
        if call.from_number is None or not is_device(call.from_number):
            return {}
        return {call.from_number: "talked" if call.over else "talking"}
    out: dict[str, Engagement] = {}
    for offer in call.offers:
        for identity in offer.agents:
            out[identity] = "released" if offer.ended or call.over or call.answered_leg else "ringing"
    for leg in sorted(call.legs.values(), key=lambda leg: (leg.started_at or EPOCH, leg.sid)):
        if leg.to is None:
            continue
        if leg.sid == call.answered_leg:
            out[leg.to] = "talked" if leg.status.terminal or call.over else "talking"
        elif leg.status == LegStatus.NO_ANSWER or (leg.stale and not leg.status.terminal and not leg.answered):
            out[leg.to] = "missed"
        elif leg.status.terminal or leg.stale or call.over or call.answered_leg is not None:
            out[leg.to] = "released"
        else:
            out[leg.to] = "ringing"
    return out


def _moot_pops(call: Call, policy: Policy) -> list[str]:
    """Return the user pops that can no longer matter: another agent answered, or the call is over."""
    if call.answered_leg is None and not call.over:
        return []
    keep = None
    if not call.over and call.answered_leg is not None:
        leg = call.legs.get(call.answered_leg)
        who = (leg.to if leg else None) if call.direction == "inbound" else call.from_number
        keep = policy.agents.get(who or "")
    return [
        key
        for key in call.emitted
        if key.startswith(f"{call.sid}:display_user:") and key != f"{call.sid}:display_user:{keep}"
    ]


def _moot_timers(call: Call, event: CallEvent) -> list[str]:
    """Return the waits a finished call no longer needs (not the one firing now: it settles itself)."""
    if not call.finished:
        return []
    firing = event.timer if event.kind == EventKind.TIMER else None
    return [
        timer_key(call.sid, name)
        for name in (RECORDING_WAIT, TRANSCRIPTION_WAIT, QUEUE_WAIT)
        if name != firing and timer_key(call.sid, name) in call.emitted
    ]


def _connected(dial_status: str | None, bridged: bool | None) -> bool:
    """Tell whether the <Dial> connected the caller to someone (DialBridged=false says it never did)."""
    return dial_status in ("completed", "answered") and bridged is not False


def may_be_talking(call: Call, now: datetime, policy: Policy) -> bool:
    """Tell whether an answered call could still be up: silence proves nothing before Twilio's limit."""
    leg = call.legs.get(call.answered_leg) if call.answered_leg else None
    if leg is None or call.over:
        return False
    since = call.answer_known_at or leg.answered_at or now
    return now < since + timedelta(seconds=MAX_CALL_SECONDS + policy.recording_wait)


def _apply(call: Call, event: CallEvent, policy: Policy) -> tuple[str, str] | None:
    """Record what the event says, never letting a stale event undo a later one; say why if ignored."""
    if event.kind in _ROUTED_KINDS:
        call.routed = True
    if call.first_seen is None or event.at < call.first_seen:
        call.first_seen = event.at
    call.direction = call.direction or event.direction
    call.from_number = call.from_number or event.from_number
    call.to_number = call.to_number or event.to_number
    call.from_location = call.from_location or event.from_location
    call.ticket_id = call.ticket_id or event.ticket_id
    if event.kind in _RINGS:
        _forget_unheard(call)
    parent_terminal = event.kind != EventKind.LEG_STATUS and event.status in TERMINAL_CALL_STATUSES
    if parent_terminal and call.ended_at is None:
        # Any parent-level callback saying the call is over counts: the number's own status
        # callback is optional in the Twilio console, so it may never come.
        call.ended_at = event.at
    if event.kind == EventKind.CALL_STATUS:
        _apply_parent_status(call, event)
    elif event.kind == EventKind.LEG_STATUS and event.leg_sid:
        ignored = _apply_leg(call, event)
        _elect_answered_leg(call, policy)
        return ignored
    elif event.kind == EventKind.SCREENED and event.leg_sid:
        leg = call.legs.setdefault(event.leg_sid, Leg(sid=event.leg_sid))
        leg.to = leg.to or event.leg_to
        if leg.screen is None:
            leg.screen = "accepted" if event.status == "accepted" else "declined"
        if leg.screen == "accepted" and leg.answered_at is None:
            leg.answered_at = event.at
        _elect_answered_leg(call, policy)
    elif event.kind == EventKind.DIAL_ENDED:
        _apply_dial(call, event, policy)
    elif event.kind == EventKind.VOICEMAIL_LEFT:
        call.voicemail_offered = True
        call.voicemail_hint = Recording(
            sid=event.recording_sid, url=event.recording_url, duration=event.recording_duration
        )
    elif event.kind == EventKind.RECORDING:
        _apply_recording(call, event)
    elif event.kind == EventKind.TRANSCRIPTION:
        # A completed transcription is never replaced by a later failure report.
        if call.transcription_status != "completed":
            call.transcription_status = event.transcription_status
            call.transcription_text = event.transcription_text or None
    elif event.kind == EventKind.ROUTED:
        _apply_routed(call, event)
    elif event.kind == EventKind.QUEUE_LEFT:
        _apply_queue_left(call, event)
    elif event.kind == EventKind.RESUMED:
        call.resumed = max(call.resumed, event.sequence or 0)
        _leave_queue(call, event.at)
    elif event.kind == EventKind.MOVE_FAILED:
        _apply_move_failed(call, event)
    elif event.kind == EventKind.TIMER and event.timer and event.timer not in call.fired:
        call.fired.append(event.timer)
        if event.timer == STALE:
            # Reconciliation says the call has ended. Its waits start now, so callbacks that were only
            # late (a recording still processing) still make the voice comment right.
            call.ended_at = call.ended_at or event.at
    return None


def _forget_unheard(call: Call) -> None:
    """Forget a decision to send the caller to voicemail or the apology that a ring of the call shows unheard.

    The bridge decided it when the call arrived, offering it to nobody; agents ringing for it prove the call
    followed other TwiML (a replay of a call recorded before routing, an instance of an earlier version during
    a deploy). The facts win: the call is treated as one routing never placed, as calls were before it.
    """
    placed = call.placed
    if placed is None or placed.kind not in ("voicemail", "unavailable") or call.direction != "inbound":
        return
    if call.offers or call.last_dial_status is not None:
        return  # decided when a ring of the call ended: its late callbacks say nothing against it
    call.placed = None
    call.no_agent = None
    call.voicemail_offered = call.voicemail_hint is not None or call.voicemail is not None
    call.dial_status = None  # set only by that decision: no ring of this call had ended


def _apply_routed(call: Call, event: CallEvent) -> None:
    """Record where routing sent the caller: an offer, the queue, voicemail, the apology, or out of line."""
    kind = event.route
    if kind is None:
        return
    if kind == "left":
        # Out of line (answered, or gone): the place they held, if they hung up waiting in the queue.
        if event.position is not None and call.answered_leg is None and call.abandoned_position is None:
            call.abandoned_position = event.position
        return
    call.placed = Placed(kind=kind, at=event.at, reason=event.reason)
    if kind == "offer":
        call.offers.append(Offer(agents=list(event.agents or ()), at=event.at, seconds=event.duration or 0,
                                 moved=bool(event.moved)))  # fmt: skip
        call.dial_bridged = None  # a new ring: the last one's "never connected" says nothing of it
    elif kind == "queue":
        call.queued_at = call.queued_at or event.at
        if call.queue_since is None:
            call.queue_since = event.at
    else:
        # Nobody can take the call: it ends as the last ring ended, and voicemail (when on) is offered.
        call.no_agent = event.reason or "no_agent"
        call.voicemail_offered = call.voicemail_offered or kind == "voicemail"
        call.dial_status = call.dial_status or call.last_dial_status or "no-answer"


def _apply_queue_left(call: Call, event: CallEvent) -> None:
    """Record how the caller left the queue; one who hung up there has ended the call."""
    _leave_queue(call, event.at)
    if event.queue_result == "hung_up":
        call.ended_at = call.ended_at or event.at
        # As sure as a ring the caller hung up on: nobody will answer, and no message follows.
        call.dial_status = call.dial_status or call.last_dial_status or "canceled"


def _apply_move_failed(call: Call, event: CallEvent) -> None:
    """Record that moving the call failed; one that had ended is over (the offer it was for never rang)."""
    if event.status == "gone" and call.ended_at is None:
        call.ended_at = event.at


def _leave_queue(call: Call, at: datetime) -> None:
    """End the caller's current stay in the queue, adding it to their time there."""
    if call.queue_since is not None:
        call.queue_seconds = call.queue_time(max(at, call.queue_since))
        call.queue_since = None


def _apply_parent_status(call: Call, event: CallEvent) -> None:
    """Track the parent leg's status; terminal is sticky, lower sequence numbers are stale."""
    if call.parent_status in TERMINAL_CALL_STATUSES:
        return
    if event.sequence is not None and event.sequence <= call.parent_sequence:
        return
    call.parent_status = event.status
    call.parent_sequence = event.sequence if event.sequence is not None else call.parent_sequence
    if event.status in TERMINAL_CALL_STATUSES:
        call.parent_duration = event.duration


def _apply_leg(call: Call, event: CallEvent) -> tuple[str, str] | None:
    """Track one dialed leg by its own SequenceNumber stream; say why a stale status is ignored."""
    assert event.leg_sid is not None
    leg = call.legs.setdefault(event.leg_sid, Leg(sid=event.leg_sid))
    leg.to = leg.to or event.leg_to
    leg.to_location = leg.to_location or event.to_location
    if leg.started_at is None or event.at < leg.started_at:
        leg.started_at = event.at
    raw = event.status or LegStatus.INITIATED
    if raw not in LegStatus.__members__.values():
        # Twilio adds values over time; keep the event (it is stored) and say so, never refuse it.
        return "notice:unknown_status", f"leg {leg.sid} reported CallStatus {raw!r}, which the bridge does not know"
    status = LegStatus(raw)
    stale = leg.status.terminal or status.rank < leg.status.rank
    if stale or (event.sequence is not None and event.sequence <= leg.sequence):
        return "notice:ignored", f"ignored late '{status}' of leg {leg.sid}: it is already '{leg.status}'"
    leg.status = status
    leg.sequence = event.sequence if event.sequence is not None else leg.sequence
    if status == LegStatus.ANSWERED:
        leg.answered_at = leg.answered_at or event.at
    if status.terminal:
        leg.ended_at = event.at
        leg.duration = event.duration
        if status == LegStatus.COMPLETED and leg.answered_at is None and event.duration is not None:
            # The `answered` callback was lost or is late: the talk time dates the answer.
            leg.answered_at = event.at - timedelta(seconds=event.duration)
    return None


def _screened(call: Call, leg: Leg, policy: Policy) -> bool:
    """Tell whether the leg is a phone agent who must press 1 before the call counts as theirs."""
    return policy.screen_phone_agents and call.direction != "outbound" and is_phone_number(leg.to)


def _elect_answered_leg(call: Call, policy: Policy) -> None:
    """Name the first leg that really took the call; a screened leg counts once its agent pressed 1.

    A phone whose mobile voicemail picks up is `in-progress` too, but never presses 1. Once the <Dial>
    reported no connection at all, no leg is elected any more (a late callback cannot undo that).
    """
    if call.answered_leg is not None or call.dial_bridged is False:
        return
    taken = [
        leg
        for leg in call.legs.values()
        if leg.answered
        and not leg.stale
        and leg.screen != "declined"
        and (leg.screen == "accepted" or not _screened(call, leg, policy))
    ]
    if taken:
        first = min(taken, key=lambda leg: (leg.answered_at or leg.started_at or call.first_seen or EPOCH, leg.sid))
        call.answered_leg = first.sid


def _apply_dial(call: Call, event: CallEvent, policy: Policy) -> None:
    """Record how the <Dial> ended; it is the authority on whether anyone answered.

    A ring that ended unanswered with the caller still there is not the end: routing decides what comes
    next (another offer, the queue, voicemail), in the same transaction, and says so with a ROUTED event.
    """
    if call.offers:
        call.offers[-1].ended = True
    call.dial_bridged = event.dial_bridged
    call.dial_duration = event.duration
    call.dial_at = event.at
    if event.recording_url:
        call.recording_hint = Recording(
            sid=event.recording_sid, url=event.recording_url, duration=event.recording_duration
        )
    # `completed` with DialBridged=false means the callee picked up but was never connected
    # (e.g. hung up during a whisper), so it counts as unanswered (Twilio docs: TwiML <Dial>, DialBridged).
    if event.dial_bridged is False and (event.leg_sid is None or event.leg_sid == call.answered_leg):
        # Picked up but never connected (a mobile voicemail): not the answering leg. An earlier ring's verdict
        # (another leg's sid) arriving late says nothing of the leg a later ring connected.
        call.answered_leg = None
    connected = _connected(event.dial_status, event.dial_bridged)
    if connected:
        # Without DialCallSid the answering leg is unknown by sid; a placeholder keeps "answered" true.
        leg_sid = event.leg_sid or f"{call.sid}:dialed"
        leg = call.legs.setdefault(leg_sid, Leg(sid=leg_sid))
        if not leg.answered and not leg.status.terminal:
            leg.status = LegStatus.ANSWERED
        leg.duration = leg.duration if leg.duration is not None else event.duration
        call.answered_leg = leg_sid
    if connected or call.direction == "outbound" or event.status in TERMINAL_CALL_STATUSES:
        call.dial_status = event.dial_status
        return
    call.last_dial_status = event.dial_status or "no-answer"
    for leg in call.legs.values():
        # The legs of a ring that connected nobody never take the call, whatever their late callbacks say.
        leg.stale = leg.stale or leg.sid != call.answered_leg


def _apply_recording(call: Call, event: CallEvent) -> None:
    """File a recording as the conversation's or the voicemail's."""
    recording = Recording(
        sid=event.recording_sid,
        url=event.recording_url,
        duration=event.recording_duration,
        started_at=event.recording_started_at,
        status=event.recording_status,
    )
    if event.recording_source == "RecordVerb":
        is_voicemail = True
    elif event.recording_source == "DialVerb":
        is_voicemail = False
    else:
        is_voicemail = call.voicemail_offered and call.answered_leg is None
    current = call.voicemail if is_voicemail else call.recording
    if current is not None and current.status == "completed":
        return
    if is_voicemail:
        call.voicemail = recording
    else:
        call.recording = recording


def _decide(call: Call, now: datetime, policy: Policy, notices: list[tuple[str, str]]) -> list[Action]:
    """Return every effect that the call's state makes due and that was not emitted before."""
    out: list[Action] = []

    def emit(action: Action) -> None:
        if action.key not in call.emitted:
            call.emitted.append(action.key)
            out.append(action)

    def notice(key: str, text: str) -> None:
        if key not in call.emitted:
            call.emitted.append(key)
            notices.append((key, text))

    if call.direction is None or call.from_number is None:
        if STALE in call.fired:
            notice("notice:unknown", "call closed out without ever learning who called whom: no ticket")
            call.finished = True
        return out  # only parent-level callbacks say who called whom; keep the event and wait
    inbound = call.direction == "inbound"
    answered = call.legs.get(call.answered_leg) if call.answered_leg else None
    customer_raw = call.from_number if inbound else (call.to_number or (answered.to if answered else None))
    customer = to_e164(customer_raw, policy.default_region)
    if customer:
        emit(FindCaller(call.sid, customer))
    calling_agent = None if inbound else policy.agents.get(call.from_number)
    if call.placed is not None and call.placed.kind == "queue" and QUEUE_WAIT not in call.fired:
        emit(Timer(call.sid, QUEUE_WAIT, _arrival(call, now) + timedelta(seconds=policy.queue_max_wait)))

    if customer and answered is None and not call.over:
        for leg in sorted(call.legs.values(), key=lambda leg: leg.sid):
            agent = policy.agents.get(leg.to or "")
            if inbound and leg.stale:
                continue  # a ring that ended long ago, reported late: nobody's phone rings for it now
            if inbound and leg.status == LegStatus.RINGING and agent is not None:
                emit(DisplayUser(call.sid, agent, customer))
            elif inbound and leg.status == LegStatus.RINGING:
                notice(f"notice:unmapped_leg:{leg.sid}", f"{mask(leg.to)} is ringing but not in AGENTS: no pop")
            elif not inbound and calling_agent is not None and leg.status.rank <= LegStatus.RINGING.rank:
                emit(DisplayUser(call.sid, calling_agent, customer))

    if answered is not None:
        _decide_answered(call, answered, now, policy, emit, notice, customer, calling_agent)
    elif not inbound:
        if call.over and policy.api == "calls" and call.dial_status is None and RECORDING_WAIT not in call.fired:
            # Only the <Dial action> is sure nobody answered; a parent status may overtake the leg's `answered`,
            # and a record without a ticket cannot be taken back: give late callbacks a bounded time.
            emit(Timer(call.sid, RECORDING_WAIT, now + timedelta(seconds=policy.recording_wait)))
        elif call.over:
            notice("notice:no_ticket", f"outbound call to {mask(customer_raw)} was not answered: no ticket")
            if policy.api == "calls":
                record = CallRecord(**_opening(call, None, None, policy), **_ending(call, None, NOT_ANSWERED))
                # Placed from a ticket: the attempt shows there (and can be found there again); else it stands alone.
                comment = _comment(f"Call to {_show(customer_raw)}", calling_agent, DETAIL_FIELDS)
                shown = comment if call.ticket_id is not None else None
                emit(CreateCallRecord(call.sid, record, shown, customer, existing_ticket_id=call.ticket_id))
            call.finished = True
    else:
        _decide_unanswered(call, now, policy, emit, notice, customer)
    return out


def _decide_answered(
    call: Call,
    leg: Leg,
    now: datetime,
    policy: Policy,
    emit: Emit,
    notice: Notice,
    customer: str | None,
    calling_agent: int | None,
) -> None:
    """Create the ticket and its voice comment for a call somebody answered."""
    inbound = call.direction == "inbound"
    waited = RECORDING_WAIT in call.fired
    if inbound and leg.to is None and not waited:
        # Only the leg's own status callbacks say who answered (the <Dial action> names just its sid);
        # they normally come first, so wait for them, boundedly once the call is over.
        if call.over:
            emit(Timer(call.sid, RECORDING_WAIT, now + timedelta(seconds=policy.recording_wait)))
        return
    agent_id = policy.agents.get(leg.to or "") if inbound else calling_agent
    if agent_id is None:
        who = leg.to if inbound else call.from_number
        notice("notice:unmapped", f"call answered by {mask(who)}, who is not in AGENTS: ticket unassigned, no pop")
    via = VIA_INBOUND if inbound else VIA_OUTBOUND
    subject = f"Call from {_show(call.from_number)}" if inbound else f"Call to {_show(_customer(call, leg))}"
    base = VoiceTicket(via_id=via, subject=subject, external_id=call.sid, assignee_id=agent_id)
    # A call out placed from a ticket goes on that ticket; the outbox falls back to a new via 46 one.
    existing = None if inbound else call.ticket_id
    calls = policy.api == "calls"
    note = Comment(body=_answer_note(call, leg))
    opening = _opening(call, leg, agent_id, policy)
    title = subject if inbound else f"Call to {_show(_customer(call, leg))}"
    if policy.ticket_on == "answer":
        emit(CreateTicket(call.sid, base.model_copy(update={"comment": note}), customer, agent_id, existing))
        if calls:
            # The record goes on the ticket at once: its voice comment shows the fields as later updates fill them.
            emit(CreateCallRecord(call.sid, CallRecord(**opening), _comment(title, agent_id, CALL_FIELDS), customer))
    elif agent_id is not None and customer and not call.over:
        emit(DisplayUser(call.sid, agent_id, customer))
    if not call.over:
        return
    if not _recording_settled(call, policy) or _awaits_duration(call, policy):
        emit(Timer(call.sid, RECORDING_WAIT, now + timedelta(seconds=policy.recording_wait)))
        return
    # Sent when the voice comment would be: by then every callback that comes has come, so the end, the
    # talk time and the recording go in one request, complete whatever order Twilio sent them in.
    conversation = _conversation(call)
    ending = _ending(call, leg, COMPLETED, conversation)
    recorded = _recorded(conversation)
    if calls and policy.ticket_on == "answer":
        # The agent again: an answer Twilio reported only after the call was judged missed finds a record made
        # without one (the missed-call ticket gets the voice comment in tickets mode the same way).
        emit(UpdateCallRecord(call.sid, "ended", CallRecord(**ending, **recorded, agent_id=agent_id)))
    elif calls:
        # The ticket and its record together, the record's voice comment carrying the recording.
        emit(CreateTicket(call.sid, base.model_copy(update={"comment": note}), customer, agent_id, existing))
        record = CallRecord(**{**opening, **ending, **recorded})
        emit(CreateCallRecord(call.sid, record, _comment(title, agent_id, CALL_FIELDS), customer))
    elif policy.ticket_on == "answer":
        emit(AddVoiceComment(call.sid, _voice_comment(call, leg, agent_id, policy)))
    else:
        ticket = base.model_copy(update={"voice_comment": _voice_comment(call, leg, agent_id, policy)})
        emit(CreateTicket(call.sid, ticket, customer, agent_id, existing_ticket_id=existing))
    call.finished = True


def _decide_unanswered(
    call: Call, now: datetime, policy: Policy, emit: Emit, notice: Notice, customer: str | None
) -> None:
    """Make a voicemail or missed-call ticket for an inbound call nobody answered."""
    waited = RECORDING_WAIT in call.fired
    message = call.voicemail if call.voicemail and call.voicemail.status == "completed" else None
    if message is None and waited and call.voicemail_hint and call.voicemail_hint.url:
        message = call.voicemail_hint  # the <Record action> told us; its status callback was lost
    if message is not None and message.duration == 0:
        message = None  # the caller hung up at the beep: an empty recording is no message
    if message is not None:
        _decide_voicemail(call, message, now, policy, emit, notice, customer)
        return
    dial_unanswered = call.dial_status is not None
    absent = call.voicemail is not None and call.voicemail.status in ("absent", "failed")
    if waited and call.ended_at is not None and call.routed is False:
        _decide_unrouted(call, policy, emit, notice, customer)
    elif (dial_unanswered and not call.voicemail_offered) or absent or (waited and call.ended_at is not None):
        subject = f"Missed call from {_show(call.from_number)}"
        if policy.missed_call_tickets:
            ticket = VoiceTicket(
                via_id=VIA_INBOUND,
                subject=subject,
                external_id=call.sid,
                comment=Comment(body=_missed_note(call)),
                tags=["missed_call"],
            )
            emit(CreateTicket(call.sid, ticket, requester_phone=customer))
        else:
            notice("notice:no_ticket", f"missed call from {mask(call.from_number)}: MISSED_CALL_TICKETS is off")
        if policy.api == "calls":
            # A <Record> recording of any status means the caller reached the greeting, whatever came first.
            reached = call.voicemail_offered or call.voicemail is not None
            status = ABANDONED_IN_VOICEMAIL if reached else ABANDONED_IN_QUEUE
            comment = _comment(subject, None, CALL_FIELDS) if policy.missed_call_tickets else None
            _record_outcome(call, policy, _ending(call, None, status), comment, customer, emit)
        call.finished = True
    elif call.ended_at is not None:
        # Over, but no answer, voicemail or verdict yet: give late callbacks a bounded time.
        emit(Timer(call.sid, RECORDING_WAIT, now + timedelta(seconds=policy.recording_wait)))


def _decide_unrouted(call: Call, policy: Policy, emit: Emit, notice: Notice, customer: str | None) -> None:
    """Log a call that only its status callback told of (a Studio flow, a TwiML Bin, a fallback URL).

    Nobody the bridge rang answered it, so it is no missed call; but someone (a flow, a forwarded
    phone) talked with the caller for CallDuration seconds. It becomes a plain via 45 ticket with what
    is known, without a voice comment (there is no recording to play); a call that lasted 0 s is noise.
    """
    subject = f"Call from {_show(call.from_number)}"
    if not call.parent_duration:
        who = mask(call.from_number)
        notice("notice:no_ticket", f"call from {who} never reached the bridge's TwiML and lasted 0 s: no ticket")
    else:
        ticket = VoiceTicket(
            via_id=VIA_INBOUND,
            subject=subject,
            external_id=call.sid,
            comment=Comment(body=_unrouted_note(call)),
            tags=["outside_bridge"],
        )
        emit(CreateTicket(call.sid, ticket, requester_phone=customer))
    if policy.api == "calls":
        status = OUTSIDE_COMPLETED if call.parent_duration else OUTSIDE_ABANDONED
        comment = _comment(subject, None, CALL_FIELDS) if call.parent_duration else None
        _record_outcome(call, policy, _ending(call, None, status), comment, customer, emit)
    call.finished = True


def _decide_voicemail(
    call: Call,
    message: Recording,
    now: datetime,
    policy: Policy,
    emit: Emit,
    notice: Notice,
    customer: str | None,
) -> None:
    """Create the via 44 ticket once its transcription arrived or stopped being worth waiting for."""
    text = call.transcription_text if call.transcription_status == "completed" else None
    if call.transcription_status == "failed":
        notice("notice:transcription_failed", "voicemail transcription failed: ticket goes without it")
    answered_first = ticket_key(call.sid) in call.emitted and not call.finished
    if ticket_key(call.sid) in call.emitted and not answered_first:
        if text and not call.transcription_in_ticket:
            emit(AddNote(call.sid, "transcription", f"Voicemail transcription:\n\n{text}"))
            if policy.api == "calls":
                emit(UpdateCallRecord(call.sid, "transcript", CallRecord(transcript=text)))
        return
    shortest, longest = TRANSCRIBABLE_SECONDS
    transcribable = message.duration is None or shortest < message.duration < longest
    ready = (
        not policy.transcribe_voicemail
        or not transcribable
        or call.transcription_status in ("completed", "failed")
        or TRANSCRIPTION_WAIT in call.fired
    )
    if not ready:
        emit(Timer(call.sid, TRANSCRIPTION_WAIT, now + timedelta(seconds=policy.transcription_wait)))
        return
    comment = VoiceComment(
        from_=call.from_number or "",
        to=call.to_number or "",
        started_at=_iso(message.started_at or call.dial_at or call.first_seen),
        call_duration=message.duration or 0,
        recording_url=_media_url(message.url) if message.url else None,
        location=call.from_location,
        transcription_text=text,
    )
    call.transcription_in_ticket = text is not None
    call.finished = True
    calls = policy.api == "calls"
    ending = {**_ending(call, None, ABANDONED_IN_VOICEMAIL, message), **_recorded(message, text), "voicemail": True}
    if answered_first and calls:
        _record_outcome(call, policy, ending, None, customer, emit)
        return
    if answered_first:
        # A leg picked up (and got the ticket at answer) but was never connected, and the caller then
        # left a message: it becomes that ticket's one voice comment rather than being lost.
        emit(AddVoiceComment(call.sid, comment))
        return
    subject = f"Voicemail from {_show(call.from_number)}"
    ticket = VoiceTicket(via_id=VIA_VOICEMAIL, subject=subject, external_id=call.sid, voice_comment=comment)
    emit(CreateTicket(call.sid, ticket, requester_phone=customer))
    if calls:
        # Zendesk requires a voicemail (via 44) ticket to carry its voice comment (TPE API, "Creating
        # voicemail tickets"), which already plays the message; a TPE voice comment would play it a second
        # time, so the record is linked to the ticket without one (creating a record adds nothing to a ticket).
        _record_outcome(call, policy, ending, None, customer, emit, linked=True)


def _record_outcome(
    call: Call,
    policy: Policy,
    final: dict[str, Any],
    comment: CallComment | None,
    customer: str | None,
    emit: Emit,
    *,
    linked: bool = False,
) -> None:
    """Create the record of a call nobody took, or correct the one made when a leg picked up and never connected."""
    if call_record_key(call.sid) not in call.emitted:
        record = CallRecord(**{**_opening(call, None, None, policy), **final})
        emit(CreateCallRecord(call.sid, record, comment, customer, linked=linked))
        return
    # The leg that picked up (a declined whisper, a hang-up before the bridge) never talked with the caller:
    # the record stops naming it (DialBridged=false, Twilio docs: TwiML <Dial>).
    emit(UpdateCallRecord(call.sid, "ended", CallRecord(**final), cleared=ANSWER_FIELDS))


def _conversation(call: Call) -> Recording | None:
    """Return the recording of an answered call: the completed one, or the action's hint once waited for."""
    if call.recording is not None and call.recording.status == "completed":
        return call.recording
    if RECORDING_WAIT in call.fired and call.recording is None:
        return call.recording_hint
    return None


def _comment(title: str, author: int | None, fields: tuple[str, ...]) -> CallComment:
    """Build the comment section that shows the record on its ticket."""
    return CallComment(title=title, call_fields=list(fields), author_id=author)


def _opening(call: Call, leg: Leg | None, agent_id: int | None, policy: Policy) -> dict[str, Any]:
    """Return the record's fields known when the call starts (and, for an answered leg, when it is answered)."""
    inbound = call.direction == "inbound"
    customer = (_customer(call, leg) if leg is not None else call.to_number) if not inbound else call.from_number
    fields: dict[str, Any] = {
        "from_line": (call.from_number if inbound else policy.caller_id or call.from_number) or UNKNOWN_LINE,
        "to_line": (call.to_number if inbound else customer) or UNKNOWN_LINE,
        "call_started_at": _iso(call.first_seen) or None,
        "direction": call.direction,
        "external_id": call.sid,
        "end_user_location": call.from_location if inbound else (leg.to_location if leg is not None else None),
    }
    if leg is not None:
        fields["agent_id"] = agent_id
        fields["time_to_answer"] = _seconds(call.first_seen, leg.answered_at)
    return fields


def _ending(call: Call, leg: Leg | None, status: str, recording: Recording | None = None) -> dict[str, Any]:
    """Return the record's fields known once the call is over (a dual recording starts at the answer)."""
    ended = call.ended_at or call.dial_at or (leg.ended_at if leg is not None else None)
    span = _seconds(call.first_seen, ended)
    if span is not None and span > MAX_CALL_SECONDS:
        # Legs are dated by Twilio's Timestamp, parent webhooks by their arrival: when the two disagree by more
        # than any call lasts (a replay of an old recording), Twilio's own durations are the truth.
        span = ended = None
    duration = call.parent_duration if call.parent_duration is not None else span
    fields: dict[str, Any] = {"completion_status": status}
    answered: datetime | None = None
    if leg is not None:
        talk = leg.duration if leg.duration is not None else call.dial_duration
        fields["talk_time"] = talk if talk is not None or recording is None else recording.duration
        # Known at the answer only when the leg's `answered` came first; a shuffled or lost one dates it now.
        answered = leg.answered_at or (recording.started_at if recording is not None else None)
        fields["time_to_answer"] = _seconds(call.first_seen, answered)
        if duration is None and fields["talk_time"] is not None:
            duration = (fields["time_to_answer"] or 0) + fields["talk_time"]  # rang, then talked
    elif duration is None:
        # Nobody answered: the call lasted as long as it rang, plus any message left after the greeting.
        rang, message = _ring_seconds(call), recording.duration if recording is not None else None
        duration = None if rang is None and message is None else (rang or 0) + (message or 0)
    if ended is None and duration is not None and call.first_seen is not None:
        ended = call.first_seen + timedelta(seconds=duration)
    return {"call_ended_at": _iso(ended) or None, "duration": duration, **fields, **_waits(call, answered)}


def _waits(call: Call, answered: datetime | None) -> dict[str, Any]:
    """Return the record's waiting fields: how long the caller waited for an agent, and how in the queue.

    `wait_time` runs from the call's arrival to the answer, or to when the caller stopped waiting (sent to
    voicemail or the apology, or hung up); `queue_time` is the part of it spent in the queue (README, "Call
    records"). Calls the bridge never routed (calls out, calls only their status callback told of) have none.
    """
    if call.direction != "inbound" or call.placed is None:
        return {}
    until = answered
    if until is None:
        gave_up = call.placed.at if call.placed.kind in ("voicemail", "unavailable") else None
        until = gave_up or call.ended_at
    waited = _seconds(call.first_seen, until)
    fields: dict[str, Any] = {"wait_time": waited if waited is not None and 0 <= waited <= MAX_CALL_SECONDS else None}
    if call.queued_at is not None:
        fields["queue_time"] = round(call.queue_time(until))
    # Zendesk's Calls API: both say why a caller went to voicemail unanswered; an answered call did neither.
    if call.no_agent == "exceeded_queue_time" and answered is None:
        fields["exceeded_queue_time"] = True
    if call.no_agent == "overflowed" and answered is None:
        fields["overflowed"] = True
    if call.abandoned_position is not None:
        fields["call_abandoned_position"] = call.abandoned_position
    return fields


def _recorded(recording: Recording | None, transcript: str | None = None) -> dict[str, Any]:
    """Return the record's recording fields, empty when there is nothing to play or read."""
    fields: dict[str, Any] = {}
    if recording is not None and recording.url:
        fields["recording_url"] = _media_url(recording.url)
        fields["recording_time"] = recording.duration
    if transcript:
        fields["transcript"] = transcript
    return fields


def _seconds(start: datetime | None, end: datetime | None) -> int | None:
    """Return whole seconds between two instants, or None when either is unknown."""
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds()))


def _recording_settled(call: Call, policy: Policy) -> bool:
    """Tell whether the voice comment can go: the recording is ready, absent, not expected, or waited for."""
    return not policy.record_calls or call.recording is not None or RECORDING_WAIT in call.fired


def _arrival(call: Call, now: datetime) -> datetime:
    """Return when the call arrived, or `now` when the call's times disagree by more than any call lasts.

    Routing decisions are dated by the bridge's clock, callbacks by Twilio's Timestamp: only a replay of an
    old recording makes them disagree that much, and then a wait counted from the recording's date is none.
    """
    first = call.first_seen
    if first is None or abs((now - first).total_seconds()) > MAX_CALL_SECONDS:
        return now
    return first


def _awaits_duration(call: Call, policy: Policy) -> bool:
    """Tell whether a call record's end should wait for the parent call's final status, boundedly.

    Only that callback carries Twilio's own CallDuration (Twilio docs: status callbacks); a recording that
    arrives first would otherwise end the record with a duration and an end computed from the legs.
    """
    return policy.api == "calls" and call.parent_duration is None and RECORDING_WAIT not in call.fired


def _voice_comment(call: Call, leg: Leg, agent_id: int | None, policy: Policy) -> VoiceComment:
    """Build the voice comment of an answered call: outbound `from` is CALLER_ID, duration is talk time."""
    inbound = call.direction == "inbound"
    recording = _conversation(call)
    duration = leg.duration if leg.duration is not None else call.dial_duration
    if duration is None and recording is not None:
        duration = recording.duration
    started = leg.answered_at or (recording.started_at if recording else None) or call.first_seen
    return VoiceComment(
        from_=(call.from_number or "") if inbound else (policy.caller_id or ""),
        to=(call.to_number or "") if inbound else _customer(call, leg),
        started_at=_iso(started),
        call_duration=duration or 0,
        recording_url=_media_url(recording.url) if recording is not None and recording.url else None,
        answered_by_id=agent_id,
        location=call.from_location if inbound else leg.to_location,
    )


def _customer(call: Call, leg: Leg) -> str:
    """Return the customer's number on an outbound call."""
    return call.to_number or leg.to or ""


def _answer_note(call: Call, leg: Leg) -> str:
    """Say who called whom and when, for the private comment on the new ticket."""
    when = _human(leg.answered_at or call.first_seen)
    if call.direction == "inbound":
        return f"Inbound call from {_show(call.from_number)} to {call.to_number}, answered by {leg.to} at {when}."
    return f"Outbound call from {call.from_number} to {_show(_customer(call, leg))}, answered at {when}."


def _missed_note(call: Call) -> str:
    """Say who called, when, and how long it rang (and they waited in the queue), for a missed-call ticket."""
    rang = _ring_seconds(call)
    rang_text = f"; it rang for {rang} s" if rang is not None else ""
    waited = ""
    if call.queued_at is not None:
        place = f", number {call.abandoned_position} in line," if call.abandoned_position else ""
        waited = f" The caller waited {round(call.queue_time(call.ended_at))} s in the queue{place} and hung up."
    return (
        f"Missed call from {_show(call.from_number)} to {call.to_number} at {_human(call.first_seen)}"
        f"{rang_text}.{waited} Nobody answered and no voicemail was left."
    )


def _unrouted_note(call: Call) -> str:
    """Say what is known of a call the bridge did not route."""
    return (
        f"Call from {_show(call.from_number)} to {call.to_number} at {_human(call.first_seen)}, "
        f"{call.parent_duration} s. It was handled outside the bridge (a Studio flow, a TwiML Bin or a "
        "fallback URL), so no agent was rung and there is no recording."
    )


def _ring_seconds(call: Call) -> int | None:
    """Estimate how long the agents' phones rang, from the legs' own timestamps."""
    starts = [leg.started_at for leg in call.legs.values() if leg.started_at]
    ends = [leg.ended_at for leg in call.legs.values() if leg.ended_at]
    if starts and ends:
        return max(0, int((max(ends) - min(starts)).total_seconds()))
    return call.parent_duration


def _media_url(url: str) -> str:
    """Point at the MP3 rendition: Twilio's RecordingUrl has no extension and Zendesk plays MP3 or WAV."""
    return url if url.endswith((".mp3", ".wav")) else url + ".mp3"


def _show(number: str | None) -> str:
    """Name a caller for a ticket subject."""
    return "an anonymous caller" if is_anonymous(number) or number is None else number


def _iso(moment: datetime | None) -> str:
    """Format an instant as ISO 8601 UTC, as voice_comment.started_at wants."""
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _human(moment: datetime | None) -> str:
    """Format an instant for a human reading a ticket."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "an unknown time"
