"""The router with the state machine, purely: arrivals, offers, the queue, moves, timeouts and abandons.

`Desk` plays the store's part as the ingest plan does it: fold the event, hand what the call asks of routing
(and its agents' changes) to the router with a snapshot, fold each ROUTED event into its call, keep the rows.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bridge.core.actions import CreateCallRecord, CreateTicket, MoveCall, Timer
from bridge.core.calls import QUEUE_WAIT, Policy, engagements, step
from bridge.core.events import CallEvent, EventKind
from bridge.core.lines import Line, Lines
from bridge.core.presence import PresencePolicy, busy_now, choose
from bridge.core.routing import RoutingPolicy
from tests.routing_kit import T0, TEAM, Desk

CALLER, NUMBER = "+14155550123", "+16505550100"


def at(seconds: float) -> datetime:
    """Return T0 plus some seconds."""
    return T0 + timedelta(seconds=seconds)


def ev(kind: EventKind, call_sid: str = "CA1", seconds: float = 0, **fields: Any) -> CallEvent:
    """An event of the inbound call `call_sid` from CALLER."""
    base: dict[str, Any] = {"direction": "inbound", "from_number": CALLER, "to_number": NUMBER}
    return CallEvent(kind=kind, call_sid=call_sid, at=at(seconds), **{**base, **fields})


def leg(status: str, who: str, seq: int, seconds: float, call_sid: str = "CA1", **fields: Any) -> CallEvent:
    """A status callback of the leg ringing `who` (one leg per agent and call)."""
    sid = f"CL{call_sid}{who.split(':')[-1]}"
    return CallEvent(kind=EventKind.LEG_STATUS, call_sid=call_sid, at=at(seconds), leg_sid=sid, leg_to=who,
                     status=status, sequence=seq, **fields)  # fmt: skip


def dial_ended(seconds: float, call_sid: str = "CA1", **fields: Any) -> CallEvent:
    """The end of a ring (the dial action) with the caller still there."""
    base = {"status": "in-progress", "dial_status": "no-answer", "dial_bridged": False}
    return ev(EventKind.DIAL_ENDED, call_sid, seconds, **{**base, **fields})


QUEUEING = RoutingPolicy(queue=True, max_wait=300, max_size=2, presence=PresencePolicy())


def test_an_arrival_rings_every_free_agent_and_holds_them() -> None:
    desk = Desk(QUEUEING)
    outcome = desk.feed(ev(EventKind.CALL_STARTED), at(0))
    assert outcome.route == "offer"
    call = desk.calls["CA1"]
    assert call.placed is not None
    assert call.placed.kind == "offer"
    assert call.offers[-1].agents == ["client:alice", "client:bob"]
    assert all(busy_now(agent, at(1)) == "ringing" for agent in desk.agents.values())
    assert desk.waiting == {}  # ringing at arrival is not waiting in the queue


def test_an_answered_offer_makes_the_agent_on_call_and_frees_the_other() -> None:
    desk = Desk(QUEUEING)
    desk.feed(ev(EventKind.CALL_STARTED), at(0))
    desk.feed(leg("ringing", "client:alice", 1, 1), at(1))
    desk.feed(leg("ringing", "client:bob", 1, 1), at(1))
    desk.feed(leg("answered", "client:alice", 2, 5), at(5))
    desk.feed(leg("canceled", "client:bob", 2, 5), at(5))
    assert desk.agents["client:alice"].busy == "on_call"
    assert busy_now(desk.agents["client:bob"], at(6)) is None
    desk.feed(leg("completed", "client:alice", 3, 65, duration=60), at(65))
    assert busy_now(desk.agents["client:alice"], at(65)) is None
    assert desk.agents["client:alice"].idle_since == at(65)


def test_with_nobody_free_the_caller_waits_in_the_queue_with_a_timer() -> None:
    desk = Desk(QUEUEING)
    for agent in list(desk.agents):
        desk.agents[agent] = choose(desk.agents[agent], "away", T0, by="test")
    desk.feed(ev(EventKind.CALL_STARTED), at(0))
    call = desk.calls["CA1"]
    assert call.placed is not None
    assert call.placed.kind == "queue"
    assert desk.waiting["CA1"].queued
    timers = [a for a in desk.actions if isinstance(a, Timer)]
    assert [(t.name, t.due) for t in timers] == [(QUEUE_WAIT, at(300))]


def queued_caller(desk: Desk, call_sid: str = "CA1", seconds: float = 0) -> None:
    """Make every agent away, let a call arrive and wait, then bring the agents back."""
    saved = dict(desk.agents)
    for agent in list(desk.agents):
        desk.agents[agent] = choose(desk.agents[agent], "away", T0, by="test")
    desk.feed(ev(EventKind.CALL_STARTED, call_sid, seconds), at(seconds))
    desk.agents = saved


def test_an_agent_freeing_up_moves_the_longest_waiting_caller_to_ring_them() -> None:
    desk = Desk(replace(QUEUEING, strategy="longest_idle"))
    queued_caller(desk, "CA1", 0)
    queued_caller(desk, "CA2", 10)
    desk.agents["client:bob"] = choose(desk.agents["client:bob"], "away", T0, by="test")
    desk.free_up(at(20))
    assert MoveCall("CA1", 1) in desk.actions
    assert desk.waiting["CA1"].offered_to == ("client:alice",)
    assert desk.calls["CA1"].offers == []  # it learns of the offer when it comes back
    assert desk.calls["CA2"].offers == []
    # The move lands: the call comes back asking, its agent still held for it: it rings her now.
    outcome = desk.feed(ev(EventKind.RESUMED, "CA1", 21, sequence=1), at(21))
    assert outcome.route == "resume"
    first = desk.calls["CA1"]
    assert first.offers[-1].agents == ["client:alice"]
    assert first.offers[-1].moved
    assert first.resumed == 1
    desk.feed(leg("answered", "client:alice", 2, 25), at(25))
    assert "CA1" not in desk.waiting
    assert desk.calls["CA1"].queue_time() == 21  # in the queue from arrival to the move's landing


def test_a_move_whose_agents_were_let_go_is_decided_again() -> None:
    desk = Desk(replace(QUEUEING, strategy="longest_idle"))
    queued_caller(desk, "CA1", 0)
    desk.free_up(at(20))
    # Alice's hold ran out before the call came back: routing decides afresh (bob is free, idle longest).
    desk.agents["client:alice"] = replace(desk.agents["client:alice"], busy_until=at(21))
    desk.feed(ev(EventKind.RESUMED, "CA1", 60, sequence=1), at(60))
    assert desk.calls["CA1"].offers[-1].agents in (["client:bob"], ["client:alice"])
    assert not desk.calls["CA1"].offers[-1].moved


def test_the_queue_wait_running_out_moves_the_caller_to_voicemail() -> None:
    desk = Desk(QUEUEING)
    queued_caller(desk, "CA1", 0)
    for agent in list(desk.agents):
        desk.agents[agent] = choose(desk.agents[agent], "offline", T0, by="test")
    desk.feed(ev(EventKind.TIMER, "CA1", 300, timer=QUEUE_WAIT), at(300))
    call = desk.calls["CA1"]
    assert call.placed is not None
    assert (call.placed.kind, call.placed.reason) == ("voicemail", "exceeded_queue_time")
    assert call.voicemail_offered
    assert MoveCall("CA1", 1) in desk.actions
    assert "CA1" not in desk.waiting


def test_a_caller_who_hangs_up_in_the_queue_is_a_missed_call_with_their_place() -> None:
    desk = Desk(QUEUEING)
    queued_caller(desk, "CA0", 0)
    queued_caller(desk, "CA1", 5)
    desk.feed(ev(EventKind.QUEUE_LEFT, "CA1", 65, queue_result="hung_up"), at(65))
    desk.feed(ev(EventKind.CALL_STATUS, "CA1", 65, status="completed", duration=65), at(65))
    call = desk.calls["CA1"]
    assert call.abandoned_position == 2
    assert "CA1" not in desk.waiting
    assert "CA0" in desk.waiting
    tickets = [a for a in desk.actions if isinstance(a, CreateTicket) and a.call_sid == "CA1"]
    assert tickets[0].ticket.tags == ["missed_call"]
    assert tickets[0].ticket.comment is not None
    assert "waited 60 s in the queue, number 2 in line," in tickets[0].ticket.comment.body
    (record,) = [a for a in desk.actions if isinstance(a, CreateCallRecord) and a.call_sid == "CA1"]
    wire = record.record.wire()
    assert wire["completion_status"] == "abandoned_in_queue"
    assert (wire["wait_time"], wire["queue_time"], wire["call_abandoned_position"]) == (60, 60, 2)


def test_a_full_queue_sends_a_new_caller_to_voicemail_as_overflowed() -> None:
    desk = Desk(QUEUEING)
    queued_caller(desk, "CA0", 0)
    queued_caller(desk, "CA9", 1)
    queued_caller(desk, "CA1", 2)
    call = desk.calls["CA1"]
    assert call.placed is not None
    assert (call.placed.kind, call.placed.reason) == ("voicemail", "overflowed")
    assert not [a for a in desk.actions if isinstance(a, MoveCall)]  # never queued: voicemail answers its arrival


def test_one_at_a_time_offers_the_next_agent_then_queues_then_voicemail_without_a_queue() -> None:
    desk = Desk(replace(QUEUEING, strategy="longest_idle"))
    desk.agents["client:bob"] = replace(desk.agents["client:bob"], idle_since=at(-100))
    desk.feed(ev(EventKind.CALL_STARTED), at(0))
    assert desk.calls["CA1"].offers[-1].agents == ["client:bob"]
    desk.feed(leg("no-answer", "client:bob", 2, 15), at(15))
    desk.feed(dial_ended(15), at(15))
    assert desk.calls["CA1"].offers[-1].agents == ["client:alice"]
    assert desk.agents["client:bob"].missed == 1
    desk.feed(leg("no-answer", "client:alice", 2, 30), at(30))
    desk.feed(dial_ended(30), at(30))
    call = desk.calls["CA1"]
    assert call.placed is not None
    assert call.placed.kind == "queue"
    assert not call.over
    assert call.dial_status is None

    plain = Desk(RoutingPolicy(strategy="longest_idle"))
    plain.feed(ev(EventKind.CALL_STARTED), at(0))
    plain.feed(dial_ended(15), at(15))
    plain.feed(dial_ended(30), at(30))
    call = plain.calls["CA1"]
    assert call.placed is not None
    assert call.placed.kind == "voicemail"
    assert call.voicemail_offered
    assert call.dial_status == "no-answer"


def test_a_move_that_finds_the_call_ended_ends_it_and_lets_its_agent_go() -> None:
    desk = Desk(QUEUEING)
    queued_caller(desk, "CA1", 0)
    desk.free_up(at(20))
    desk.feed(ev(EventKind.MOVE_FAILED, "CA1", 21, status="gone"), at(21))
    assert desk.calls["CA1"].over
    assert "CA1" not in desk.waiting
    assert all(busy_now(agent, at(22)) is None for agent in desk.agents.values())


def test_a_move_twilio_refused_lets_its_agent_go_and_moves_the_caller_again_to_another() -> None:
    desk = Desk(replace(QUEUEING, strategy="longest_idle"))
    queued_caller(desk, "CA1", 0)
    desk.agents["client:bob"] = choose(desk.agents["client:bob"], "away", T0, by="test")
    desk.free_up(at(20))
    assert desk.waiting["CA1"].offered_to == ("client:alice",)
    desk.feed(ev(EventKind.MOVE_FAILED, "CA1", 36, status="refused"), at(36))
    # Still in the queue, where an offer in place would ring nobody: alice is free, the caller not offered.
    call = desk.calls["CA1"]
    assert call.placed is not None
    assert call.placed.kind == "queue"
    assert busy_now(desk.agents["client:alice"], at(36)) is None
    assert not desk.waiting["CA1"].being_offered(at(36))
    assert desk.actions.count(MoveCall("CA1", 2)) == 0  # not to alice again at once
    desk.agents["client:bob"] = choose(desk.agents["client:bob"], "available", at(40), by="test")
    desk.free_up(at(40))
    assert MoveCall("CA1", 2) in desk.actions
    assert desk.waiting["CA1"].offered_to == ("client:bob",)


def test_a_caller_whose_move_was_refused_is_moved_to_the_same_agent_a_minute_later() -> None:
    desk = Desk(replace(QUEUEING, strategy="longest_idle"), team={"client:alice": 1001})
    queued_caller(desk, "CA1", 0)
    desk.free_up(at(20))
    desk.feed(ev(EventKind.MOVE_FAILED, "CA1", 36, status="refused"), at(36))
    desk.free_up(at(60))
    assert MoveCall("CA1", 2) not in desk.actions
    desk.free_up(at(97))
    assert MoveCall("CA1", 2) in desk.actions


def test_engagements_of_a_call_out_follow_its_agent() -> None:
    start = CallEvent(kind=EventKind.CALL_STARTED, call_sid="CA2", at=T0, direction="outbound",
                      from_number="client:alice", to_number=CALLER)  # fmt: skip
    outcome = step(None, start, T0, Policy(agents=TEAM))
    assert engagements(outcome.call) == {"client:alice": "talking"}
    assert outcome.route is None


def test_each_line_keeps_its_own_queue_and_longest_wait() -> None:
    """Two lines: a caller's line decides their queue (its size counted alone) and their longest wait."""
    sales_number = "+16505550101"
    support = Line(key="support", number=NUMBER, routing=replace(QUEUEING, max_size=1, max_wait=600))
    sales = Line(key="sales", number=sales_number, routing=replace(QUEUEING, max_size=1, max_wait=120))
    lines = Lines((support, sales), configured=True)
    routing = lines.routing(QUEUEING, tuple(TEAM))
    desk = Desk(routing, Policy(agents=TEAM, api="calls", lines=lines))
    for agent in list(desk.agents):
        desk.agents[agent] = choose(desk.agents[agent], "away", T0, by="test")
    desk.feed(ev(EventKind.CALL_STARTED, "CA1", 0), at(0))
    desk.feed(ev(EventKind.CALL_STARTED, "CA2", 1, to_number=sales_number), at(1))
    desk.feed(ev(EventKind.CALL_STARTED, "CA3", 2), at(2))
    assert {sid: row.line for sid, row in desk.waiting.items()} == {"CA1": "support", "CA2": "sales"}
    full = desk.calls["CA3"]  # support's queue holds one: CA1; sales' caller does not count
    assert full.placed is not None
    assert (full.placed.kind, full.no_agent) == ("voicemail", "overflowed")
    timers = {action.call_sid: action.due for action in desk.actions if isinstance(action, Timer)}
    assert timers == {"CA1": at(600), "CA2": at(121)}  # each line's QUEUE_MAX_WAIT_SECONDS, from arrival


