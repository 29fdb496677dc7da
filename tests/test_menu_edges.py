"""Menus at their edges, in the pure core: callbacks out of order, rings, late answers and hang-ups dated far off."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from bridge.core import call_menu
from bridge.core.actions import Action, AddNote, CreateCallRecord, CreateTicket
from bridge.core.calls import MAX_CALL_SECONDS, RECORDING_WAIT
from bridge.core.events import EventKind
from bridge.core.routing import RoutingPolicy
from tests.routing_kit import Desk
from tests.test_calls import POLICY, SID, T0, leg, parent
from tests.test_menu import EMERGENCY, fold, policy, pressed

RANG_OUT = parent(EventKind.DIAL_ENDED, 40, status="in-progress", dial_status="no-answer", dial_bridged=False)
HUNG_UP = parent(EventKind.CALL_STATUS, 70, status="completed", sequence=0, duration=70)


def made(actions: list[Action]) -> list[Action]:
    """Return what the call leaves in Zendesk: its ticket, its record and its notes."""
    return [action for action in actions if isinstance(action, CreateTicket | CreateCallRecord | AddNote)]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_forward_that_rang_out_ends_the_same_whatever_order_its_callbacks_arrive_in(order: tuple[int, ...]) -> None:
    """3 forwards the call and the number rings out; a shuffled replay may bring the <Dial action> first.

    Its ring-out asks routing to settle the call (voicemail, nobody offered it) before the menu is known; the
    arrival and the answer that follow find it placed, and the menu only records where it led: the placement,
    the ticket, the record and the note are those of the order Twilio sent them in.
    """
    events = [parent(EventKind.CALL_STARTED), pressed("3"), RANG_OUT]
    outcomes: dict[tuple[int, ...], list[Action]] = {}
    for each in {order, (0, 1, 2)}:
        desk = Desk(RoutingPolicy(), policy(api="calls"))
        for number, index in enumerate(each):
            desk.feed(events[index], T0 + timedelta(seconds=100 + number))
        call = desk.calls[SID]
        assert call.placed is not None
        assert (call.placed.kind, call.placed.reason) == ("voicemail", "no_agent")
        assert not call.offers  # the menu forwarded the call: nobody was offered it, in any order
        assert call.menu is not None
        assert (call.menu.target, call.menu.how, call.menu.turn) == (EMERGENCY, "key", 1)
        desk.feed(HUNG_UP, T0 + timedelta(seconds=110))
        desk.feed(parent(EventKind.TIMER, 200, timer=RECORDING_WAIT), T0 + timedelta(seconds=400))
        outcomes[each] = made(desk.actions)
    assert outcomes[order] == outcomes[(0, 1, 2)]
    ticket, record, note = outcomes[order]
    assert isinstance(ticket, CreateTicket)
    assert ticket.ticket.tags == ["missed_call", "ivr", "ivr_3"]
    assert isinstance(record, CreateCallRecord)
    assert (record.record.ivr_action, record.record.ivr_routed_to) == ("phone_number", EMERGENCY)
    assert isinstance(note, AddNote)
    assert note.body.endswith(f"- pressed 3: forwarded to {EMERGENCY}")


def test_a_ring_does_not_undo_voicemail_the_caller_chose_at_the_menu() -> None:
    """A ring forgets a voicemail routing decided unheard, but 9 at the menu is the caller's own choice: it stays."""
    ringing = leg("ringing", 1, 5)
    chose, _ = fold([parent(EventKind.CALL_STARTED), pressed("9"), ringing], policy())
    assert chose.placed is not None
    assert (chose.placed.kind, chose.placed.reason) == ("voicemail", "menu")
    assert chose.voicemail_offered
    assert call_menu.record_fields(chose, policy())["customer_requested_voicemail"] is True

    # The same ring after routing sent a caller of a line without a menu to voicemail, offering it to nobody.
    routed = parent(EventKind.ROUTED, 1, route="voicemail", reason="no_agent")
    decided, _ = fold([parent(EventKind.CALL_STARTED), routed, ringing], POLICY)
    assert decided.placed is None
    assert not decided.voicemail_offered


@pytest.mark.parametrize("seconds", [-30 * 86400, MAX_CALL_SECONDS + 60], ids=["before the arrival", "too late"])
def test_a_hang_up_dated_far_from_the_arrival_says_nothing_of_the_time_in_the_menu(seconds: int) -> None:
    """A replayed old recording dates the hang-up by Twilio's Timestamp: no span of the menu can be told from it."""
    rules = policy(api="calls")
    ended = parent(EventKind.CALL_STATUS, seconds, status="completed", sequence=0, duration=5)
    waited = parent(EventKind.TIMER, 200, timer=RECORDING_WAIT)
    call, outcomes = fold([parent(EventKind.CALL_STARTED), ended, waited], rules)
    assert call_menu.record_fields(call, rules) == {"ivr_hops": 1}  # hung up in the menu, no ivr_time_spent
    actions = [action for outcome in outcomes for action in outcome.actions]
    (record,) = [a for a in actions if isinstance(a, CreateCallRecord)]
    assert record.record.ivr_time_spent is None
    (note,) = [a for a in actions if isinstance(a, AddNote)]
    assert note.body == "The caller went through the menu of Support:\n- hung up in the menu"


def test_an_answer_after_the_deciding_one_is_left_out_of_the_note() -> None:
    """7, then 1 decides (Sales); an answer for the turn after it, which Twilio never asks, changes nothing."""
    rules = policy()
    events = [parent(EventKind.CALL_STARTED), pressed("7", 1), pressed("1", 2, 9), pressed("9", 3, 15)]
    call, outcomes = fold(events, rules)
    assert call.menu is not None
    assert (call.menu.target, call.menu.turn) == ("line:Sales", 2)
    assert sorted(call.menu.presses) == [1, 2, 3]  # kept by its turn, as every answer is
    assert [outcome.route for outcome in outcomes] == [None, None, "offer", None]
    assert call.placed is not None
    assert call.placed.kind == "menu"  # still ringing nobody until routing offers it on Sales; never voicemail
    assert not call.voicemail_offered
    assert call_menu.note(call, rules) == (
        "The caller went through the menu of Support (9 s):\n"
        "- pressed 7, which is not a choice: heard the menu again\n"
        "- pressed 1: the line Sales"
    )
