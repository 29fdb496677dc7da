"""A transfer to a line, purely: the answered customer waits in the line's queue from their room, agents invited in."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bridge.core import call_room
from bridge.core.action_codec import decode, encode
from bridge.core.actions import AddNote, MoveCall, UpdateCallRecord
from bridge.core.call_model import Policy
from bridge.core.calls import RECORDING_WAIT
from bridge.core.events import CallEvent, EventKind
from bridge.core.lines import Line, Lines
from bridge.core.presence import PresencePolicy, busy_now
from bridge.core.routing import Missed, RoutingPolicy, Waiting, match
from tests.routing_kit import T0, Desk
from tests.test_router import at, ev, leg

ROOM = "CF" + "9" * 32
BOB_INVITED = "agent:bob|transfer|Sales"
QUEUEING = RoutingPolicy(queue=True, max_wait=60, max_size=2, presence=PresencePolicy())
SALES = Line(key="Sales", name="Sales", number="+16505550101", group_id=5002)
LINES = Lines(all=(Line(key="Support", name="Support", number="+16505550100"), SALES), configured=True)


def room(what: str, seconds: float, **fields: Any) -> CallEvent:
    """A report of CA1's room (or the bridge's own note of it), `seconds` in."""
    return CallEvent(kind=EventKind.ROOM, call_sid="CA1", at=at(seconds), status=what, room=ROOM, **fields)


def in_line(desk: Desk) -> None:
    """Dana calls; alice answers at 5 s; at 30 s alice transfers her to Sales: she waits alone in her room."""
    desk.feed(ev(EventKind.CALL_STARTED), at(0))
    desk.feed(leg("ringing", "client:alice", 1, 1), at(1))
    desk.feed(leg("ringing", "client:bob", 1, 1), at(1))
    desk.feed(leg("answered", "client:alice", 2, 5), at(5))
    desk.feed(leg("canceled", "client:bob", 2, 5), at(5))
    desk.feed(room("moving", 30, leg_sid="CA1"), at(30))
    desk.feed(room("join", 31, leg_sid="CA1", leg_to="customer"), at(31))
    desk.feed(room("line", 31, leg_to="Sales"), at(31))


def test_a_call_transferred_to_a_line_waits_there_and_its_agent_is_invited_into_the_room() -> None:
    """bob is free: he is invited (one move, naming him); alice, who transferred, is free and not offered it back."""
    desk = Desk(QUEUEING)
    in_line(desk)
    row = desk.waiting["CA1"]
    assert (row.room, row.queued, row.arrived_at, row.offered_to) == (True, True, T0, ("client:bob",))
    assert MoveCall("CA1", 1, ("client:bob",), QUEUEING.ring_seconds) in desk.actions
    assert busy_now(desk.agents["client:bob"], at(32)) == "ringing"
    assert busy_now(desk.agents["client:alice"], at(32)) is None
    assert any(miss.identity == "client:alice" for miss in row.missed)


def test_an_invitation_nobody_answers_is_a_missed_offer_and_the_caller_keeps_their_place() -> None:
    """bob lets it ring out: missed, released; a minute on he is invited again; he joins: out of line, his call."""
    desk = Desk(QUEUEING)
    in_line(desk)
    desk.feed(room("invite", 32, leg_sid="CA7", leg_to=BOB_INVITED, reason="transfer"), at(32))
    desk.feed(room("leave", 57, leg_sid="CA7", leg_to=BOB_INVITED, reason=call_room.NOT_ANSWERED), at(57))
    bob = desk.agents["client:bob"]
    assert (busy_now(bob, at(58)), bob.missed) == (None, 1)
    assert desk.waiting["CA1"].offered_to == ()
    desk.free_up(at(120))
    assert desk.waiting["CA1"].offered_to in (("client:alice",), ("client:bob",))
    desk.feed(room("join", 125, leg_sid="CA8", leg_to=BOB_INVITED), at(125))
    assert "CA1" not in desk.waiting
    assert busy_now(desk.agents["client:bob"], at(126)) == "on_call"
    (transfer,) = call_room.spans(desk.calls["CA1"].room or call_room.Room(entered_at=T0)).transfers
    # Nobody took the call over in the room before: the note names whoever answered it.
    assert (transfer.by, transfer.to, transfer.line, transfer.lined_at) == (None, "client:bob", "Sales", at(31))


def test_an_invitation_twilio_refused_puts_the_caller_back_in_line() -> None:
    """The move failed: the agent is let go, the caller waits on, not offered to him again at once."""
    desk = Desk(QUEUEING)
    in_line(desk)
    desk.feed(CallEvent(kind=EventKind.MOVE_FAILED, call_sid="CA1", at=at(33), status="refused"), at(33))
    row = desk.waiting["CA1"]
    assert row.offered_to == ()
    assert busy_now(desk.agents["client:bob"], at(34)) is None
    assert row.room


def test_a_customer_who_hangs_up_waiting_in_the_line_abandoned_it_in_the_queue() -> None:
    """Nobody took her: her record says abandoned_in_queue, and she is out of line."""
    desk = Desk(QUEUEING)
    in_line(desk)
    desk.feed(room("leave", 50, leg_sid="CA1", leg_to="customer", reason=call_room.HUNG_UP), at(50))
    desk.feed(room("end", 50), at(50))
    desk.feed(room("left", 50.5, leg_sid="CA1"), at(60))
    desk.feed(ev(EventKind.CALL_STATUS, seconds=51, status="completed", duration=51), at(61))
    desk.feed(CallEvent(kind=EventKind.TIMER, call_sid="CA1", at=at(200), timer=RECORDING_WAIT), at(200))
    assert "CA1" not in desk.waiting
    seen = call_room.spans(desk.calls["CA1"].room or call_room.Room(entered_at=T0))
    assert seen.hung_up_in_line
    assert seen.in_line is None
    ended = [a for a in desk.actions if isinstance(a, UpdateCallRecord) and a.fields.completion_status]
    assert [a.fields.completion_status for a in ended] == ["abandoned_in_queue"]


def test_a_line_named_only_by_the_invited_agent_s_label_is_the_transfer_s_line() -> None:
    """Replayed from the room's reports alone, the label says the line; a `line` note after the end is ignored."""
    events = [
        room("join", 31, leg_sid="CA1", leg_to="customer"),
        room("join", 60, leg_sid="CA8", leg_to=BOB_INVITED),
        room("end", 90),
        room("line", 95, leg_to="Sales"),
    ]
    folded = None
    for event in events:
        folded = call_room.note(folded, event, "CA1")
    assert folded is not None
    seen = call_room.spans(folded)
    (transfer,) = seen.transfers
    assert (transfer.by, transfer.to, transfer.line, transfer.lined_at) == (None, "client:bob", "Sales", None)
    assert seen.in_line is None


