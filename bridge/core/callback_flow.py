"""Callbacks in the call's state machine: the facts each callback event adds, what it asks of routing, its effects.

Every callback event is the original call's: the ticket of the call that asked is where the callback's turns,
notes and conversation go (docs/callbacks.md). Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bridge.core.actions import (
    AddNote,
    AddVoiceComment,
    CreateCallRecord,
    CreateTicket,
    DisplayTicket,
    UpdateCallRecord,
    call_record_key,
    ticket_key,
)
from bridge.core.call_fields import _comment, _human, _iso, _line, _opening, _placement, _show
from bridge.core.call_model import CALL_FIELDS, UNKNOWN_LINE, Call, Emit, Engagement, Policy, RouteRequest
from bridge.core.callback_model import REFUSALS, Callback, Turn, TurnRecording
from bridge.core.events import CallEvent, EventKind, LegStatus
from schemas.zendesk import (
    ABANDONED_IN_QUEUE,
    COMPLETED,
    VIA_INBOUND,
    CallComment,
    CallRecord,
    Comment,
    VoiceComment,
    VoiceTicket,
)

KINDS = frozenset(
    {
        EventKind.VOICEMAIL_CHOSEN,
        EventKind.CALLBACK_REQUESTED,
        EventKind.CALLBACK_LEG,
        EventKind.CALLBACK_ENDED,
        EventKind.CALLBACK_CANCELLED,
    }
)
TAG = "callback_requested"
SOURCE = "queue"  # Zendesk docs: TPE API, Calls, callback_source: "queue" or "web widget"
_DIAL_ENDS = {
    "busy": "was busy",
    "no-answer": "did not answer",
    "failed": "could not be reached",
    "completed": "answered but never pressed 1 (a voicemail or a machine)",
}


def apply(call: Call, event: CallEvent, policy: Policy) -> None:
    """Fold a callback event into the call, whatever order the events come in.

    A turn reported before the request it belongs to (a replay may deliver them in any order; the provider never
    does) is kept in an unfiled request, which the request fills in when it comes.
    """
    if event.kind == EventKind.VOICEMAIL_CHOSEN:
        call.voicemail_chosen = True
        return
    if event.kind == EventKind.CALLBACK_REQUESTED:
        _request(call, event)
    else:
        callback = call.callback or Callback(requested_at=event.at, filed=False)
        call.callback = callback
        if event.kind == EventKind.CALLBACK_CANCELLED:
            _close(callback, "cancelled", event.at)
            return
        turn = callback.turns.setdefault(event.sequence or 0, Turn(turn=event.sequence or 0))
        if event.kind == EventKind.CALLBACK_LEG and event.leg_sid and turn.agent_sid is None and turn.agent:
            # A call was placed for the turn after all (a create whose answer was lost had landed, or a replay
            # brings the recorded turn): its own reports are the truth, not the failure told before them.
            turn = callback.turns[turn.turn] = turn.model_copy(update=_UNPLACED)
        if event.kind == EventKind.CALLBACK_LEG:
            _agent_leg(turn, event)
        elif turn.customer_status is None:  # CALLBACK_ENDED: the first report of the dial's end stands
            turn.customer_status = event.dial_status or "failed"
            turn.bridged = event.dial_bridged
            turn.talk = event.duration
            turn.ended_at = turn.ended_at or event.at
            if event.recording_url:
                turn.recording = TurnRecording(sid=event.recording_sid, url=event.recording_url,
                                               duration=event.recording_duration)  # fmt: skip
    if call.callback is not None:
        _settle(call.callback, event.at, policy)


_UNPLACED = {"agent": None, "agent_status": LegStatus.INITIATED, "started_at": None, "answered_at": None,
             "not_placed": None}  # fmt: skip


def _request(call: Call, event: CallEvent) -> None:
    """File the caller's request: once, while (or once) they waited in the queue and nobody answered them."""
    callback = call.callback
    if callback is not None and callback.filed:
        return
    # The number is asked for while the caller waits in the queue; a replay may bring it before the call's
    # arrival or after its hang-up, so anything short of an agent having answered them files it.
    if not event.callback_number or call.answered_leg is not None:
        return
    waited = max(0.0, (event.at - (call.first_seen or event.at)).total_seconds())
    filed = {"number": event.callback_number, "keyed": event.callback_number != call.from_number,
             "requested_at": event.at, "waited": waited, "position": event.position, "filed": True}  # fmt: skip
    call.callback = callback.model_copy(update=filed) if callback is not None else Callback(**filed)
    if call.queue_since is not None:
        call.queue_seconds = call.queue_time(max(event.at, call.queue_since))
        call.queue_since = None


