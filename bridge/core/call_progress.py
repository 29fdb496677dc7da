"""Decide the effects of a call in progress: transfers on its ticket, the agent it ends with, late corrections.

Part of the state machine's decisions (bridge/core/call_decide.py), pure: a call's room (bridge/core/call_room.py)
and its recording's pauses (bridge/core/call_controls.py) read into notes, pops and record updates.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from bridge.core import call_controls, call_room
from bridge.core.actions import AddNote, DisplayTicket, UpdateCallRecord, call_record_key, ticket_key
from bridge.core.call_fields import _transfer_note
from bridge.core.call_model import Call, Emit, Leg, Policy
from schemas.zendesk import CallRecord


def decide_transfers(call: Call, answered: Leg | None, policy: Policy, emit: Emit) -> None:
    """Note each transfer on the call's ticket, give the ticket to the agent who took the call, and pop it to them."""
    if call.room is None or answered is None or ticket_key(call.sid) not in call.emitted:
        return
    for number, transfer in enumerate(call_room.spans(call.room).transfers, start=1):
        by = transfer.by or answered.to
        receiver = policy.agents.get(transfer.to)
        moved = replace(transfer, by=by)
        line = policy.lines.find(transfer.line) if transfer.line is not None else None
        # A transfer to a line gives the ticket to the line's group (Zendesk docs: Tickets, group_id) and the agent.
        group = line.group_id if line is not None else None
        body = _transfer_note(moved, line.name if line is not None else transfer.line)
        emit(AddNote(call.sid, f"transfer:{number}", body, assignee_id=receiver, group_id=group))
        if receiver is not None:
            emit(DisplayTicket(call.sid, receiver))


def decide_room_corrections(call: Call, ending: dict[str, Any], agent_id: int | None, emit: Emit) -> None:
    """Correct the record when the room's reports that came after its end change what it says.

    Twilio sends a conference's reports as separate requests, in any order (Twilio docs: TwiML <Conference>,
    statusCallback): one may overtake the call's end. Each correction follows the update before it.
    """
    names = ("hold_time", "consultation_time", "talk_time", "completion_status")
    fields = {name: ending.get(name) for name in names} | {"agent_id": agent_id}
    digest = ",".join(f"{name}={fields[name]}" for name in sorted(fields))
    if call.room_sent is None:
        call.room_sent = digest  # what the record's own end said
        return
    if digest == call.room_sent:
        return
    before = [key for key in call.emitted if key.startswith(f"{call_record_key(call.sid)}:room:")]
    after = before[-1] if before else f"{call_record_key(call.sid)}:ended"
    number = len(before) + 1
    emit(UpdateCallRecord(call.sid, f"room:{number}", CallRecord(**fields), after=after))
    call.room_sent = digest


def last_agent(call: Call, leg: Leg) -> str | None:
    """Return who took the call last: the last agent into its room, else whoever answered it."""
    last = call_room.spans(call.room).last_agent if call.room is not None else None
    return last or leg.to


def decide_late_controls(call: Call, ended: datetime | None, emit: Emit) -> None:
    """Correct the record's recording control fields when a pause or resume was told after its final fields.

    Each count has its own update (the older ones still pending are cancelled), so the last word stands.
    """
    count = len(call.recording_toggles)
    sent = call.recording_toggles_sent
    if sent is not None and count != sent:
        fields = call_controls.record_fields(call.recording_toggles, ended)
        emit(UpdateCallRecord(call.sid, f"{call_controls.CONTROL_UPDATE}:{count}", CallRecord(**fields)))
    call.recording_toggles_sent = count
