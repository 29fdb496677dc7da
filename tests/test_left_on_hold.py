"""A customer left on hold by an agent who went away, purely: when the call goes back to its line, and when not."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bridge.core import call_room, presence
from bridge.core.call_model import Call, Leg
from bridge.core.events import CallEvent
from bridge.core.left_on_hold import back_to_line, left_on_hold
from bridge.core.presence import Agent, PresencePolicy
from bridge.softphone import room_controls
from bridge.softphone.controls import OnCall
from tests.test_call_room import ROOM_LEG, SID, T0, fold, room_event

POLICY = PresencePolicy(presence_timeout=60.0)
ALICE = "client:alice"


def held_call(*events: CallEvent) -> Call:
    """Return alice's answered call, moved into its room at 20 s with nobody in it (on hold), and then `events`."""
    room = fold([room_event("moving", 20), room_event("join", 20, seq=1, label="customer"), *events])
    return Call(sid=SID, direction="inbound", from_number="+14155550123", to_number="+16505550100", room=room,
                first_seen=T0)  # fmt: skip


def gone(seconds_ago: float, *, left: bool = True) -> Agent:
    """Return alice, busy with the call, whose softphone said goodbye (or last spoke) `seconds_ago` before 200 s."""
    now = T0 + timedelta(seconds=200)
    return Agent(ALICE, 1001, busy="on_call", busy_call=SID, seen_at=now - timedelta(seconds=seconds_ago), left=left)


NOW = T0 + timedelta(seconds=200)


def test_a_customer_held_alone_by_an_agent_gone_a_whole_timeout_goes_back_from_their_hold() -> None:
    """Gone 60 s (a goodbye) or silent 120 s (the timeout, then 60 s more): the hold's start is given."""
    call = with_agent(held_call())
    assert left_on_hold(call, gone(60), NOW, POLICY) == T0 + timedelta(seconds=20)
    assert left_on_hold(call, gone(120, left=False), NOW, POLICY) == T0 + timedelta(seconds=20)


def with_agent(call: Call) -> Call:
    """Return the call as alice answered it: her leg is the answering one."""
    return call.model_copy(update={"legs": {ROOM_LEG: Leg(sid=ROOM_LEG, to=ALICE)}, "answered_leg": ROOM_LEG})


@pytest.mark.parametrize(
    ("agent", "why"),
    [
        (gone(59), "gone less than a whole timeout: a reload comes back"),
        (gone(110, left=False), "silent, but not a timeout and a whole one more"),
        (Agent(ALICE, 1001, busy="on_call", busy_call=SID), "never had a softphone"),
        (Agent(ALICE, 1001, busy="on_call", busy_call=SID, seen_at=NOW), "here"),
    ],
)
def test_an_agent_not_gone_long_enough_keeps_the_customer(agent: Agent, why: str) -> None:
    """Anything short of gone for good keeps the call with its agent."""
    assert left_on_hold(with_agent(held_call()), agent, NOW, POLICY) is None, why


@pytest.mark.parametrize(
    ("events", "why"),
    [
        ([room_event("join", 30, leg="CA" + "4" * 32, label="agent:bob|add", seq=2)], "someone is with them"),
        ([room_event("join", 30, leg="CA" + "4" * 32, label="+14155550177|add", seq=2)], "a number is with them"),
        ([room_event("invite", 30, leg="CA" + "4" * 32, label="agent:bob|transfer", reason="transfer")], "ringing"),
        ([room_event("line", 30, label="Sales")], "the line has them already"),
        ([room_event("end", 30, leg=None, seq=2)], "the room ended"),
        (
            [
                room_event("join", 30, leg="CA" + "4" * 32, label="agent:bob|transfer", seq=2),
                room_event("leave", 40, leg="CA" + "4" * 32, label="agent:bob|transfer", seq=3),
            ],
            "bob has it now",
        ),
    ],
)
def test_a_customer_not_left_alone_by_their_agent_stays(events: list[CallEvent], why: str) -> None:
    """With someone there, rung, waiting in a line, ended, or someone else's: nothing to give back."""
    assert left_on_hold(with_agent(held_call(*events)), gone(60), NOW, POLICY) is None, why


def test_a_call_never_held_or_over_stays() -> None:
    """No room: never held; over: nothing to give back."""
    plain = with_agent(held_call()).model_copy(update={"room": None})
    assert left_on_hold(plain, gone(60), NOW, POLICY) is None
    over = with_agent(held_call()).model_copy(update={"ended_at": NOW})
    assert left_on_hold(over, gone(60), NOW, POLICY) is None


def test_the_line_note_says_the_customer_was_returned() -> None:
    """The note is the room's `line`, its reason `returned`: the transfer it leads to says so."""
    call = with_agent(held_call())
    note = back_to_line(call, "Support", NOW)
    room = call_room.note(call.room, note, SID)
    assert room is not None
    joined = room_event("join", 210, leg="CA" + "4" * 32, label="agent:bob|transfer|Support", seq=2)
    room = call_room.note(room, joined, SID)
    assert room is not None
    (transfer,) = call_room.spans(room).transfers
    assert (transfer.line, transfer.returned, transfer.lined_at) == ("Support", True, NOW)


def test_a_call_in_a_lines_queue_is_not_its_last_agents_to_rejoin_or_end() -> None:
    """On hold, alice may come back in (or end it); once the line has the call, her page lets it go."""
    call = with_agent(held_call())
    assert room_controls.view(OnCall(call, ROOM_LEG, ALICE))["join"]
    lined = with_agent(held_call(room_event("line", 30, label="Sales")))
    assert not room_controls.view(OnCall(lined, ROOM_LEG, ALICE))["join"]


def test_when_a_softphone_went_away() -> None:
    """Its goodbye; else its last sign of life's timeout; never, for an agent who never had one."""
    assert presence.gone_since(gone(60), POLICY) == NOW - timedelta(seconds=60)
    assert presence.gone_since(gone(120, left=False), POLICY) == NOW - timedelta(seconds=60)
    assert presence.gone_since(Agent(ALICE, 1001), POLICY) is None
