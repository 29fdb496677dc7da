"""Decide the effects of a call in progress: transfers on its ticket, the agent it ends with, late corrections.

Part of the state machine's decisions (bridge/core/call_decide.py), pure: a call's room (bridge/core/call_room.py)
and its recording's pauses (bridge/core/call_controls.py) read into notes, pops and record updates.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bridge.core import call_controls, call_room
from bridge.core.actions import AddNote, DisplayTicket, UpdateCallRecord, call_record_key, ticket_key
from bridge.core.call_fields import _transfer_note
from bridge.core.call_model import Call, Emit, Leg, Policy
from schemas.zendesk import CallRecord

CORRECTION = "correction"  # the record's update named for a late report that changed its final fields
ROOM_FIGURES = ("hold_time", "consultation_time", "talk_time", "completion_status")  # besides agent_id


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
        # Without lines, the one line made from the environment has no name to give: the note says the queue.
        name = (line.name or line.key) if line is not None and policy.lines.configured else None
        body = _transfer_note(moved, name if line is not None else transfer.line)
        emit(AddNote(call.sid, f"transfer:{number}", body, assignee_id=receiver, group_id=group))
        if receiver is not None:
            emit(DisplayTicket(call.sid, receiver))


def last_agent(call: Call, leg: Leg) -> str | None:
    """Return who took the call last: the last agent into its room, else whoever answered it."""
    last = call_room.spans(call.room).last_agent if call.room is not None else None
    return last or leg.to


def decide_corrections(call: Call, ending: dict[str, Any], agent_id: int | None, emit: Emit) -> None:
    """Correct the record when reports that came after its final fields change what those said.

    Twilio sends a conference's reports as separate requests, in any order (Twilio docs: TwiML <Conference>,
    statusCallback), and a pause or resume of the recording may be learnt late too: either may overtake the
    call's end. Each correction carries every field a late report can change, and follows the update before it,
    so the last one stands whatever order they are sent in.
    """
    fields = {name: value for name, value in ending.items() if name in call_controls.FIELDS}
    if call.room is not None:
        fields |= {name: ending.get(name) for name in ROOM_FIGURES} | {"agent_id": agent_id}
    digest = ",".join(f"{name}={fields[name]}" for name in sorted(fields))
    if call.record_said is None:
        call.record_said = digest  # what the record's final fields said, sent in this same step
        return
    if digest == call.record_said:
        return
    record = call_record_key(call.sid)
    number = sum(1 for key in call.emitted if key.startswith(f"{record}:{CORRECTION}:")) + 1
    emit(UpdateCallRecord(call.sid, f"{CORRECTION}:{number}", CallRecord(**fields), after=_last_said(call)))
    call.record_said = digest


def _last_said(call: Call) -> str | None:
    """Return the key of the record's last update of its final fields, which a correction must follow.

    None when the record was made with its final fields (TICKET_ON=end): a correction needs the record anyway.
    An update named after a key that was never queued would not hold a correction back (the outbox waits only on
    a pending dependency), but naming the update that exists keeps the order sure.
    """
    record = call_record_key(call.sid)
    names = (f"{record}:ended", f"{record}:{CORRECTION}:")
    return next((key for key in reversed(call.emitted) if key.startswith(names)), None)
