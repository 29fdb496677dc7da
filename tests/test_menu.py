"""Menus in the pure core: answers folded by turn in any order, where they lead, what the ticket and record say."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest

from bridge.core import call_menu
from bridge.core.action_codec import decode, encode
from bridge.core.actions import AddNote, CreateCallRecord, CreateTicket
from bridge.core.calls import RECORDING_WAIT, Call, Outcome, Policy, step
from bridge.core.events import CallEvent, EventKind
from bridge.ops.settings import load_settings
from schemas.zendesk import ABANDONED_IN_IVR, CallRecord
from tests.test_calls import CALLER, NUMBER, SID, T0, parent

SALES = "+16505550101"
EMERGENCY = "+13125550199"
LINES = f"""
[[line]]
number = "{NUMBER}"
name = "Support"
group_id = 5001
brand_id = 6001

[line.menu]
prompt = "For sales press 1."
timeout = 6
{{default}}
1 = "line:Sales"
3 = "{EMERGENCY}"
9 = "voicemail"
"#" = "line:Support"

[[line]]
number = "{SALES}"
name = "Sales"
group_id = 5002
brand_id = 6002
"""


def policy(default: str | None = 'default = "line:Sales"', **more: Any) -> Policy:
    """Return a policy whose Support line (the number called) has a menu; `default` its default line, if any."""
    settings = load_settings(None, lines=LINES.format(default=default or ""), agents={"client:alice": 1001})
    return Policy(agents={"client:alice": 1001}, lines=settings.phone_lines, **more)


def pressed(key: str | None, turn: int = 1, seconds: float = 3) -> CallEvent:
    """The menu's <Gather action>: `key` pressed at the `turn`th hearing (None: no key within the timeout)."""
    return parent(EventKind.MENU_CHOSEN, seconds, status="in-progress", sequence=turn, pressed=key)


def fold(events: list[CallEvent], rules: Policy) -> tuple[Call, list[Outcome]]:
    """Fold events in order; return the call and each step's outcome."""
    call: Call | None = None
    outcomes = []
    for number, event in enumerate(events):
        outcome = step(call, event, T0 + timedelta(seconds=100 + number), rules)
        call = outcome.call
        outcomes.append(outcome)
    assert call is not None
    return call, outcomes


def test_a_caller_of_a_line_with_a_menu_hears_it_and_rings_nobody() -> None:
    """The arrival places the caller in the menu: routing is asked nothing yet."""
    call, (arrived,) = fold([parent(EventKind.CALL_STARTED)], policy())
    assert call.placed is not None
    assert call.placed.kind == "menu"
    assert arrived.route is None
    assert call.menu is not None
    assert call.menu.line == "Support"


def test_a_key_naming_a_line_asks_routing_to_offer_the_call_on_that_line() -> None:
    """1 is Sales: the call is offered on Sales, whose group and brand its ticket gets; its nickname stays Support's."""
    call, (_, chosen) = fold([parent(EventKind.CALL_STARTED), pressed("1")], policy())
    assert chosen.route == "offer"
    assert (call.line, call.chosen_line, call.route_line) == ("Support", "Sales", "Sales")
    assert call.menu is not None
    assert (call.menu.target, call.menu.how, call.menu.key) == ("line:Sales", "key", "1")
    rules = policy()
    fields = call_menu.record_fields(call, rules)
    assert fields == {
        "ivr_hops": 1,
        "ivr_time_spent": 3,
        "ivr_action": "group",
        "ivr_routed_to": "Sales",
    }
    assert call_menu.tags(call) == ["ivr", "ivr_1"]


@pytest.mark.parametrize(
    ("default", "line"), [('default = "line:Sales"', "Sales"), (None, "Support")], ids=["default", "no default"]
)
def test_no_key_within_the_timeout_takes_the_default_or_the_line_itself(default: str | None, line: str) -> None:
    """Digits empty (actionOnEmptyResult): the menu's default; a menu without one: its own line's agents."""
    call, (_, chosen) = fold([parent(EventKind.CALL_STARTED), pressed(None, seconds=14)], policy(default))
    assert chosen.route == "offer"
    assert call.route_line == line
    assert call.menu is not None
    assert call.menu.how == "timeout"
    assert call_menu.tags(call) == ["ivr", "ivr_timeout"]


