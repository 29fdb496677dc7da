"""The pure call state machine: (Call, CallEvent, now, Policy) -> (Call, [Action]).

Twilio sends a call's webhooks as independent requests that can arrive late, twice or out of order
(Twilio docs, "Make outbound calls": status callbacks may arrive out of order, hence SequenceNumber), so
the machine never acts on "the next event". It folds each event into the call's state and then asks,
from the whole state, which effects are now due; every effect is emitted once (its key is
remembered), whatever order the events came in.
"""

from __future__ import annotations

from datetime import datetime

from bridge.core import call_room, callback_flow
from bridge.core.actions import (
    FindCaller,
    timer_key,
)
from bridge.core.call_decide import _decide
from bridge.core.call_facts import _apply, _leave_queue, may_be_talking
from bridge.core.call_model import (
    ANSWER_FIELDS,
    CALL_FIELDS,
    DETAIL_FIELDS,
    EPOCH,
    MAX_CALL_SECONDS,
    NOT_ANSWERED,
    OUTSIDE_ABANDONED,
    OUTSIDE_COMPLETED,
    QUEUE_WAIT,
    RECORDING_WAIT,
    STALE,
    TRANSCRIBABLE_SECONDS,
    TRANSCRIPTION_WAIT,
    UNKNOWN_LINE,
    WARNINGS,
    WRAP_UP,
    AgentChange,
    Call,
    Emit,
    Engagement,
    Leg,
    Notice,
    Offer,
    Outcome,
    Placed,
    Policy,
    Recording,
    RouteRequest,
)
from bridge.core.events import CallEvent, EventKind, LegStatus
from bridge.core.phones import is_device
from schemas.zendesk import ABANDONED_IN_QUEUE, ABANDONED_IN_VOICEMAIL, ABANDONED_ON_HOLD, COMPLETED

__all__ = [
    "ABANDONED_IN_QUEUE",
    "ABANDONED_IN_VOICEMAIL",
    "ABANDONED_ON_HOLD",
    "ANSWER_FIELDS",
    "CALL_FIELDS",
    "COMPLETED",
    "DETAIL_FIELDS",
    "EPOCH",
    "MAX_CALL_SECONDS",
    "NOT_ANSWERED",
    "OUTSIDE_ABANDONED",
    "OUTSIDE_COMPLETED",
    "QUEUE_WAIT",
    "RECORDING_WAIT",
    "STALE",
    "TRANSCRIBABLE_SECONDS",
    "TRANSCRIPTION_WAIT",
    "UNKNOWN_LINE",
    "WARNINGS",
    "WRAP_UP",
    "AgentChange",
    "Call",
    "Emit",
    "Engagement",
    "Leg",
    "Notice",
    "Offer",
    "Outcome",
    "Placed",
    "Policy",
    "Recording",
    "RouteRequest",
    "advance",
    "engagements",
    "may_be_talking",
    "step",
]


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
    was_in_menu = state.menu is None or state.menu.target is None
    was_lined = _lined(state)
    engaged = engagements(state)
    ignored = _apply(state, event, policy)
    if ignored:
        notices.append(ignored)
    if state.answered_leg is not None and state.answer_known_at is None:
        state.answer_known_at = now
    if state.queue_since is not None and (state.answered_leg is not None or state.over):
        _leave_queue(state, state.ended_at or event.at)
    request = _room_request(state, event, was_lined) or _route_request(state, event, was_waiting, was_in_menu)
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


def _lined(call: Call) -> tuple[str | None, int]:
    """Return the line an answered call waits in from its room (None: none), and how many invitations rang out."""
    if call.room is None:
        return None, 0
    seen = call_room.spans(call.room)
    return seen.in_line, len(seen.rang_out)


