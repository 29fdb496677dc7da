"""Decide, from a call's whole state, the effects now due: tickets, voice comments, records (no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bridge.core import call_controls, call_menu, call_progress, call_room, callback_flow
from bridge.core.actions import (
    Action,
    AddNote,
    AddVoiceComment,
    CreateCallRecord,
    CreateTicket,
    DisplayTicket,
    DisplayUser,
    FindCaller,
    Timer,
    UpdateCallRecord,
    call_record_key,
    ticket_key,
)
from bridge.core.call_fields import (
    _answer_note,
    _awaits_duration,
    _closed_note,
    _comment,
    _conversation,
    _customer,
    _ending,
    _iso,
    _missed_note,
    _opening,
    _parts,
    _parts_note,
    _placement,
    _queue_max_wait,
    _recorded,
    _recording_settled,
    _show,
    _unrouted_note,
    _voice_comment,
)
from bridge.core.call_model import (
    ANSWER_FIELDS,
    CALL_FIELDS,
    DETAIL_FIELDS,
    NOT_ANSWERED,
    OUTSIDE_ABANDONED,
    OUTSIDE_COMPLETED,
    QUEUE_WAIT,
    RECORDING_WAIT,
    STALE,
    TRANSCRIBABLE_SECONDS,
    TRANSCRIPTION_WAIT,
    WRAP_UP,
    Call,
    Emit,
    Leg,
    Notice,
    Policy,
    Recording,
)
from bridge.core.events import LegStatus
from bridge.core.phones import mask, to_e164
from schemas.zendesk import (
    ABANDONED_IN_IVR,
    ABANDONED_IN_QUEUE,
    ABANDONED_IN_VOICEMAIL,
    ABANDONED_ON_HOLD,
    COMPLETED,
    VIA_INBOUND,
    VIA_OUTBOUND,
    VIA_VOICEMAIL,
    CallComment,
    CallRecord,
    Comment,
    VoiceComment,
    VoiceTicket,
)

AFTER_HOURS = " after hours"  # in a ticket's subject: `Voicemail after hours from …`


def _decide(call: Call, now: datetime, policy: Policy, notices: list[tuple[str, str]]) -> list[Action]:
    """Return every effect that the call's state makes due and that was not emitted before."""
    out: list[Action] = []
    had_record = call_record_key(call.sid) in call.emitted

    def emit(action: Action) -> None:
        if action.key not in call.emitted:
            call.emitted.append(action.key)
            out.append(_with_tags(call, action))

    def notice(key: str, text: str) -> None:
        if key not in call.emitted:
            call.emitted.append(key)
            notices.append((key, text))

    if call.part_of is not None:
        # An agent's way into another call's room: that call has the ticket and the record; this one has nothing.
        call.finished = call.finished or call.over
        return out
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
        emit(Timer(call.sid, QUEUE_WAIT, call.arrival(now) + timedelta(seconds=_queue_max_wait(call, policy))))

    if customer and answered is None and not call.over:
        for leg in sorted(call.legs.values(), key=lambda leg: leg.sid):
            agent = policy.agents.get(leg.to or "")
            if inbound and leg.stale:
                continue  # a ring that ended long ago, reported late: nobody's phone rings for it now
            if inbound and leg.status == LegStatus.RINGING and agent is not None and leg.to == call.open_ticket_agent:
                # Rung first as the agent of the caller's open ticket: they see that ticket, not just the caller.
                emit(DisplayTicket(call.sid, agent, call.open_ticket))
            elif inbound and leg.status == LegStatus.RINGING and agent is not None:
                emit(DisplayUser(call.sid, agent, customer))
            elif inbound and leg.status == LegStatus.RINGING:
                notice(f"notice:unmapped_leg:{leg.sid}", f"{mask(leg.to)} is ringing but not in AGENTS: no pop")
            elif not inbound and calling_agent is not None and leg.status.rank <= LegStatus.RINGING.rank:
                emit(DisplayUser(call.sid, calling_agent, customer))

    if call_menu.pending(call, policy):
        # Where the menu led decides whose team the ticket and record are. Twilio asks the menu's action before
        # it rings anyone, but a replay may deliver it late: wait for it, boundedly once the call is over.
        if call.ended_at is not None:
            emit(Timer(call.sid, RECORDING_WAIT, now + timedelta(seconds=policy.recording_wait)))
        return out
    if inbound and call.asked is not None and answered is None:
        callback_flow.decide(call, policy, emit, customer)
    elif inbound and call.after_hours == "message":
        _decide_closed_message(call, now, policy, emit, notice, customer)
    elif answered is not None:
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
                brand = _placement(call, policy)["brand_id"]
                emit(CreateCallRecord(call.sid, record, shown, customer, call.ticket_id, brand_id=brand))
            call.finished = True
    else:
        _decide_unanswered(call, now, policy, emit, notice, customer)
    _decide_menu(call, policy, emit)
    call_progress.decide_transfers(call, answered, policy, emit)
    callback_flow.voicemail_choice(call, policy, emit, had_record=had_record)
    return out


