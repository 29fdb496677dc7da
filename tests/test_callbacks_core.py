"""Callbacks, purely: the request in the caller's place, each turn's facts, the agents' presence, the effects."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from bridge.core.action_codec import decode, encode
from bridge.core.actions import (
    AddNote,
    AddVoiceComment,
    CreateCallRecord,
    CreateTicket,
    DisplayTicket,
    PlaceCallback,
    UpdateCallRecord,
)
from bridge.core.callback_model import Callback, Turn
from bridge.core.callback_numbers import accepted, region_of, spoken
from bridge.core.calls import Call, Policy, step
from bridge.core.events import CallEvent, EventKind, LegStatus
from bridge.core.presence import busy_now, choose
from bridge.core.router import Snapshot, route
from bridge.core.routing import Missed, RoutingPolicy, Waiting, match
from bridge.ops.doctor.callbacks import callbacks_check
from bridge.ops.settings import Settings
from schemas.zendesk import CallRecord
from tests.routing_kit import T0, TEAM, Desk
from tests.test_router import CALLER, NUMBER, QUEUEING, at, ev, leg, queued_caller

ALICE, BOB = "client:alice", "client:bob"
POLICY = Policy(agents=TEAM, api="calls", queue_max_wait=300, callback_attempts=2, callback_retry=600)


def cb(kind: EventKind, seconds: float, turn: int = 1, call_sid: str = "CA1", **fields: Any) -> CallEvent:
    """A callback event of the call that asked."""
    return CallEvent(kind=kind, call_sid=call_sid, at=at(seconds), sequence=turn, **fields)


def agent_leg(status: str, seconds: float, turn: int = 1, who: str = ALICE) -> CallEvent:
    """A status of the turn's call to its agent."""
    return cb(EventKind.CALLBACK_LEG, seconds, turn, leg_sid=f"CAagent{turn}", leg_to=who, status=status)


def dial_end(seconds: float, turn: int = 1, status: str = "completed", bridged: bool = True, **more: Any) -> CallEvent:
    """The end of the turn's dial of the customer."""
    return cb(EventKind.CALLBACK_ENDED, seconds, turn, dial_status=status, dial_bridged=bridged, **more)


def requested(desk: Desk, seconds: float = 40, number: str = CALLER) -> None:
    """Queue CA1 with everyone away, then file its callback request at `seconds`."""
    queued_caller(desk, "CA1", 0)
    for who in list(desk.agents):
        desk.agents[who] = choose(desk.agents[who], "away", T0, by="test")
    desk.feed(ev(EventKind.CALLBACK_REQUESTED, "CA1", seconds, callback_number=number, position=1), at(seconds))


def turns(desk: Desk) -> list[PlaceCallback]:
    """Return the turns routing decided, in order."""
    return [action for action in desk.actions if isinstance(action, PlaceCallback)]


def freed(desk: Desk, seconds: float, who: str = ALICE) -> None:
    """Make an agent available again and match the queue."""
    desk.agents[who] = choose(desk.agents[who], "available", at(seconds), by="test")
    desk.free_up(at(seconds))


def test_a_request_keeps_the_callers_place_and_its_ticket_is_tagged() -> None:
    desk = Desk(QUEUEING, POLICY)
    requested(desk)
    row = desk.waiting["CA1"]
    assert (row.callback, row.arrived_at, row.queued) == (CALLER, T0, True)
    call = desk.calls["CA1"]
    assert call.callback is not None
    assert not call.waiting
    assert call.callback.waited == 40
    (ticket,) = [a for a in desk.actions if isinstance(a, CreateTicket)]
    assert ticket.ticket.tags == ["callback_requested"]
    assert ticket.ticket.via_id == 45
    # The caller hangs up after the thanks: the record says callback, source queue, the number.
    desk.feed(ev(EventKind.QUEUE_LEFT, "CA1", 47, queue_result="hung_up"), at(47))
    desk.feed(ev(EventKind.CALL_STATUS, "CA1", 47, status="completed"), at(47))
    (record,) = [a for a in desk.actions if isinstance(a, CreateCallRecord)]
    assert (record.record.callback, record.record.callback_source) == (True, "queue")
    assert record.record.callback_number == CALLER
    assert record.record.queue_time == 40
    assert "CA1" in desk.waiting  # hanging up after asking never takes the request out of line


