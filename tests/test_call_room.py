"""The call's room, purely: reports folded in any order, holds, who talked last, how it ended."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from bridge.core import call_room
from bridge.core.call_model import Call, Leg, Policy
from bridge.core.calls import engagements, step
from bridge.core.events import CallEvent, EventKind, LegStatus

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
SID = "CA" + "1" * 32
AGENT_LEG = "CA" + "2" * 32
ROOM_LEG = "CA" + "3" * 32


def room_event(what: str, at: float, *, leg: str | None = SID, label: str | None = None, seq: int | None = None,
               reason: str | None = None) -> CallEvent:  # fmt: skip
    """Return a report of the call's room `at` seconds in."""
    return CallEvent(kind=EventKind.ROOM, call_sid=SID, at=T0 + timedelta(seconds=at), status=what, leg_sid=leg,
                     leg_to=label, sequence=seq, reason=reason, room="CF" + "9" * 32)  # fmt: skip


def fold(events: list[CallEvent]) -> call_room.Room | None:
    """Fold the reports into a room, as the call's state does."""
    room = None
    for event in events:
        room = call_room.note(room, event, SID)
    return room


HELD_THEN_RESUMED = [
    room_event("moving", 20),
    room_event("entered", 20.2),
    room_event("join", 20.4, seq=1, label="customer"),
    room_event("join", 50, leg=ROOM_LEG, label="agent:alice", seq=2),
    room_event("start", 50, leg=None, seq=3),
    room_event("hold", 60, seq=4, label="customer"),
    room_event("unhold", 70, seq=5, label="customer"),
    room_event("leave", 90, leg=ROOM_LEG, label="agent:alice", seq=6, reason="participant_hung_up"),
    room_event("end", 90, leg=None, seq=7),
    room_event("leave", 90, seq=8, label="customer", reason="moderator_ended_conference"),
    room_event("left", 90.5),
]


def test_holds_are_read_from_the_reports_whatever_order_they_came_in() -> None:
    """Two holds (alone 30 s, then held 10 s), alice last, ended at 90 s: in every order, twice each."""
    for order in itertools.islice(itertools.permutations(HELD_THEN_RESUMED), 0, 5000, 97):
        room = fold(list(order) + list(order[:3]))
        assert room is not None
        seen = call_room.spans(room)
        assert seen.hold_seconds(T0) == 40
        assert seen.last_agent is None  # nobody took it over: whoever answered has it
        assert seen.agents_ever == {"client:alice"}
        assert seen.ended_at == T0 + timedelta(seconds=90)
        assert not seen.hung_up_on_hold
        assert not seen.on_hold
        assert seen.started
        assert seen.agents_now == set()
        assert room.provider_id == "CF" + "9" * 32


def test_a_customer_who_hangs_up_while_held_hung_up_on_hold() -> None:
    """Held alone from the move; their own leave (hung up) at 50 s counts, whatever report came first."""
    events = [room_event("moving", 0), room_event("left", 50), room_event("end", 50, leg=None, seq=3),
              room_event("leave", 50, seq=2, label="customer", reason="participant_hung_up")]  # fmt: skip
    seen = call_room.spans(fold(events) or call_room.Room(entered_at=T0))
    assert seen.hung_up_on_hold
    assert seen.hold_seconds(T0) == 50
    assert not seen.started


def test_a_hold_still_on_counts_until_the_moment_asked() -> None:
    """On hold since the move: on hold now, and counted to the moment given."""
    seen = call_room.spans(fold([room_event("moving", 0), room_event("entered", 1)]) or call_room.Room(entered_at=T0))
    assert seen.on_hold
    assert seen.hold_seconds(T0 + timedelta(seconds=12)) == 12


def test_a_move_that_failed_leaves_no_room_but_one_that_landed_stays() -> None:
    """`stayed` after `moving` alone: no room; after the customer was brought in, the room stands."""
    assert fold([room_event("moving", 0), room_event("stayed", 1)]) is None
    assert fold([room_event("stayed", 1)]) is None
    kept = fold([room_event("moving", 0), room_event("entered", 1), room_event("stayed", 2)])
    assert kept is not None


def test_a_report_the_room_does_not_know_changes_nothing() -> None:
    """A conference event the bridge did not subscribe to (mute) is kept out of the room."""
    assert fold([room_event("participant-mute", 3)]) is None


