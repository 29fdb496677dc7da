"""Fold one event's facts into a call's state, never letting a stale event undo a later one (no I/O)."""

from __future__ import annotations

from datetime import datetime, timedelta

from bridge.core import call_controls, call_menu, call_room, callback_flow, hours
from bridge.core.call_fields import _routed_line
from bridge.core.call_model import (
    _RINGS,
    _ROUTED_KINDS,
    EPOCH,
    MAX_CALL_SECONDS,
    STALE,
    Call,
    Leg,
    Offer,
    Placed,
    Policy,
    Recording,
)
from bridge.core.events import TERMINAL_CALL_STATUSES, CallEvent, EventKind, LegStatus
from bridge.core.phones import is_phone_number, mask


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
    call.customer = call.customer or event.customer  # the arrival's: what the number's last look-up found
    call.part_of = call.part_of or event.joins
    starts = event.kind in (EventKind.CALL_STARTED, EventKind.MENU_CHOSEN)  # an answer may overtake the arrival
    unknown_line = _take_line(call, event, policy) if starts else None
    if event.after_hours is not None and event.kind != EventKind.MENU_CHOSEN:
        # Said by the call's arrival, and by every request our after-hours TwiML sends back (its URLs carry it),
        # so whichever Twilio delivers first, the call is known to have come after hours. (A menu's answer says
        # whether the line it leads to is closed: that is kept with the answer, and counts once it decides.)
        hours.close(call, event.after_hours, _routed_line(call, policy), event.at)
    if event.kind == EventKind.CALL_STARTED and event.after_hours is None:
        # The arrival's own verdict decides whether the menu plays: a closed line's caller hears none. (An
        # after-hours mark that overtook an open arrival is the closed line's the menu led to.)
        call_menu.enter(call, policy.lines.get(call.line), event.at)
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
    elif event.kind == EventKind.CUSTOMER_FOUND and event.customer is not None:
        call.customer = event.customer  # the look-up's answer, over what the arrival knew of the caller
    elif event.kind == EventKind.WRAP_UP_ENDED and call.wrap_up_time is None:
        call.wrap_up_time = event.duration
    elif event.kind == EventKind.MENU_CHOSEN:
        return call_menu.answer(call, event, policy) or unknown_line
    elif event.kind == EventKind.ROOM:
        call.room = call_room.note(call.room, event, call.sid)
    elif event.kind in (EventKind.RECORDING_PAUSED, EventKind.RECORDING_RESUMED):
        call_controls.fold(call.recording_toggles, event)
    elif event.kind in callback_flow.KINDS:
        callback_flow.apply(call, event, policy)
    elif event.kind == EventKind.TIMER and event.timer and event.timer not in call.fired:
        call.fired.append(event.timer)
        if event.timer == STALE:
            # Reconciliation says the call has ended. Its waits start now, so callbacks that were only
            # late (a recording still processing) still make the voice comment right.
            call.ended_at = call.ended_at or event.at
    return unknown_line


def _take_line(call: Call, event: CallEvent, policy: Policy) -> tuple[str, str] | None:
    """Settle the call's line when it starts: the number called, or the one the agent calls from.

    A call to a number no line names goes to the first line; the notice says so (the number masked).
    """
    if call.line is not None:
        return None
    lines = policy.lines
    if call.direction == "outbound":
        line = lines.find(event.line) or (lines.for_call_out(call.from_number, None) or lines.first)
        call.line = line.key
        return None
    called = lines.called(call.to_number)
    call.line = (called or lines.first).key
    if called is not None:
        return None
    return ("notice:unknown_line", f"call to {mask(call.to_number)} is on no line: it goes to the first, {call.line}")


def _forget_unheard(call: Call) -> None:
    """Forget a decision to send the caller to voicemail or the apology that a ring of the call shows unheard.

    The bridge decided it when the call arrived, offering it to nobody; agents ringing for it prove the call
    followed other TwiML (a replay of a call recorded before routing, an instance of an earlier version during
    a deploy). The facts win: the call is treated as one routing never placed, as calls were before it.
    """
    placed = call.placed
    if placed is None or placed.kind not in ("voicemail", "unavailable") or call.direction != "inbound":
        return
    if placed.reason in ("menu", hours.CLOSED):
        return  # the caller's own choice at their line's menu, or their line closed: no ring is evidence against it
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
        if event.open_ticket is not None and call.open_ticket is None and event.agents:
            # It rings the agent of the caller's open ticket first: that ticket is what they are shown.
            call.open_ticket, call.open_ticket_agent = event.open_ticket, event.agents[0]
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
        call_menu.fill_forward(call)  # a forwarded call's <Dial> rang the number the menu or the closed line named
    if connected or call.direction == "outbound" or event.status in TERMINAL_CALL_STATUSES:
        call.dial_status = event.dial_status
        return
    call.last_dial_status = event.dial_status or "no-answer"
    for leg in call.legs.values():
        # The legs of a ring that connected nobody never take the call, whatever their late callbacks say.
        leg.stale = leg.stale or leg.sid != call.answered_leg


def _apply_recording(call: Call, event: CallEvent) -> None:
    """File a recording as the conversation's, the room's or the voicemail's."""
    if event.recording_of == "room":
        recorded = call_room.Recorded(sid=event.recording_sid, url=event.recording_url,
                                      duration=event.recording_duration, started_at=event.recording_started_at,
                                      status=event.recording_status)  # fmt: skip
        call.room = call_room.file_recording(call.room, recorded, event.at)
        return
    recording = Recording(
        sid=event.recording_sid,
        url=event.recording_url,
        duration=event.recording_duration,
        started_at=event.recording_started_at,
        status=event.recording_status,
    )
    if event.recording_of == "voicemail":
        is_voicemail = True
    elif event.recording_of == "conversation":
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