def test_a_turn_rings_one_agent_and_the_answered_one_is_logged_as_a_voice_comment() -> None:
    desk = Desk(QUEUEING, POLICY)
    requested(desk)
    freed(desk, 60)
    freed(desk, 60, BOB)
    assert turns(desk) == [PlaceCallback("CA1", 1, ALICE)]  # ring_all, yet one agent: the call to them comes first
    assert busy_now(desk.agents[ALICE], at(60)) == "ringing"
    assert busy_now(desk.agents[BOB], at(60)) is None
    desk.feed(agent_leg("initiated", 61), at(61))
    assert DisplayTicket("CA1", 1001) in desk.actions  # the ticket pops as the callback rings her
    desk.feed(agent_leg("answered", 65), at(65))
    assert busy_now(desk.agents[ALICE], at(65)) == "on_call"
    desk.free_up(at(200))  # long after the hold: she is on it, so nothing rings anyone for it again
    assert len(turns(desk)) == 1
    desk.feed(dial_end(120, recording_url="https://api.twilio.com/RE1", recording_sid="RE1", recording_duration=50,
                       duration=50), at(120))  # fmt: skip
    assert "CA1" not in desk.waiting
    (talk,) = [a for a in desk.actions if isinstance(a, CreateCallRecord) and a.shown_on == "CA1"]
    assert talk.call_sid == "CAagent1"  # the callback's call's own record, on the ticket of the call that asked
    assert talk.needs == ("CA1:ticket", "tel:+14155550123:user")
    assert (talk.record.to_line, talk.record.from_line, talk.record.direction) == (CALLER, NUMBER, "outbound")
    assert (talk.record.agent_id, talk.record.talk_time, talk.record.duration) == (1001, 50, 59)
    assert (talk.record.callback, talk.record.callback_number) == (True, CALLER)
    assert talk.record.recording_url == "https://api.twilio.com/RE1"
    (taken,) = [a for a in desk.actions if isinstance(a, AddNote)]  # the ticket is hers, who reached the customer
    assert (taken.name, taken.assignee_id, taken.tags) == ("callback_taken_1", 1001, ())
    assert taken.body.startswith("Callback attempt 1 of 2 at ")
    assert taken.body.endswith(f" by client:alice: {CALLER} answered.")
    desk.feed(agent_leg("completed", 121), at(121))
    assert busy_now(desk.agents[ALICE], at(121)) is None
    assert desk.calls["CA1"].callback.closed == "answered"  # type: ignore[union-attr]


def test_in_tickets_mode_the_conversation_is_a_voice_comment_on_the_callers_ticket() -> None:
    desk = Desk(QUEUEING, replace_policy(api="tickets"))
    requested(desk)
    freed(desk, 60)
    desk.feed(agent_leg("answered", 65), at(65))
    desk.feed(dial_end(120, duration=50), at(120))
    (comment,) = [a for a in desk.actions if isinstance(a, AddVoiceComment)]
    assert (comment.voice_comment.to, comment.voice_comment.from_) == (CALLER, NUMBER)
    assert comment.voice_comment.answered_by_id == 1001
    assert comment.voice_comment.call_duration == 50
    assert not [a for a in desk.actions if isinstance(a, CreateCallRecord)]
    (taken,) = [a for a in desk.actions if isinstance(a, AddNote)]
    assert (taken.name, taken.assignee_id) == ("callback_taken_1", 1001)
    assert taken.body.endswith(f" by client:alice: {CALLER} answered.")