def test_a_caller_twilio_let_out_of_a_full_queue_is_offered_again() -> None:
    """QueueResult queue-full (or error) with the caller still there: routing decides where they go now."""
    desk = Desk(QUEUEING)
    queued_caller(desk)
    outcome = desk.feed(ev(EventKind.QUEUE_LEFT, seconds=2, queue_result="full"), at(2))
    assert outcome.route == "offer"


def test_a_queue_wait_running_out_for_a_caller_already_gone_asks_nothing() -> None:
    """The caller hung up (their final status came first): the wait's timer asks routing for nothing."""
    desk = Desk(QUEUEING)
    queued_caller(desk)
    desk.feed(ev(EventKind.CALL_STATUS, seconds=10, status="completed", sequence=1), at(10))
    outcome = desk.feed(ev(EventKind.TIMER, seconds=300, timer=QUEUE_WAIT), at(300))
    assert outcome.route is None


def test_a_second_queueing_keeps_the_stay_it_is_in() -> None:
    """Routed to the queue twice in one stay (a decision replayed): the stay started at the first."""
    routed = [ev(EventKind.ROUTED, seconds=s, route="queue") for s in (1, 5)]
    call = step(None, ev(EventKind.CALL_STARTED), at(0), Policy()).call
    for event in routed:
        call = step(call, event, event.at, Policy()).call
    assert call.queue_since == at(1)


def test_a_call_out_from_a_phone_engages_no_agent() -> None:
    """Only a browser or SIP agent's call out makes them busy; a call from a plain number engages nobody."""
    call = step(None, CallEvent(kind=EventKind.CALL_STARTED, call_sid="CA9", at=T0, direction="outbound",
                                from_number="+16505550111", to_number=CALLER), T0, Policy()).call  # fmt: skip
    assert engagements(call) == {}