def test_a_key_the_menu_does_not_name_repeats_it_twice_then_takes_the_default() -> None:
    """7, 7: the menu again each time, routing asked nothing; a third 7: the default."""
    rules = policy()
    events = [parent(EventKind.CALL_STARTED), pressed("7", 1), pressed("7", 2, 10), pressed("7", 3, 17)]
    call, outcomes = fold(events[:3], rules)
    assert [outcome.route for outcome in outcomes] == [None, None, None]
    assert call.placed is not None
    assert call.placed.kind == "menu"
    assert call.menu is not None
    assert call.menu.target is None
    after, outcomes = fold(events, rules)
    assert outcomes[-1].route == "offer"
    assert after.route_line == "Sales"
    assert after.menu is not None
    assert (after.menu.how, after.menu.turn) == ("invalid", 3)
    note = call_menu.note(after, rules)
    assert note is not None
    assert note.count("which is not a choice: heard the menu again") == 2
    assert "pressed 7, which is not a choice, once more: the line Sales (the default)" in note
    assert call_menu.tags(after) == ["ivr", "ivr_invalid"]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_answers_arriving_in_any_order_lead_the_same_way(order: tuple[int, ...]) -> None:
    """A wrong key, then # (a key of this menu): whatever order the requests arrive in, the caller goes to Support."""
    events = [parent(EventKind.CALL_STARTED), pressed("5", 1), pressed("#", 2, 9)]
    call, _ = fold([events[i] for i in order], policy())
    assert call.menu is not None
    assert (call.menu.target, call.menu.how, call.menu.turn) == ("line:Support", "key", 2)
    assert call.route_line == "Support"
    assert call_menu.tags(call) == ["ivr", "ivr_hash"]


def test_an_answer_twice_or_past_the_last_turn_changes_nothing() -> None:
    """The first answer of a turn stands; a fourth hearing does not exist."""
    call, outcomes = fold([parent(EventKind.CALL_STARTED), pressed("1"), pressed("9"), pressed("9", 4)], policy())
    assert call.menu is not None
    assert call.menu.target == "line:Sales"
    assert [outcome.route for outcome in outcomes] == [None, "offer", None, None]
    assert any("turn 4" in text for _, text in outcomes[3].notices)


def test_voicemail_at_the_menu_places_the_caller_there_at_once() -> None:
    """9: the greeting and the beep, routing asked nothing; the record says the customer asked for voicemail."""
    rules = policy()
    call, (_, chosen) = fold([parent(EventKind.CALL_STARTED), pressed("9")], rules)
    assert chosen.route is None
    assert call.placed is not None
    assert (call.placed.kind, call.placed.reason) == ("voicemail", "menu")
    assert call.voicemail_offered
    assert call_menu.record_fields(call, rules) == {
        "ivr_hops": 1,
        "ivr_time_spent": 3,
        "ivr_action": "voicemail",
        "ivr_routed_to": "voicemail",
        "customer_requested_voicemail": True,
    }


def test_a_default_of_voicemail_is_not_the_customers_request() -> None:
    """No key, and the default is voicemail: customer_requested_voicemail stays unsaid."""
    rules = policy('default = "voicemail"')
    call, _ = fold([parent(EventKind.CALL_STARTED), pressed(None, seconds=14)], rules)
    fields = call_menu.record_fields(call, rules)
    assert fields["ivr_action"] == "voicemail"
    assert "customer_requested_voicemail" not in fields


def test_a_forward_rings_the_number_and_a_ring_that_ends_unanswered_settles_without_an_offer() -> None:
    """3 forwards the call; its <Dial> ringing out asks routing to settle (voicemail), not to offer it to agents."""
    rules = policy()
    unanswered = parent(EventKind.DIAL_ENDED, 40, status="in-progress", dial_status="no-answer")
    call, (_, chosen, rang_out) = fold([parent(EventKind.CALL_STARTED), pressed("3"), unanswered], rules)
    assert chosen.route is None
    assert rang_out.route == "settle"
    assert call.menu is not None
    assert call_menu.record_fields(call, rules)["ivr_routed_to"] == EMERGENCY
    assert call_menu.record_fields(call, rules)["ivr_action"] == "phone_number"


def test_a_forward_that_connects_is_answered_by_the_number_without_a_warning() -> None:
    """The <Dial action> names only the leg's sid: the number is the menu's, and nobody unmapped answered."""
    rules = policy()
    connected = parent(EventKind.DIAL_ENDED, 60, status="completed", dial_status="completed", dial_bridged=True,
                       leg_sid="CA" + "f" * 32, duration=40)  # fmt: skip
    ended = parent(EventKind.CALL_STATUS, 60, status="completed", sequence=0, duration=60)
    call, outcomes = fold([parent(EventKind.CALL_STARTED), pressed("3"), connected, ended], rules)
    assert call.answered_leg == "CA" + "f" * 32
    assert call.legs[call.answered_leg].to == EMERGENCY
    notices = [key for outcome in outcomes for key, _ in outcome.notices]
    assert "notice:unmapped" not in notices
    tickets = [a for o in outcomes for a in o.actions if isinstance(a, CreateTicket)]
    assert len(tickets) == 1  # TICKET_ON=answer, the answer known at the dial's end
    assert tickets[0].ticket.tags == ["ivr", "ivr_3"]
    assert tickets[0].ticket.comment is not None
    assert f"forwarded by the menu to {EMERGENCY}" in tickets[0].ticket.comment.body