def _with_tags(call: Call, action: Action) -> Action:
    """Tag a new ticket `after_hours` when its line was closed, and with the caller's way through the menu.

    The menu's tags go on when the menu's part is known by then (its note adds them later otherwise).
    """
    tags = (["after_hours"] if call.after_hours is not None else []) + call_menu.tags(call)
    if not tags or not isinstance(action, CreateTicket):
        return action
    ticket = action.ticket.model_copy(update={"tags": [*(action.ticket.tags or []), *tags]})
    return replace(action, ticket=ticket)


def _decide_menu(call: Call, policy: Policy, emit: Emit) -> None:
    """Note the caller's way through the menu on their ticket, with its tags (added to any the ticket has)."""
    body = call_menu.note(call, policy)
    if body is not None and ticket_key(call.sid) in call.emitted:
        emit(AddNote(call.sid, "menu", body, tuple(call_menu.tags(call))))


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
    agent_id = policy.agents.get(call_progress.last_agent(call, leg) or "") if inbound else calling_agent
    if agent_id is None and not call_menu.forwarded(call):
        who = leg.to if inbound else call.from_number
        notice("notice:unmapped", f"call answered by {mask(who)}, who is not in AGENTS: ticket unassigned, no pop")
    via = VIA_INBOUND if inbound else VIA_OUTBOUND
    customer_shown = _show(call.from_number if inbound else _customer(call, leg))
    subject = f"Call{_after(call)} from {customer_shown}" if inbound else f"Call to {customer_shown}"
    base = VoiceTicket(via_id=via, subject=subject, external_id=call.sid, assignee_id=agent_id)
    # A call out placed from a ticket goes on that ticket; the outbox falls back to a new via 46 one.
    existing = _logged_on_open_ticket(call, policy) if inbound else call.ticket_id
    calls = policy.api == "calls"
    note = Comment(body=_answer_note(call, leg))
    opening = _opening(call, leg, agent_id, policy)
    title = subject if inbound else f"Call to {_show(_customer(call, leg))}"
    where = _placement(call, policy)
    shown = _comment(title, agent_id, CALL_FIELDS)
    if policy.ticket_on == "answer":
        emit(CreateTicket(call.sid, base.model_copy(update={"comment": note}), customer, agent_id, existing, **where))
        if calls:
            # The record goes on the ticket at once: its voice comment shows the fields as later updates fill them.
            emit(CreateCallRecord(call.sid, CallRecord(**opening), shown, customer, **where))
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
    seen = call_room.spans(call.room) if call.room is not None else None
    # A customer transferred to a line who hangs up before its agents take them gave up in its queue.
    status = ABANDONED_IN_QUEUE if seen is not None and seen.hung_up_in_line else COMPLETED
    status = ABANDONED_ON_HOLD if status == COMPLETED and seen is not None and seen.hung_up_on_hold else status
    ending = _ending(call, leg, status, conversation)
    ended = call.ended_at or leg.ended_at or call.dial_at
    ending |= call_controls.record_fields(call.recording_toggles, ended)
    recorded = _recorded(conversation)
    parts = _parts(call)
    if calls and policy.ticket_on == "answer":
        # The agent again: an answer Twilio reported only after the call was judged missed finds a record made
        # without one (the missed-call ticket gets the voice comment in tickets mode the same way).
        emit(UpdateCallRecord(call.sid, "ended", CallRecord(**ending, **recorded, agent_id=agent_id), parts=parts))
    elif calls:
        # The ticket and its record together, the record's voice comment carrying the recording.
        emit(CreateTicket(call.sid, base.model_copy(update={"comment": note}), customer, agent_id, existing, **where))
        record = CallRecord(**{**opening, **ending, **recorded})
        emit(CreateCallRecord(call.sid, record, shown, customer, parts=parts, **where))
    elif policy.ticket_on == "answer":
        emit(AddVoiceComment(call.sid, _voice_comment(call, leg, agent_id, policy), parts))
    else:
        ticket = base.model_copy(update={"voice_comment": _voice_comment(call, leg, agent_id, policy)})
        emit(CreateTicket(call.sid, ticket, customer, agent_id, existing_ticket_id=existing, parts=parts, **where))
    if parts and not policy.joined_recordings:
        # Only one link plays: the recording's other parts are named on the ticket, so nothing said is lost.
        emit(AddNote(call.sid, "recording_parts", _parts_note(parts)))
    if calls:
        call_progress.decide_corrections(call, ending, agent_id, emit)
    call.finished = True
    if calls and policy.wrap_up > 0 and agent_id is not None:
        _decide_wrap_up(call, leg, now, policy, emit)


def _logged_on_open_ticket(call: Call, policy: Policy) -> int | None:
    """Return the caller's open ticket an answered call goes on, as a call out from a ticket does (its line says so).

    It is the ticket whose agent an offer rang first (bridge.core.preference): the one shown to that agent.
    """
    return call.open_ticket if policy.lines.get(call.route_line).log_on_open_ticket else None