def test_recordings_are_filed_once_and_a_completed_one_stays() -> None:
    """The room's recording: a later `absent` never replaces its completed report; a new one adds."""
    done = call_room.Recorded(sid="RE1", url="https://example.test/RE1", duration=40, status="completed")
    room = call_room.file_recording(None, done, T0)
    room = call_room.file_recording(room, call_room.Recorded(sid="RE1", status="absent"), T0)
    assert room.recordings == [done]
    early = call_room.Recorded(sid="RE2", status="in-progress")
    room = call_room.file_recording(room, early, T0)
    room = call_room.file_recording(room, call_room.Recorded(sid="RE2", status="completed"), T0)
    assert [r.status for r in room.recordings] == ["completed", "completed"]


def test_the_agent_who_held_the_call_stays_on_it_and_others_only_while_in_the_room() -> None:
    """alice answered and holds (busy while the call lives); bob joined and left (talked)."""
    room = fold([room_event("moving", 0), room_event("join", 5, leg=ROOM_LEG, label="agent:bob", seq=1),
                 room_event("hold", 6, leg=ROOM_LEG, label="agent:bob", seq=2),
                 room_event("leave", 9, leg=ROOM_LEG, label="agent:bob", seq=3)])  # fmt: skip
    assert room is not None
    assert call_room.engagements(room, "client:alice", live=True) == {"client:bob": "talked", "client:alice": "talking"}
    room = fold([room_event("moving", 0)])
    assert room is not None
    assert call_room.engagements(room, "client:alice", live=True) == {"client:alice": "talking"}
    assert call_room.engagements(room, "client:alice", live=False) == {"client:alice": "talked"}
    assert call_room.engagements(room, None, live=True) == {}
    inside = fold([room_event("moving", 0), room_event("join", 5, leg=ROOM_LEG, label="agent:bob", seq=1)])
    assert inside is not None
    assert call_room.engagements(inside, "client:alice", live=True) == {
        "client:bob": "talking",
        "client:alice": "talking",
    }
    assert call_room.engagements(inside, "client:alice", live=False) == {
        "client:bob": "talked",
        "client:alice": "talked",
    }


def answered_call() -> Call:
    """Return a call alice answered 4 s in."""
    leg = Leg(sid=AGENT_LEG, to="client:alice", status=LegStatus.ANSWERED, answered_at=T0 + timedelta(seconds=4))
    return Call(sid=SID, direction="inbound", from_number="+14155550123", to_number="+16505550100",
                first_seen=T0, legs={AGENT_LEG: leg}, answered_leg=AGENT_LEG)  # fmt: skip


def test_members_are_whoever_answered_and_every_agent_the_room_saw() -> None:
    """Who may come back into the room: the answering agent, and those who joined it."""
    call = answered_call()
    assert call_room.members(call) == set()
    call.room = fold([room_event("moving", 0), room_event("join", 5, leg=ROOM_LEG, label="agent:bob", seq=1)])
    assert call_room.members(call) == {"client:alice", "client:bob"}
    call.legs = {}
    assert call_room.members(call) == {"client:bob"}


def test_a_call_in_its_room_is_over_only_when_the_customer_s_stay_ends() -> None:
    """The answering leg ends with the move; the call goes on until the room ends for the customer."""
    call = answered_call()
    outcome = step(call, room_event("moving", 20), T0, Policy())
    leg_ended = CallEvent(kind=EventKind.LEG_STATUS, call_sid=SID, at=T0 + timedelta(seconds=20), leg_sid=AGENT_LEG,
                          leg_to="client:alice", status="completed", sequence=3, duration=16)  # fmt: skip
    outcome = step(outcome.call, leg_ended, T0, Policy())
    assert not outcome.call.over
    assert engagements(outcome.call) == {"client:alice": "talking"}
    outcome = step(outcome.call, room_event("left", 60), T0, Policy())
    assert outcome.call.over


def test_an_agent_s_way_into_a_room_makes_no_ticket_of_its_own() -> None:
    """The softphone's call into the room: nothing for Zendesk, and no say in the agent's presence."""
    started = CallEvent(kind=EventKind.CALL_STARTED, call_sid=ROOM_LEG, at=T0, direction="outbound",
                        from_number="client:alice", to_number="", joins=SID)  # fmt: skip
    outcome = step(None, started, T0, Policy(agents={"client:alice": 1001}))
    assert outcome.actions == []
    assert engagements(outcome.call) == {}
    ended = CallEvent(kind=EventKind.CALL_STATUS, call_sid=ROOM_LEG, at=T0 + timedelta(seconds=30), status="completed",
                      duration=30)  # fmt: skip
    outcome = step(outcome.call, ended, T0, Policy(agents={"client:alice": 1001}))
    assert outcome.actions == []
    assert outcome.call.finished
