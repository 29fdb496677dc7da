"""Late reports after a record's final fields, purely: one chain of whole corrections, the last one standing."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from bridge.core.actions import Action, CreateCallRecord, UpdateCallRecord
from bridge.core.call_model import Call, Policy
from bridge.core.calls import step
from bridge.core.events import CallEvent, EventKind
from tests.test_calls import POLICY, SID, T0, leg, parent

CALLS = replace(POLICY, api="calls", record_calls=False)  # no recording to wait for: the end goes at once
AT_END = replace(CALLS, ticket_on="end")
ROOM_LEG = "CA" + "3" * 32


def room(what: str, at: float, *, on: str | None = SID, label: str | None = None, seq: int | None = None,
         reason: str | None = None) -> CallEvent:  # fmt: skip
    """Return a report of the call's room `at` seconds in."""
    return CallEvent(kind=EventKind.ROOM, call_sid=SID, at=T0 + timedelta(seconds=at), status=what, leg_sid=on,
                     leg_to=label, sequence=seq, reason=reason, room="CF" + "9" * 32)  # fmt: skip


def paused(at: float) -> CallEvent:
    """Return the agent's pause of the recording, confirmed `at` seconds in."""
    return CallEvent(kind=EventKind.RECORDING_PAUSED, call_sid=SID, at=T0 + timedelta(seconds=at))


# Alice answers at 8 s and the call moves into its room at 20 s; she hangs up at 90 s, the call ends at 91 s.
TO_THE_END = [
    parent(EventKind.CALL_STARTED),
    leg("initiated", 0, 1),
    leg("ringing", 1, 1),
    leg("answered", 2, 8),
    room("moving", 20),
    room("entered", 20.2),
    room("join", 20.4, seq=1, label="customer"),
    room("join", 21, on=ROOM_LEG, label="agent:alice", seq=2),
    room("start", 21, on=None, seq=3),
    leg("completed", 3, 20, duration=12),
    room("leave", 90, on=ROOM_LEG, label="agent:alice", seq=6, reason="participant_hung_up"),
    room("end", 90, on=None, seq=7),
    room("leave", 90, seq=8, label="customer", reason="moderator_ended_conference"),
    room("left", 90.5),
    parent(EventKind.CALL_STATUS, 91, status="completed", sequence=0, duration=91),
]
# Told only after the record's final fields went: a pause of the recording, and the room's hold from 60 s to 70 s.
LATE = [paused(30), room("hold", 60, seq=4, label="customer"), room("unhold", 70, seq=5, label="customer")]


def actions_of(events: list[CallEvent], policy: Policy, call: Call | None = None) -> tuple[Call, list[Action]]:
    """Fold the events in order; return the call and every action it emitted."""
    out: list[Action] = []
    for number, event in enumerate(events):
        outcome = step(call, event, T0 + timedelta(seconds=1000 + number), policy)
        call = outcome.call
        out.extend(outcome.actions)
        assert not any(":call_record" in key for key in outcome.cancel)  # a correction is never dropped
    assert call is not None
    return call, out


def delivered(actions: list[Action]) -> dict[str, Any]:
    """Return the record as Zendesk holds it once the outbox sent every record action, the newest ready first.

    The outbox sends an action once none of its `needs` is pending (bridge.store.statements.waiting_on): taking
    the newest ready one each time is the worst order it could pick.
    """
    pending = [a for a in actions if isinstance(a, CreateCallRecord | UpdateCallRecord)]
    keys, record, sent = {a.key for a in pending}, {}, set[str]()
    while pending:
        ready = [a for a in pending if all(need in sent or need not in keys for need in a.needs)]
        action = ready[-1]
        record |= action.record.wire() if isinstance(action, CreateCallRecord) else action.wire()
        sent.add(action.key)
        pending.remove(action)
    return record


@pytest.mark.parametrize("policy", [CALLS, AT_END], ids=["ticket_on_answer", "ticket_on_end"])
def test_a_late_pause_and_a_late_hold_both_end_up_in_the_record_in_any_order(policy: Policy) -> None:
    """Whatever order the late reports come in, the record ends as if they had all come before its end."""
    _, on_time = actions_of(TO_THE_END[:-1] + LATE + TO_THE_END[-1:], policy)
    expected = delivered(on_time)
    # On hold 1 s alone after the move and 10 s held; paused from 30 s to the end at 91 s.
    assert (expected["hold_time"], expected["recording_control_interactions"], expected["not_recording_time"]) == (
        11,
        1,
        61,
    )
    ended, before = actions_of(TO_THE_END, policy)
    assert ended.finished
    assert "recording_control_interactions" not in delivered(before)
    for order in itertools.permutations(LATE):
        call, late = actions_of([*order, *order[:1]], policy, ended)
        corrections = [a for a in late if isinstance(a, UpdateCallRecord)]
        assert [a.name for a in corrections] == [f"correction:{n}" for n in range(1, len(corrections) + 1)]
        first = f"{SID}:call_record:ended" if policy.ticket_on == "answer" else None
        assert [a.after for a in corrections] == [first, *(a.key for a in corrections[:-1])]
        assert delivered(before + late) == expected
        assert call.record_said is not None