def test_the_note_names_the_line_and_gives_the_ticket_to_its_group_and_the_agent() -> None:
    """alice → Sales at 09:00:31; bob took it: the note, group 5002, assignee bob."""
    desk = Desk(QUEUEING, Policy(agents={"client:alice": 1001, "client:bob": 1002}, api="calls", lines=LINES))
    in_line(desk)
    desk.feed(room("join", 40, leg_sid="CA8", leg_to=BOB_INVITED), at(40))
    (note,) = [a for a in desk.actions if isinstance(a, AddNote) and a.name.startswith("transfer")]
    assert (note.assignee_id, note.group_id) == (1002, 5002)
    assert note.body == ("Call transferred by client:alice to the line Sales at 2026-12-07 09:00:31 UTC; "
                         "client:bob took it at 2026-12-07 09:00:40 UTC.")  # fmt: skip
    folded = call_room.spans(desk.calls["CA1"].room or call_room.Room(entered_at=T0))
    assert folded.last_agent == "client:bob"


def test_a_caller_in_a_room_is_offered_one_agent_at_a_time_whatever_they_waited() -> None:
    """ring_all rings one agent into a room; the longest wait does not keep a transferred caller from agents."""
    desk = Desk(QUEUEING)
    agents = tuple(desk.agents.values())
    waiting = Waiting("CA1", T0, queued=True, room=True, missed=(Missed("client:zed", T0),))
    offers = match(agents, [waiting], T0 + timedelta(seconds=600), QUEUEING)
    assert offers["CA1"].agents == ("client:alice",)


def test_an_invitation_and_a_note_to_a_group_survive_their_stored_form() -> None:
    """The move's agents and ring time, the note's group: kept and rebuilt."""
    for action in (MoveCall("CA1", 2, ("client:bob",), 20), AddNote("CA1", "transfer:1", "x", (), 1002, 5002)):
        assert decode(action.kind.value, action.key, action.call_sid, encode(action), T0) == action