@pytest.mark.parametrize("api", ["tickets", "calls"])
def test_the_ticket_goes_to_the_agent_who_reached_the_customer_not_to_one_who_missed(api: str) -> None:
    desk = Desk(QUEUEING, replace_policy(api=api))
    requested(desk)
    freed(desk, 60, BOB)
    desk.feed(agent_leg("answered", 65, who=BOB), at(65))
    desk.feed(dial_end(95, status="no-answer", bridged=False), at(95))
    desk.feed(agent_leg("completed", 96, who=BOB), at(96))
    desk.agents[BOB] = choose(desk.agents[BOB], "away", at(97), by="test")
    freed(desk, 700)
    assert turns(desk)[-1] == PlaceCallback("CA1", 2, ALICE)
    desk.feed(agent_leg("answered", 705, turn=2), at(705))
    desk.feed(dial_end(760, turn=2, duration=50), at(760))
    missed, taken = [a for a in desk.actions if isinstance(a, AddNote)]
    assert (missed.name, missed.assignee_id) == ("callback_1", None)  # a missed turn gives the ticket to nobody
    assert f"by client:bob: {CALLER} did not answer." in missed.body
    assert (taken.name, taken.assignee_id) == ("callback_taken_2", 1001)
    assert taken.body.startswith("Callback attempt 2 of 2 at ")
    assert taken.body.endswith(f" by client:alice: {CALLER} answered.")


@pytest.mark.parametrize("api", ["tickets", "calls"])
def test_an_agent_without_a_zendesk_user_still_gets_the_note_without_the_ticket(api: str) -> None:
    desk = Desk(QUEUEING, replace_policy(api=api, agents={BOB: 1002}))  # alice is rung, yet no Zendesk user of hers
    requested(desk)
    freed(desk, 60)
    desk.feed(agent_leg("answered", 65), at(65))
    desk.feed(dial_end(120, duration=50), at(120))
    (taken,) = [a for a in desk.actions if isinstance(a, AddNote)]
    assert (taken.name, taken.assignee_id) == ("callback_taken_1", None)
    assert taken.body.endswith(f" by client:alice: {CALLER} answered.")


def replace_policy(**fields: Any) -> Policy:
    """Return POLICY with some settings changed."""
    return replace(POLICY, **fields)


def test_a_turn_the_agent_misses_is_no_attempt_and_goes_to_another_agent() -> None:
    desk = Desk(QUEUEING, POLICY)
    requested(desk)
    freed(desk, 60)
    desk.feed(agent_leg("ringing", 61), at(61))
    freed(desk, 70, BOB)  # bob frees up while alice's phone rings: the request is not rung twice
    assert len(turns(desk)) == 1
    desk.feed(agent_leg("no-answer", 81), at(81))
    assert turns(desk)[-1] == PlaceCallback("CA1", 2, BOB)
    assert desk.waiting["CA1"].missed == (Missed(ALICE, at(81)),)
    assert desk.calls["CA1"].callback.attempts() == 0  # type: ignore[union-attr]
    assert desk.agents[ALICE].missed == 1
    # A late report of the first turn changes nothing of the second.
    desk.feed(agent_leg("completed", 82), at(82))
    assert desk.waiting["CA1"].offered_to == (BOB,)


def test_turns_that_miss_the_customer_wait_the_retry_time_then_close_with_a_note() -> None:
    desk = Desk(QUEUEING, POLICY)
    requested(desk)
    freed(desk, 60)
    desk.feed(agent_leg("answered", 65), at(65))
    desk.feed(dial_end(95, status="busy", bridged=False), at(95))
    desk.feed(dial_end(96, status="busy", bridged=False), at(96))  # told twice: the first stands
    row = desk.waiting["CA1"]
    assert row.retry_at == at(95) + timedelta(seconds=600)
    assert row.offered_to == ()
    desk.feed(agent_leg("completed", 96), at(96))
    desk.free_up(at(300))
    assert len(turns(desk)) == 1  # not before the retry time
    notes = [a for a in desk.actions if isinstance(a, AddNote)]
    assert "Callback attempt 1 of 2" in notes[0].body
    assert "was busy. Next attempt after" in notes[0].body
    desk.free_up(at(700))
    assert turns(desk)[-1].turn == 2
    desk.feed(agent_leg("answered", 705, turn=2), at(705))
    desk.feed(dial_end(720, turn=2, status="completed", bridged=False), at(720))  # a machine: never pressed 1
    assert "CA1" not in desk.waiting
    said = [a.body for a in desk.actions if isinstance(a, AddNote)]
    assert "answered but never pressed 1" in said[1]
    assert "not reached in 2 attempts" in said[2]
    (closed,) = [a for a in desk.actions if isinstance(a, AddNote) and a.name == "callback_closed"]
    assert closed.tags == ("callback_exhausted",)