def _room_request(call: Call, event: CallEvent, was: tuple[str | None, int]) -> RouteRequest | None:
    """Say what a call in its room asks of routing: to wait in a line, an invitation rang out, or out of line."""
    line, rang = _lined(call)
    if event.kind == EventKind.MOVE_FAILED and line is not None:
        return "requeue"  # an agent could not be invited: back in line, the next agent invited
    if event.kind != EventKind.ROOM:
        return None
    if line is not None and was[0] is None:
        return "line"
    if line is None and was[0] is not None:
        return "done"  # an agent of the line took the call, or the customer is gone: out of line
    return "rang" if line is not None and rang > was[1] else None


def _route_request(call: Call, event: CallEvent, was_waiting: bool, was_in_menu: bool) -> RouteRequest | None:
    """Say what the call asks of routing after this event, if anything (`was_in_menu`: its menu had not led it on)."""
    if call.direction != "inbound" or call.routed is False:
        return None
    if event.kind in callback_flow.KINDS:
        return callback_flow.route_request(call, event)  # a callback's turns come long after its call finished
    if call.finished and not was_waiting:
        return None
    rang_out = event.kind == EventKind.DIAL_ENDED and call.last_dial_status is not None and call.dial_status is None
    if call.after_hours is not None:
        # Its line was closed: nobody is offered the call, and it never waits in the queue. Its forward ringing
        # out is settled as a menu's is: the caller goes to the line's voicemail or the apology.
        return "settle" if rang_out and call.placed is not None and call.placed.kind == "forward" else None
    if was_waiting and not call.waiting and event.kind != EventKind.ROUTED:
        return "done"  # answered, or the caller is gone: out of line (their place is noted)
    if event.kind == EventKind.CALL_STARTED and call.placed is None:
        return "offer"
    if event.kind == EventKind.MENU_CHOSEN and was_in_menu and _menu_led_to_line(call):
        return "offer"  # the caller chose a line at its menu: only now is anyone offered the call
    if rang_out:
        # It rang out and the caller is still there: offered again, unless it was no offer that rang (a number
        # the menu forwarded to, or a ring of a call routing never placed): then nobody is left to offer it to.
        offered = call.placed is not None and call.placed.kind not in ("menu", "forward")
        return "offer" if offered else "settle"
    if event.kind == EventKind.RESUMED and call.waiting:
        return "resume"
    if event.kind == EventKind.MOVE_FAILED and call.waiting:
        return "requeue"
    if event.kind == EventKind.CUSTOMER_FOUND and call.waiting:
        return "refresh"
    if event.kind == EventKind.QUEUE_LEFT and event.queue_result in ("left", "full", "failed") and not call.over:
        return "offer"
    if event.kind == EventKind.TIMER and event.timer == QUEUE_WAIT and call.placed and call.placed.kind == "queue":
        return "expire" if call.waiting else None
    return None


def _menu_led_to_line(call: Call) -> bool:
    """Tell whether the caller's menu just led them to a line, with nobody offered the call yet."""
    in_menu = call.placed is not None and call.placed.kind == "menu"
    return in_menu and call.chosen_line is not None and call.answered_leg is None and not call.over


def engagements(call: Call) -> dict[str, Engagement]:
    """Return what each agent the call involved is to it now, from the whole state (so order does not matter)."""
    if call.part_of is not None:
        return {}  # an agent's way into another call's room: that call says what the agent is to it
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
    if call.room is not None:
        answered = call.legs.get(call.answered_leg) if call.answered_leg else None
        out.update(call_room.engagements(call.room, answered.to if answered else None, not call.over))
    out.update(callback_flow.engagements(call))
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
    # The agent's wrap-up runs on after the call, until they end it or WRAP_UP_SECONDS pass.
    ended = (RECORDING_WAIT, TRANSCRIPTION_WAIT, QUEUE_WAIT) + ((WRAP_UP,) if call.wrap_up_time is not None else ())
    return [timer_key(call.sid, name) for name in ended if name != firing and timer_key(call.sid, name) in call.emitted]