def _agent_leg(turn: Turn, event: CallEvent) -> None:
    """Record the agent's call's progress, a late or repeated status never undoing a later one."""
    if event.leg_sid is None and event.status == "failed":
        turn.not_placed = turn.not_placed or event.reason  # the dialer's word: why Twilio placed no call
    turn.agent = turn.agent or event.leg_to
    turn.agent_sid = turn.agent_sid or event.leg_sid
    turn.started_at = turn.started_at or event.at
    known = {status.value: status for status in LegStatus}
    status = known.get(event.status or "", LegStatus.FAILED)
    if turn.agent_status.terminal or status.rank < turn.agent_status.rank:
        return
    turn.agent_status = status
    if status in (LegStatus.ANSWERED, LegStatus.COMPLETED) and turn.answered_at is None:
        turn.answered_at = event.at
    if status.terminal:
        turn.ended_at = turn.ended_at or event.at


def _settle(callback: Callback, at: datetime, policy: Policy) -> None:
    """Close the request once the customer talked or ran out of attempts; else say when the next turn may come."""
    missed = [turn for turn in callback.ordered() if turn.outcome == "customer_missed"]
    if callback.answered() is not None:
        _close(callback, "answered", at)
    elif len(missed) >= policy.callback_attempts:
        _close(callback, "exhausted", at)
    elif callback.refusals() >= REFUSALS:
        _close(callback, "refused", at)
    elif missed:
        callback.retry_at = (missed[-1].ended_at or at) + timedelta(seconds=policy.callback_retry)


def _close(callback: Callback, why: str, at: datetime) -> None:
    """Close the request once (the first reason stands)."""
    if callback.closed is None:
        callback.closed = why  # type: ignore[assignment]
        callback.closed_at = at


def route_request(call: Call, event: CallEvent) -> RouteRequest | None:
    """Say what a callback event asks of routing."""
    if event.kind == EventKind.VOICEMAIL_CHOSEN:
        return "voicemail" if call.waiting else None
    if call.callback is None or not call.callback.filed:
        return None
    if event.kind == EventKind.CALLBACK_REQUESTED:
        # Only the request this event filed: asking again (another key, a retried request) changes nothing.
        filed = call.callback.requested_at == event.at and call.callback.number == event.callback_number
        return "callback" if filed and call.callback.closed is None else None
    if event.kind == EventKind.CALLBACK_LEG:
        turn = call.callback.turns.get(event.sequence or 0)
        return "callback_next" if turn is not None and turn.outcome is not None else None
    return "callback_next"


def engagements(call: Call) -> dict[str, Engagement]:
    """Return what each agent rung for a callback turn is to the call now (the latest turn of each counts)."""
    out: dict[str, Engagement] = {}
    if call.callback is None:
        return out
    for turn in call.callback.ordered():
        if turn.agent is None:
            continue
        status = turn.agent_status
        if turn.answered_at is not None:
            out[turn.agent] = "talked" if status.terminal or turn.customer_status is not None else "talking"
        elif status == LegStatus.NO_ANSWER:
            out[turn.agent] = "missed"
        else:
            out[turn.agent] = "released" if status.terminal else "ringing"
    return out