def test_a_cancelled_request_leaves_the_line_and_says_so() -> None:
    desk = Desk(QUEUEING, POLICY)
    requested(desk)
    desk.feed(cb(EventKind.CALLBACK_CANCELLED, 50), at(50))
    assert "CA1" not in desk.waiting
    (note,) = [a for a in desk.actions if isinstance(a, AddNote)]
    assert "was cancelled" in note.body
    desk.feed(cb(EventKind.CALLBACK_CANCELLED, 51), at(51))  # again: nothing more
    freed(desk, 60)
    assert turns(desk) == []


def test_pressing_2_sends_the_waiting_caller_to_voicemail_by_their_choice() -> None:
    desk = Desk(QUEUEING, POLICY)
    queued_caller(desk, "CA1", 0)
    desk.feed(ev(EventKind.VOICEMAIL_CHOSEN, "CA1", 40, pressed="2"), at(40))
    call = desk.calls["CA1"]
    assert call.placed is not None
    assert (call.placed.kind, call.no_agent) == ("voicemail", "customer_requested")
    assert "CA1" not in desk.waiting
    outcome = desk.feed(ev(EventKind.VOICEMAIL_CHOSEN, "CA1", 41, pressed="2"), at(41))
    assert outcome.route is None  # no longer waiting
    # The queue's action that follows the <Leave> asks routing nothing: voicemail stands.
    assert desk.feed(ev(EventKind.QUEUE_LEFT, "CA1", 41, queue_result="left"), at(41)).route is None


def test_events_that_come_without_a_request_or_too_late_change_nothing() -> None:
    desk = Desk(QUEUEING, POLICY)
    outcome = desk.feed(dial_end(10), at(10))  # never asked: no callback to tell
    assert outcome.route is None
    queued_caller(desk, "CA2", 0)
    desk.feed(ev(EventKind.QUEUE_LEFT, "CA2", 5, queue_result="hung_up"), at(5))
    desk.feed(ev(EventKind.CALL_STATUS, "CA2", 5, status="completed"), at(5))
    assert "missed_call" in [a for a in desk.actions if isinstance(a, CreateTicket)][-1].ticket.tags
    # A replay may deliver the request after the hang-up: the missed call's ticket and record learn of it.
    desk.feed(ev(EventKind.CALLBACK_REQUESTED, "CA2", 6, callback_number=CALLER), at(6))
    (late,) = [a for a in desk.actions if isinstance(a, AddNote) and a.call_sid == "CA2"]
    assert late.tags == ("callback_requested",)
    (update,) = [a for a in desk.actions if isinstance(a, UpdateCallRecord) and a.name == "callback"]
    assert update.fields.callback is True
    assert "CA2" in desk.waiting  # and it is called back in its place
    unasked = Desk(QUEUEING, POLICY)
    unasked.feed(ev(EventKind.CALL_STARTED, "CA3", 0), at(0))
    unasked.feed(leg("answered", ALICE, 2, 5, "CA3"), at(5))
    after = unasked.feed(ev(EventKind.CALLBACK_REQUESTED, "CA3", 6, callback_number=CALLER), at(6))
    assert after.call.callback is None  # an agent took the call: nothing to call back
    requested(desk)
    assert desk.feed(ev(EventKind.CALLBACK_REQUESTED, "CA1", 45, callback_number="+14155550177"), at(45)).route is None
    assert desk.calls["CA1"].callback.number == CALLER  # type: ignore[union-attr]


def test_a_request_filed_while_an_offer_rang_leaves_the_queue_time_as_it_was() -> None:
    call = Call(sid="CA9", direction="inbound", from_number=CALLER, to_number=NUMBER, first_seen=T0)
    offered = step(call, ev(EventKind.ROUTED, "CA9", 1, route="offer", agents=(ALICE,), duration=20), at(1), POLICY)
    asked = ev(EventKind.CALLBACK_REQUESTED, "CA9", 5, callback_number="+14155550177")
    outcome = step(offered.call, asked, at(5), POLICY)
    assert outcome.call.callback is not None
    assert outcome.call.callback.keyed
    assert outcome.call.queue_seconds == 0
    tickets = [a for a in outcome.actions if isinstance(a, CreateTicket)]
    assert "(a number they keyed)" in (tickets[0].ticket.comment.body if tickets[0].ticket.comment else "")


