"""The call's room, purely: reports folded in any order, holds, who talked last, how it ended."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.core import call_progress, call_room
from bridge.core.call_fields import _room_times
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


CF1, CF2 = "CF" + "1" * 32, "CF" + "2" * 32
BOB_LEG = "CA" + "4" * 32


def in_room(what: str, at: float, room: str, **options: object) -> CallEvent:
    """Return a report of one of the call's rooms at the provider."""
    return room_event(what, at, **options).model_copy(update={"room": room})  # type: ignore[arg-type]


def test_a_cold_transfer_reads_across_two_rooms() -> None:
    """Moved into a fresh room: the old one's end is not the call's; bob's join takes it; holds in both rooms."""
    events = [
        room_event("moving", 0),
        in_room("join", 1, CF1, seq=1, label="customer"),
        in_room("join", 2, CF1, leg=ROOM_LEG, label="agent:alice", seq=2),
        in_room("join", 3, CF1, leg="CA" + "5" * 32, label="+14155550177|add", seq=3),  # a number joins too
        room_event("moving", 20),
        in_room("leave", 20.1, CF1, seq=4, label="customer", reason=call_room.MOVED),
        in_room("end", 20.2, CF1, leg=None, seq=5),
        in_room("join", 20.5, CF2, seq=1, label="customer"),
        room_event("invite", 20.6, leg=BOB_LEG, label="agent:bob|transfer", reason="transfer"),
        in_room("join", 26, CF2, leg=BOB_LEG, label="agent:bob|transfer", seq=2),
        in_room("modify", 27, CF2, leg=BOB_LEG, label="agent:bob|transfer", seq=3, reason=call_room.OWNER),
        in_room("leave", 60, CF2, leg=BOB_LEG, label="agent:bob|transfer", seq=4, reason="participant_hung_up"),
        in_room("end", 60, CF2, leg=None, seq=5),
    ]
    seen = call_room.spans(fold(events) or call_room.Room(entered_at=T0))
    assert seen.ended_at == T0 + timedelta(seconds=60)
    assert seen.last_agent == "client:bob"
    assert [(t.by, t.to) for t in seen.transfers] == [(None, "client:bob")]
    assert seen.hold_seconds(T0) == 2 + 6  # alone before alice came in, then alone in the fresh room until bob
    assert seen.agents_ever == {"client:alice", "client:bob"}


def test_a_consultation_completes_by_the_owner_s_modify_and_a_stranger_s_modify_changes_nothing() -> None:
    """The consulted colleague made owner completes it; anyone else's modify is no completion."""
    start = [
        room_event("moving", 0),
        in_room("join", 1, CF1, seq=1, label="customer"),
        in_room("join", 2, CF1, leg=ROOM_LEG, label="agent:alice", seq=2),
        room_event("invite", 5, leg=BOB_LEG, label="agent:bob|consult", reason="consult"),
        in_room("join", 8, CF1, leg=BOB_LEG, label="agent:bob|consult", seq=3),
    ]
    stranger = call_room.spans(
        fold([*start, in_room("modify", 9, CF1, leg=ROOM_LEG, label="agent:alice", seq=4, reason=call_room.OWNER)])
        or call_room.Room(entered_at=T0)
    )
    assert stranger.consulting
    assert stranger.transfers == []
    done = call_room.spans(
        fold([*start, in_room("modify", 9, CF1, leg=BOB_LEG, label="agent:bob|consult", seq=4, reason="owner")])
        or call_room.Room(entered_at=T0)
    )
    assert [t.to for t in done.transfers] == ["client:bob"]
    assert not done.consulting


def test_a_room_call_answered_at_an_unknown_moment_has_no_talk_time_of_its_own() -> None:
    """The answering leg's answer time was never reported: hold time, but no talk time from the room."""
    call = answered_call()
    call.legs[AGENT_LEG].answered_at = None
    call.room = fold([room_event("moving", 0), room_event("left", 30)])
    fields = _room_times(call, call.legs[AGENT_LEG], None)
    assert fields == {"hold_time": 30}


def test_reports_without_a_call_and_a_cancel_with_nothing_going_on_change_nothing_else() -> None:
    """An invitation or join that names no call, and a cancel with no consultation: read without harm."""
    room = fold([
        room_event("moving", 0),
        room_event("invite", 1, leg=None, label="+14155550177|add", reason="add"),
        room_event("join", 2, leg=None, label="+14155550177|add", seq=1),
        room_event("cancel", 3),
    ])  # fmt: skip
    seen = call_room.spans(room or call_room.Room(entered_at=T0))
    assert seen.others_now == {"+14155550177"}
    assert seen.pending == {}
    assert seen.consults == []


def test_a_room_figure_a_late_report_changes_is_corrected_after_the_record_s_end() -> None:
    """The record's end said 0 s on hold; a late hold report makes it 30: one correction, after the end's update."""
    call = answered_call()
    call.room = fold([room_event("moving", 20)])
    out: list[Any] = []
    call.emitted.append(f"{SID}:call_record:ended")
    call_progress.decide_corrections(call, {"hold_time": 0}, 1001, out.append)
    call_progress.decide_corrections(call, {"hold_time": 0}, 1001, out.append)
    assert out == []  # the end's own figures: nothing to correct
    call_progress.decide_corrections(call, {"hold_time": 30}, 1001, out.append)
    (first,) = out
    assert (first.name, first.fields.hold_time, first.after) == ("correction:1", 30, f"{SID}:call_record:ended")
    call.emitted.append(first.key)
    call_progress.decide_corrections(call, {"hold_time": 35}, 1001, out.append)
    assert (out[1].name, out[1].after) == ("correction:2", first.key)


def test_a_consultation_called_off_within_a_second_leaves_the_customer_off_hold() -> None:
    """The room's reports dated to the whole second sort before the bridge's notes: the bridge's unhold still wins."""
    alice = "agent:alice|consult"
    events = [
        room_event("moving", 10),
        room_event("join", 10, seq=1, label="customer"),
        room_event("join", 12, leg=ROOM_LEG, label="agent:bob", seq=2),
        room_event("hold", 30.3),  # the bridge's note, on its own clock
        room_event("hold", 30, seq=3, label="customer"),  # Twilio's report of it, to the second
        room_event("invite", 30.4, leg=AGENT_LEG, label=alice, reason="consult"),
        room_event("join", 30, leg=AGENT_LEG, label=alice, seq=4),
        room_event("leave", 30, leg=AGENT_LEG, label=alice, seq=5, reason="participant_hung_up"),
        room_event("unhold", 30, seq=6, label="customer"),
        room_event("cancel", 30.8),
        room_event("unhold", 30.9),
    ]
    for order in itertools.islice(itertools.permutations(events), 0, 4000, 89):
        room = fold(list(order))
        assert room is not None
        seen = call_room.spans(room)
        assert not seen.on_hold
        assert seen.agents_now == {"client:bob"}
        assert not seen.consulting