def decide(call: Call, policy: Policy, emit: Emit, customer: str | None) -> None:
    """Emit the request's ticket (tagged, popped to each agent its turns ring), its notes and its conversation."""
    callback = call.asked
    assert callback is not None
    subject = f"Callback requested by {_show(call.from_number)}"
    marker = f"{call.sid}:callback_filed"  # the first decision since the request was filed
    if marker not in call.emitted:
        call.emitted.append(marker)
        if ticket_key(call.sid) in call.emitted:
            # A replay delivered the request after the call had become a missed call: its ticket says so now.
            emit(AddNote(call.sid, "callback", request_note(call, callback), (TAG,)))
    ticket = VoiceTicket(via_id=VIA_INBOUND, subject=subject, external_id=call.sid,
                         comment=Comment(body=request_note(call, callback)), tags=[TAG])  # fmt: skip
    emit(CreateTicket(call.sid, ticket, requester_phone=customer, **_placement(call, policy)))
    said = {"callback": True, "callback_source": SOURCE, "callback_number": callback.number}
    if policy.api == "calls" and call_record_key(call.sid) in call.emitted:
        emit(UpdateCallRecord(call.sid, "callback", CallRecord(**said)))  # (no-op when the create carried them)
    elif policy.api == "calls" and call.ended_at is not None:
        fields = {**_opening(call, None, None, policy), "completion_status": ABANDONED_IN_QUEUE}
        fields |= {"call_ended_at": _iso(call.ended_at), "wait_time": round(callback.waited)}
        fields |= said
        if call.queued_at is not None:
            fields["queue_time"] = round(call.queue_seconds)
        comment = _comment(subject, None, CALL_FIELDS)
        emit(CreateCallRecord(call.sid, CallRecord(**fields), comment, customer, **_placement(call, policy)))
    for turn in callback.ordered():
        agent_id = policy.agents.get(turn.agent or "")
        if agent_id is not None and turn.answered_at is None and turn.outcome is None:
            emit(DisplayTicket(call.sid, agent_id))  # the ticket pops to the agent as the callback rings them
        if turn.agent is None:
            # Who took it comes with the agent's answer, before the customer is dialled; only a replay brings the
            # dial's end first: the turn is told once the rest of it is known.
            continue
        if turn.outcome == "customer_missed":
            emit(AddNote(call.sid, f"callback_{turn.turn}", _missed_note(callback, turn, policy)))
        if turn.outcome != "answered":
            continue
        # The ticket goes to the agent who reached the customer (Zendesk docs: Tickets, assignee_id), with a note
        # saying so. A turn's outcome is fixed by the first report of its dial's end, so it is never both missed
        # and answered; the note has a name of its own all the same, so that neither note's key can hide the other.
        taken = _attempt(callback, turn, policy) + f"{callback.number} answered."
        emit(AddNote(call.sid, f"callback_taken_{turn.turn}", taken, assignee_id=agent_id))
        if policy.api == "calls":
            # The callback's call has a record of its own, shown on the ticket of the call that asked.
            record = _callback_record(call, callback, turn, agent_id, policy)
            comment = CallComment(title=f"Callback to {callback.number}", call_fields=list(CALL_FIELDS),
                                  author_id=agent_id)  # fmt: skip
            placement = _placement(call, policy)
            emit(CreateCallRecord(turn.agent_sid or f"{call.sid}-{turn.turn}", record, comment, customer,
                                  shown_on=call.sid, **placement))  # fmt: skip
        else:
            emit(AddVoiceComment(call.sid, _conversation(call, callback, turn, agent_id, policy)))
    if callback.closed in ("exhausted", "cancelled", "refused"):
        emit(AddNote(call.sid, "callback_closed", _closed_note(callback), (f"callback_{callback.closed}",)))
    call.finished = True


def request_note(call: Call, callback: Callback) -> str:
    """Say who asked to be called back, at which number, after how long in line."""
    number = f"at {callback.number}" + (" (a number they keyed)" if callback.keyed else "")
    place = f", number {callback.position} in line" if callback.position else ""
    return (
        f"Call from {_show(call.from_number)} to {call.to_number} at {_human(call.first_seen)}. After waiting "
        f"{round(callback.waited)} s{place}, the caller asked to be called back {number}, keeping their place."
    )