def test_the_agents_engagements_follow_each_turn() -> None:
    desk = Desk(QUEUEING, POLICY)
    requested(desk)
    freed(desk, 60)
    desk.feed(agent_leg("busy", 62), at(62))  # declined: released, not a miss
    assert desk.agents[ALICE].missed == 0
    assert busy_now(desk.agents[ALICE], at(62)) is None


def test_routing_keeps_a_turn_under_way_and_a_late_report_of_an_old_one_apart() -> None:
    policy = RoutingPolicy(queue=True)
    call = Call(sid="CA1", direction="inbound", from_number=CALLER, first_seen=T0)
    call.callback = Callback(number=CALLER, requested_at=T0, turns={1: Turn(turn=1, agent=ALICE)})
    row = Waiting("CA1", T0, queued=True, callback=CALLER, moves=2, offered_to=(BOB,), offered_until=at(60))
    snapshot = Snapshot((), (row,))
    assert route(call, "callback_next", snapshot, at(10), policy).waiting == {}  # the row decided turn 2 since
    assert route(call, "callback_next", Snapshot((), ()), at(10), policy).waiting == {}  # out of line already
    call.callback.turns = {}
    assert route(call, "callback_next", snapshot, at(10), policy).waiting == {}


def test_match_skips_a_callback_not_due_and_lets_it_wait_past_the_longest_wait() -> None:
    desk = Desk(QUEUEING, POLICY)
    alice = desk.agents[ALICE]
    late = Waiting("CA1", T0 - timedelta(hours=1), queued=True, callback=CALLER, retry_at=at(100))
    assert match([alice], [late], at(50), QUEUEING) == {}
    assert set(match([alice], [replace(late, retry_at=None)], at(50), QUEUEING)) == {"CA1"}


def test_turn_outcomes() -> None:
    turn = Turn(turn=1, agent=ALICE)
    assert turn.outcome is None
    assert replace_turn(turn, agent_status=LegStatus.NO_ANSWER).outcome == "agent_missed"
    answered = replace_turn(turn, agent_status=LegStatus.COMPLETED, answered_at=at(1))
    assert answered.outcome is None  # the dial's end decides
    assert replace_turn(answered, customer_status="completed", bridged=None).outcome == "answered"
    assert replace_turn(answered, customer_status="no-answer").outcome == "customer_missed"


def replace_turn(turn: Turn, **fields: Any) -> Turn:
    """Return a copy of a turn with some fields changed."""
    return turn.model_copy(update=fields)


@pytest.mark.parametrize(
    ("raw", "line", "allowed", "expected"),
    [
        ("+14155550123", NUMBER, (), "+14155550123"),
        ("4155550177", NUMBER, (), "+14155550177"),  # national digits, in the line's country
        ("0014155550177", NUMBER, (), "+14155550177"),  # 00 for international
        ("*14155550177", NUMBER, (), "+14155550177"),  # the keypad's * for +
        ("+442071838750", NUMBER, (), None),  # abroad
        ("+442071838750", NUMBER, ("+44",), "+442071838750"),  # abroad, allowed
        ("9005550123", NUMBER, (), None),  # premium rate
        ("12", NUMBER, (), None),  # not a number
        ("abc", NUMBER, (), None),
        ("+0", NUMBER, (), None),  # not even a number to parse
        ("anonymous", NUMBER, (), None),
        ("client:alice", NUMBER, (), None),
        (None, NUMBER, (), None),
        ("+14155550177", None, (), None),  # no line number: only the allowed prefixes
        ("+14155550177", None, ("+1",), "+14155550177"),
    ],
)
def test_which_numbers_may_be_called_back(raw: str | None, line: str | None, allowed: tuple[str, ...],
                                          expected: str | None) -> None:  # fmt: skip
    assert accepted(raw, line, allowed) == expected