def test_a_caller_who_hangs_up_in_the_menu_is_a_missed_call_abandoned_in_ivr() -> None:
    """Gone before any key: after the recording wait, a missed-call ticket with a note; the record abandoned_in_ivr."""
    rules = policy(api="calls")
    ended = parent(EventKind.CALL_STATUS, 5, status="completed", sequence=0, duration=5)
    waited = parent(EventKind.TIMER, 200, timer=RECORDING_WAIT)
    _, outcomes = fold([parent(EventKind.CALL_STARTED), ended, waited], rules)
    actions = [a for outcome in outcomes for a in outcome.actions]
    (ticket,) = [a for a in actions if isinstance(a, CreateTicket)]
    assert ticket.ticket.tags == ["missed_call", "ivr", "ivr_abandoned"]
    assert ticket.ticket.comment is not None
    assert "hung up in the menu" in ticket.ticket.comment.body
    (record,) = [a for a in actions if isinstance(a, CreateCallRecord)]
    assert record.record.completion_status == ABANDONED_IN_IVR
    assert (record.record.ivr_hops, record.record.ivr_time_spent, record.record.ivr_action) == (1, 5, None)
    assert record.record.wait_time is None  # the caller never waited for an agent
    (note,) = [a for a in actions if isinstance(a, AddNote)]
    assert note.name == "menu"
    assert note.body.endswith("- hung up in the menu")


def test_an_answer_that_overtakes_the_menus_request_waits_for_it() -> None:
    """A replay may deliver the answer of a leg first: the ticket and record wait for the menu, then are Sales'."""
    rules = policy(api="calls")
    answered = CallEvent(kind=EventKind.LEG_STATUS, call_sid=SID, at=T0 + timedelta(seconds=8), leg_sid="CA" + "a" * 32,
                         leg_to="client:alice", status="answered", sequence=2)  # fmt: skip
    _, outcomes = fold([parent(EventKind.CALL_STARTED), answered, pressed("1")], rules)
    assert not [a for a in outcomes[1].actions if isinstance(a, CreateTicket | CreateCallRecord)]
    (ticket,) = [a for a in outcomes[2].actions if isinstance(a, CreateTicket)]
    (record,) = [a for a in outcomes[2].actions if isinstance(a, CreateCallRecord)]
    assert (ticket.brand_id, record.brand_id, record.group_id) == (6002, 6002, 5002)
    assert ticket.ticket.tags == ["ivr", "ivr_1"]
    assert (record.record.ivr_action, record.record.ivr_routed_to) == ("group", "Sales")


def test_the_note_and_its_tags_survive_the_stored_form() -> None:
    """AddNote's tags and the record's group are kept with the actions."""
    note = AddNote(SID, "menu", "The caller went through the menu", ("ivr", "ivr_1"))
    assert decode(note.kind.value, note.key, SID, encode(note), T0) == note
    record = CreateCallRecord(SID, CallRecord(from_line=CALLER, to_line=NUMBER), group_id=5002, brand_id=6002)
    assert decode(record.kind.value, record.key, SID, encode(record), T0) == record


def test_the_menu_survives_the_stored_call() -> None:
    """A call in the middle of its menu reads back the same from its JSON (answers keyed by turn)."""
    call, _ = fold([parent(EventKind.CALL_STARTED), pressed("7", 1)], policy())
    assert Call.model_validate_json(call.model_dump_json()) == call


def test_a_key_for_a_closed_line_forwarding_after_hours_forwards_the_call_as_the_menus_own_forward() -> None:
    """Sales forwards after hours and the answer says it was closed: the call goes to Sales' number, offered to no one.

    The forward is the menu's own (Placed forward): ringing out, it is settled to Sales' voicemail or the apology.
    """
    closed_sales = LINES.format(default="") + 'after_hours = "+16505550177"\n\n[line.hours]\ntimezone = "UTC"\n'
    settings = load_settings(None, lines=closed_sales, agents={"client:alice": 1001})
    rules = Policy(agents={"client:alice": 1001}, lines=settings.phone_lines)
    closed = pressed("1").model_copy(update={"after_hours": "forward"})
    unanswered = parent(EventKind.DIAL_ENDED, 40, status="in-progress", dial_status="no-answer")
    call, (_, chosen, rang_out) = fold([parent(EventKind.CALL_STARTED), closed, unanswered], rules)
    assert chosen.route is None  # nobody is offered the call
    assert (call.after_hours, call.chosen_line, call.route_line) == ("forward", "Sales", "Sales")
    assert call.placed is not None
    assert (call.placed.kind, call.placed.to) == ("forward", "+16505550177")
    assert rang_out.route == "settle"
    assert call_menu.record_fields(call, rules)["ivr_routed_to"] == "Sales"


def test_an_answer_that_does_not_decide_says_nothing_of_a_closed_line() -> None:
    """A key the menu does not name repeats it: that answer's `after_hours` is ignored; the next answer decides."""
    rules = policy()
    wrong = pressed("7").model_copy(update={"after_hours": "voicemail"})
    call, _ = fold([parent(EventKind.CALL_STARTED), wrong, pressed("1", turn=2)], rules)
    assert call.after_hours is None
    assert call.chosen_line == "Sales"