def _attempt(callback: Callback, turn: Turn, policy: Policy) -> str:
    """Say which attempt a turn was, when, and by whom."""
    said = f"Callback attempt {callback.attempts_before(turn) + 1} of {policy.callback_attempts} at "
    return said + f"{_human(turn.answered_at or turn.started_at)} by {turn.agent}: "


def _missed_note(callback: Callback, turn: Turn, policy: Policy) -> str:
    """Say how a turn missed the customer, and what comes next."""
    how = _DIAL_ENDS.get(turn.customer_status or "", "was not reached")
    said = _attempt(callback, turn, policy) + f"{callback.number} {how}."
    if callback.closed is None and callback.retry_at is not None:
        said += f" Next attempt after {_human(callback.retry_at)}."
    return said


def _closed_note(callback: Callback) -> str:
    """Say why the request was closed without a conversation."""
    if callback.closed == "cancelled":
        return f"The callback request for {callback.number} was cancelled at {_human(callback.closed_at)}."
    if callback.closed == "refused":
        return (
            f"Callback request closed at {_human(callback.closed_at)}: Twilio refused to place the bridge's calls "
            f"{REFUSALS} times in a row, so nobody was rung. Call {callback.number} back from your phone, and ask "
            "your admin to run `bridge doctor`."
        )
    return (
        f"Callback request closed at {_human(callback.closed_at)}: {callback.number} was not reached in "
        f"{callback.attempts()} attempts."
    )


def _started(callback: Callback, turn: Turn) -> datetime:
    """Return when a turn began: its call to the agent (known whenever its agent is)."""
    return turn.started_at or turn.answered_at or callback.requested_at


def _callback_record(call: Call, callback: Callback, turn: Turn, agent_id: int | None, policy: Policy) -> CallRecord:
    """Build the record of the callback's call: from the line's number to the customer, answered by the agent."""
    line = _line(call, policy)
    recording = turn.recording
    started = _started(callback, turn)
    span = int((turn.ended_at - started).total_seconds()) if turn.ended_at and started else None
    return CallRecord(
        from_line=line.number or call.to_number or UNKNOWN_LINE,
        from_line_nickname=line.name,
        to_line=callback.number,
        direction="outbound",
        external_id=turn.agent_sid,
        call_started_at=_iso(started) or None,
        call_ended_at=_iso(turn.ended_at) or None,
        duration=span,
        agent_id=agent_id,
        time_to_answer=int((turn.answered_at - started).total_seconds()) if turn.answered_at and started else None,
        talk_time=turn.talk,
        completion_status=COMPLETED,
        recording_url=recording.url if recording is not None else None,
        recording_time=recording.duration if recording is not None else None,
        callback=True,
        callback_source=SOURCE,
        callback_number=callback.number,
    )


def _conversation(call: Call, callback: Callback, turn: Turn, agent_id: int | None, policy: Policy) -> VoiceComment:
    """Build the voice comment of the callback's conversation, on the original call's ticket."""
    recording = turn.recording
    return VoiceComment(
        from_=_line(call, policy).number or call.to_number or "",
        to=callback.number,
        started_at=_iso(turn.answered_at or _started(callback, turn)),
        call_duration=turn.talk or (recording.duration if recording is not None and recording.duration else 0),
        recording_url=recording.url if recording is not None else None,
        answered_by_id=agent_id,
    )


def voicemail_choice(call: Call, policy: Policy, emit: Emit, *, had_record: bool) -> None:
    """Tell a record made before the caller's choice of voicemail was known (only a replay is that late) of it."""
    if not call.voicemail_chosen or policy.api != "calls" or call_record_key(call.sid) not in call.emitted:
        return
    marker = f"{call.sid}:voicemail_chosen"
    if marker in call.emitted:
        return
    call.emitted.append(marker)
    if had_record:  # made in an earlier step, without it: a record made in this one said it already
        emit(UpdateCallRecord(call.sid, "voicemail_chosen", CallRecord(customer_requested_voicemail=True)))