def test_a_lines_region_and_a_number_spoken() -> None:
    assert region_of(NUMBER) == "US"
    assert region_of("not a number") is None
    assert region_of(None) is None
    assert spoken("+14155550123") == "0 1 2 3"


def test_callbacks_keep_places_but_do_not_fill_the_queue() -> None:
    desk = Desk(replace(QUEUEING, max_size=1), POLICY)
    requested(desk)  # CA1's request keeps its place
    desk.feed(ev(EventKind.CALL_STARTED, "CA2", 50), at(50))
    call = desk.calls["CA2"]
    assert call.placed is not None
    assert call.placed.kind == "queue"  # not overflowed: the one place taken is a callback's


def test_a_turn_and_a_callback_record_survive_their_stored_form() -> None:
    turn = PlaceCallback("CA1", 2, ALICE)
    assert (turn.key, turn.needs) == ("CA1:callback:2", ())
    assert decode(turn.kind.value, turn.key, "CA1", encode(turn), T0) == turn
    record = CreateCallRecord("CAagent", CallRecord(to_line=CALLER), shown_on="CA1")
    assert encode(record)["shown_on"] == "CA1"
    assert decode(record.kind.value, record.key, "CAagent", encode(record), T0) == record


def test_routing_a_request_already_in_line_or_closed_or_before_its_arrival() -> None:
    policy = RoutingPolicy(queue=True)
    call = Call(sid="CA1", direction="inbound", from_number=CALLER, first_seen=T0)
    call.callback = Callback(number=CALLER, requested_at=T0)
    row = Waiting("CA1", T0, queued=True, callback=CALLER, moves=1, offered_to=(BOB,), offered_until=at(60))
    assert route(call, "callback", Snapshot((), (row,)), at(10), policy).waiting == {}  # told twice: kept as is
    # A request made before the arrival (a replay's order): the arrival makes it a callback in line, not a caller.
    arrived = route(call, "offer", Snapshot((), ()), at(10), policy)
    assert arrived.waiting["CA1"].callback == CALLER
    assert arrived.events == {}
    call.callback.closed = "answered"  # its turns came first and closed it
    assert route(call, "callback", Snapshot((), ()), at(10), policy).gone == {"CA1"}


def test_a_turns_placed_call_wins_over_a_failure_told_before_it() -> None:
    desk = Desk(QUEUEING, POLICY)
    requested(desk)
    freed(desk, 60)
    desk.feed(cb(EventKind.CALLBACK_LEG, 61, leg_to=ALICE, status="failed"), at(61))  # the create's answer lost
    turn = desk.calls["CA1"].callback.turns[1]  # type: ignore[union-attr]
    assert turn.outcome == "agent_missed"
    desk.feed(agent_leg("answered", 62), at(62))  # yet Twilio placed it: alice answered
    turn = desk.calls["CA1"].callback.turns[1]  # type: ignore[union-attr]
    assert (turn.agent_sid, turn.outcome, turn.answered_at) == ("CAagent1", None, at(62))


def test_a_choice_of_voicemail_told_after_the_record_reaches_it() -> None:
    call = Call(sid="CA7", direction="inbound", from_number=CALLER, to_number=NUMBER, first_seen=T0,
                emitted=["CA7:call_record"])  # fmt: skip
    outcome = step(call, ev(EventKind.VOICEMAIL_CHOSEN, "CA7", 50, pressed="2"), at(50), POLICY)
    updates = [a for a in outcome.actions if isinstance(a, UpdateCallRecord)]
    assert [(u.name, u.fields.customer_requested_voicemail) for u in updates] == [("voicemail_chosen", True)]
    again = step(outcome.call, ev(EventKind.CALL_STATUS, "CA7", 51, status="completed"), at(51), POLICY)
    assert not [a for a in again.actions if isinstance(a, UpdateCallRecord) and a.name == "voicemail_chosen"]