def _decide_wrap_up(call: Call, leg: Leg, now: datetime, policy: Policy, emit: Emit) -> None:
    """Tell the record how long its agent wrapped up after the call (Zendesk's `wrap_up_time`), once over.

    The agent ends it early in the softphone (an event says how long it lasted), or it runs WRAP_UP_SECONDS.
    """
    seconds = call.wrap_up_time
    if seconds is None and WRAP_UP in call.fired:
        seconds = round(policy.wrap_up)
    if seconds is None:
        emit(Timer(call.sid, WRAP_UP, (call.ended_at or leg.ended_at or now) + timedelta(seconds=policy.wrap_up)))
        return
    emit(UpdateCallRecord(call.sid, "wrap_up", CallRecord(wrap_up_time=seconds)))


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
        subject = f"Missed call{_after(call)} from {_show(call.from_number)}"
        if policy.missed_call_tickets:
            ticket = VoiceTicket(
                via_id=VIA_INBOUND,
                subject=subject,
                external_id=call.sid,
                comment=Comment(body=_missed_note(call)),
                tags=["missed_call"],
            )
            emit(CreateTicket(call.sid, ticket, requester_phone=customer, **_placement(call, policy)))
        else:
            notice("notice:no_ticket", f"missed call from {mask(call.from_number)}: MISSED_CALL_TICKETS is off")
        if policy.api == "calls":
            # A <Record> recording of any status means the caller reached the greeting, whatever came first.
            reached = call.voicemail_offered or call.voicemail is not None
            status = ABANDONED_IN_VOICEMAIL if reached else ABANDONED_IN_QUEUE
            if call.placed is not None and call.placed.kind == "menu":
                status = ABANDONED_IN_IVR  # hung up before the menu led them anywhere
            comment = _comment(subject, None, CALL_FIELDS) if policy.missed_call_tickets else None
            _record_outcome(call, policy, _ending(call, None, status), comment, customer, emit)
        call.finished = True
    elif call.ended_at is not None:
        # Over, but no answer, voicemail or verdict yet: give late callbacks a bounded time.
        emit(Timer(call.sid, RECORDING_WAIT, now + timedelta(seconds=policy.recording_wait)))


def _decide_closed_message(
    call: Call, now: datetime, policy: Policy, emit: Emit, notice: Notice, customer: str | None
) -> None:
    """Make the ticket and record of a call that came after hours and heard the closed message.

    Nobody the bridge offers calls to was rung, and the call is over once it ends. Its ticket is a missed
    call's, so MISSED_CALL_TICKETS decides it. (A closed line's voicemail and forward are decided as any
    caller's voicemail, or forwarded call, is.)
    """
    if not call.over:
        return
    if _awaits_duration(call, policy):
        # The record's end waits for Twilio's own CallDuration (the parent's final status), boundedly.
        emit(Timer(call.sid, RECORDING_WAIT, now + timedelta(seconds=policy.recording_wait)))
        return
    subject = f"Call{AFTER_HOURS} from {_show(call.from_number)}"
    if policy.missed_call_tickets:
        note = Comment(body=_closed_note(call))
        ticket = VoiceTicket(via_id=VIA_INBOUND, subject=subject, external_id=call.sid, comment=note)
        emit(CreateTicket(call.sid, ticket, requester_phone=customer, **_placement(call, policy)))
    else:
        notice("notice:no_ticket", f"call after hours from {mask(call.from_number)}: MISSED_CALL_TICKETS is off")
    if policy.api == "calls":
        # The message is what the line does after hours: the call went as configured.
        comment = _comment(subject, None, CALL_FIELDS) if policy.missed_call_tickets else None
        _record_outcome(call, policy, _ending(call, None, COMPLETED), comment, customer, emit)
    call.finished = True


def _after(call: Call) -> str:
    """Return what a ticket's subject says of a call that came after hours (nothing for one that did not)."""
    return AFTER_HOURS if call.after_hours is not None else ""


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
        emit(CreateTicket(call.sid, ticket, requester_phone=customer, **_placement(call, policy)))
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
        recording_url=message.url or None,
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
    subject = f"Voicemail{_after(call)} from {_show(call.from_number)}"
    ticket = VoiceTicket(via_id=VIA_VOICEMAIL, subject=subject, external_id=call.sid, voice_comment=comment)
    emit(CreateTicket(call.sid, ticket, requester_phone=customer, **_placement(call, policy)))
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
        emit(CreateCallRecord(call.sid, record, comment, customer, linked=linked, **_placement(call, policy)))
        return
    # The leg that picked up (a declined whisper, a hang-up before the bridge) never talked with the caller:
    # the record stops naming it (DialBridged=false, Twilio docs: TwiML <Dial>).
    emit(UpdateCallRecord(call.sid, "ended", CallRecord(**final), cleared=ANSWER_FIELDS))