def test_a_request_told_before_the_call_arrived_has_no_queue_time() -> None:
    call = Call(sid="CA8", direction="inbound", from_number=CALLER, to_number=NUMBER, first_seen=T0)
    asked = step(call, ev(EventKind.CALLBACK_REQUESTED, "CA8", 5, callback_number=CALLER), at(5), POLICY)
    ended = step(asked.call, ev(EventKind.CALL_STATUS, "CA8", 9, status="completed"), at(9), POLICY)
    (record,) = [a for a in ended.actions if isinstance(a, CreateCallRecord)]
    assert record.record.queue_time is None
    assert record.record.callback is True


def test_a_record_made_after_the_choice_of_voicemail_says_it_itself() -> None:
    desk = Desk(QUEUEING, POLICY)
    queued_caller(desk, "CA1", 0)
    desk.feed(ev(EventKind.VOICEMAIL_CHOSEN, "CA1", 40, pressed="2"), at(40))
    desk.feed(ev(EventKind.CALL_STATUS, "CA1", 45, status="completed"), at(45))  # gone at the greeting
    desk.feed(ev(EventKind.TIMER, "CA1", 170, timer="recording_wait"), at(170))
    (record,) = [a for a in desk.actions if isinstance(a, CreateCallRecord)]
    assert record.record.customer_requested_voicemail is True
    assert not [a for a in desk.actions if isinstance(a, UpdateCallRecord)]


def test_the_doctor_says_whether_the_offer_can_be_heard() -> None:
    base = {"twilio_auth_token": "t", "public_url": "https://bridge.example.com"}
    assert callbacks_check(Settings(**base)).detail.startswith("off: no line offers")
    unheard = callbacks_check(Settings(**base, callback_offer_seconds=60))
    assert not unheard.ok
    assert "TWILIO_ACCOUNT_SID" in unheard.fix
    assert "nobody hears the offer" in unheard.detail
    heard = callbacks_check(Settings(**base, callback_offer_seconds=60, twilio_account_sid="AC" + "0" * 32))
    assert heard.ok
    assert heard.detail.startswith("offered (default after 60 s); 3 attempts, 10 min apart")
    lines = f'[[line]]\nnumber = "{NUMBER}"\nname = "Support"\ncallback_offer_seconds = 90\n'
    support = callbacks_check(Settings(**base, twilio_account_sid="AC" + "0" * 32, lines=lines))
    assert "Support after 90 s" in support.detail


@pytest.mark.parametrize(
    ("value", "expected"), [("90", 90.0), ("false", None), (None, 45.0), ("0", "above 0"), ('"soon"', "above 0")]
)
def test_a_lines_callback_offer_is_its_own_or_the_global_one(value: str | None, expected: float | str | None) -> None:
    own = f"callback_offer_seconds = {value}\n" if value is not None else ""
    lines = f'[[line]]\nnumber = "{NUMBER}"\n{own}'
    base = {"twilio_auth_token": "t", "callback_offer_seconds": 45}
    if isinstance(expected, str):
        with pytest.raises(ValueError, match=expected):
            Settings(**base, lines=lines)
        return
    assert Settings(**base, lines=lines).phone_lines.first.callback_offer_seconds == expected


def test_allowed_prefixes_are_read_and_checked() -> None:
    base = {"twilio_auth_token": "t"}
    assert Settings(**base, callback_allowed_prefixes="+44, +3531").callback_allowed_prefixes == ("+44", "+3531")
    assert Settings(**base, callback_allowed_prefixes=" ").callback_allowed_prefixes is None
    with pytest.raises(ValueError, match="is not a number prefix"):
        Settings(**base, callback_allowed_prefixes="44")


def test_a_turns_end_told_before_its_agent_waits_for_it() -> None:
    desk = Desk(QUEUEING, replace(POLICY, api="tickets"))
    requested(desk)
    desk.feed(dial_end(120, turn=1, duration=30), at(120))  # a replay's order: the dial's end first
    assert desk.calls["CA1"].callback.closed == "answered"  # type: ignore[union-attr]
    assert not [a for a in desk.actions if isinstance(a, AddVoiceComment)]
    desk.feed(agent_leg("answered", 121), at(121))
    (comment,) = [a for a in desk.actions if isinstance(a, AddVoiceComment)]
    assert (comment.voice_comment.answered_by_id, comment.voice_comment.started_at) == (1001, "2026-12-07T09:02:01Z")
