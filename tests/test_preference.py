"""Routing that knows the customer, pure: which open ticket wins, priority and aging, the caller's agent first."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bridge.core import estimate
from bridge.core.action_codec import decode, encode
from bridge.core.actions import DisplayTicket, DisplayUser, LookUpCustomer
from bridge.core.calls import Call, Policy, step
from bridge.core.events import CallEvent, EventKind
from bridge.core.lines import Line, Lines
from bridge.core.preference import Customer, OpenTicket, candidates, is_priority, priority
from bridge.core.presence import Agent, PresencePolicy, choose
from bridge.core.routing import PRIORITY, Preferred, RoutingPolicy, Waiting, match, order, positions, rank
from tests.routing_kit import T0, TEAM, Desk

CALLER, NUMBER = "+14155550123", "+16505550100"
ALICE, BOB = "client:alice", "client:bob"
VIP = RoutingPolicy(priority_organizations=frozenset({7001}), priority_tags=frozenset({"vip"}))


def at(seconds: float) -> datetime:
    """Return T0 plus some seconds."""
    return T0 + timedelta(seconds=seconds)


def ticket(number: int, assignee: int | None, updated: float, status: str = "open") -> OpenTicket:
    """Build an open ticket updated `updated` seconds after T0."""
    return OpenTicket(id=number, status=status, assignee_id=assignee, updated_at=at(updated))


def ev(kind: EventKind, call_sid: str = "CA1", seconds: float = 0, **fields: Any) -> CallEvent:
    """An event of the inbound call `call_sid` from CALLER."""
    base: dict[str, Any] = {"direction": "inbound", "from_number": CALLER, "to_number": NUMBER}
    return CallEvent(kind=kind, call_sid=call_sid, at=at(seconds), **{**base, **fields})


def leg(status: str, who: str, seq: int, seconds: float, call_sid: str = "CA1") -> CallEvent:
    """A status callback of the leg ringing `who`."""
    sid = f"CL{call_sid}{who.split(':')[-1]}"
    return CallEvent(kind=EventKind.LEG_STATUS, call_sid=call_sid, at=at(seconds), leg_sid=sid, leg_to=who,
                     status=status, sequence=seq)  # fmt: skip


# --- which ticket wins, and who is a priority customer ----------------------------------------------------


def test_the_most_recently_updated_open_ticket_of_an_agent_of_the_line_wins() -> None:
    customer = Customer(
        user_id=2001,
        tickets=(
            ticket(1, 1001, 10, "pending"),
            ticket(2, 1002, 20),
            ticket(3, 1001, 30, "solved"),  # not open
            ticket(4, 1003, 40),  # carol: not an agent of the line
            ticket(5, None, 50, "new"),  # nobody's
            ticket(6, 1001, 20),  # as recent as bob's: the higher id wins the tie
            OpenTicket(id=7, status="open", assignee_id=1002),  # never updated: last
        ),
    )
    assert candidates(customer, TEAM, None) == (
        Preferred(6, ALICE), Preferred(2, BOB), Preferred(1, ALICE), Preferred(7, BOB)
    )  # fmt: skip
    assert candidates(customer, TEAM, frozenset({BOB})) == (Preferred(2, BOB), Preferred(7, BOB))
    assert candidates(None, TEAM, None) == ()


def test_a_priority_customer_is_named_by_organization_or_tag() -> None:
    assert is_priority(Customer(user_id=1, organization_id=7001), VIP)
    assert is_priority(Customer(user_id=1, tags=("gold", "vip")), VIP)
    assert not is_priority(Customer(user_id=1, organization_id=7002, tags=("gold",)), VIP)
    assert not is_priority(None, VIP)
    assert priority(Customer(user_id=1, tags=("vip",)), VIP) == PRIORITY
    assert priority(Customer(user_id=1), VIP) == 0
    assert not RoutingPolicy().knows_customers
    assert VIP.knows_customers
    assert RoutingPolicy(preferred_seconds=10).knows_customers


# --- the queue's order: priority first, FIFO within a rank, aging -----------------------------------------


def test_priority_callers_wait_ahead_fifo_within_a_rank_and_ordinary_ones_age_into_it() -> None:
    ordinary = Waiting("CA1", at(0))
    vip_early = Waiting("CA2", at(10), priority=PRIORITY)
    vip_late = Waiting("CA3", at(100), priority=PRIORITY)
    line = [ordinary, vip_late, vip_early]
    assert positions(line, at(50)) == {"CA2": 1, "CA3": 2, "CA1": 3}
    # Aged 120 s at 130 s: the ordinary caller ranks as a priority one, by arrival: ahead of both.
    assert rank(ordinary, at(130), aging=120) == PRIORITY
    assert rank(ordinary, at(119), aging=120) == 0
    assert rank(ordinary, at(130), aging=0) == 0
    assert positions(line, at(130), aging=120) == {"CA1": 1, "CA2": 2, "CA3": 3}
    assert order(vip_early) < order(ordinary)


def test_an_ordinary_caller_is_answered_under_a_steady_stream_of_priority_callers_once_aged() -> None:
    """One agent, a priority caller every 20 s each taking 30 s: the ordinary caller is served after aging."""

    def served_at(aging: float) -> float | None:
        policy = RoutingPolicy(aging=aging)
        waiting = {"ORD": Waiting("ORD", at(5))}
        free_at, second = 0.0, 0
        while second < 900:
            if second % 20 == 0:
                waiting[f"VIP{second}"] = Waiting(f"VIP{second}", at(second), priority=PRIORITY)
            if second >= free_at:
                agent = Agent(ALICE, 1001, chosen_at=T0, idle_since=T0)
                offers = match([agent], list(waiting.values()), at(second), policy)
                (taken,) = offers
                if taken == "ORD":
                    return second - 5.0
                del waiting[taken]
                free_at = second + 30
            second += 1
        return None

    assert served_at(0) is None  # without aging, never within 15 minutes
    waited = served_at(120)
    assert waited is not None
    assert 120 <= waited <= 150  # aged, it is next once the call in progress ends


# --- the caller's own agent first ---------------------------------------------------------------------------


def test_a_caller_with_a_preferred_agent_rings_them_alone_for_the_preferred_time() -> None:
    policy = RoutingPolicy(preferred_seconds=10)
    alice, bob = Agent(ALICE, 1001, chosen_at=T0, idle_since=T0), Agent(BOB, 1002, chosen_at=T0, idle_since=at(-5))
    caller = Waiting("CA1", at(0), preferred=(Preferred(9, "client:carol"), Preferred(7, BOB)))
    offer = match([alice, bob], [caller], at(0), policy)["CA1"]
    assert (offer.agents, offer.seconds, offer.ticket) == ((BOB,), 10, 7)
    # bob busy: the usual distribution (ring all, for DIAL_TIMEOUT).
    busy = choose(bob, "away", T0, by="test")
    offer = match([alice, busy], [caller], at(0), policy)["CA1"]
    assert (offer.agents, offer.ticket) == ((ALICE,), None)
    # Off for the line: the usual distribution too.
    offer = match([alice, bob], [caller], at(0), RoutingPolicy())["CA1"]
    assert offer.agents == (bob.identity, alice.identity)
    assert offer.ticket is None


def knowing(preferred: int = 10, **line: Any) -> Desk:
    """Return a desk whose one line rings the caller's own agent first and logs the call on their open ticket."""
    routing = RoutingPolicy(
        queue=True, max_wait=300, max_size=5, presence=PresencePolicy(), preferred_seconds=preferred
    )
    own = Line(log_on_open_ticket=True, **line)
    policy = Policy(agents=TEAM, api="tickets", queue_max_wait=300, lines=Lines((own,)))
    return Desk(routing, policy)


BOBS = Customer(user_id=2001, tickets=(ticket(77, 1002, 10),))


def test_the_preferred_agent_is_shown_the_open_ticket_and_the_call_goes_on_it() -> None:
    desk = knowing()
    desk.feed(ev(EventKind.CUSTOMER_FOUND, customer=BOBS, direction=None, from_number=None, to_number=None), at(0))
    desk.feed(ev(EventKind.CALL_STARTED), at(0))
    call = desk.calls["CA1"]
    assert call.offers[0].agents == [BOB]
    assert (call.open_ticket, call.open_ticket_agent) == (77, BOB)
    desk.feed(leg("ringing", BOB, 1, 1), at(1))
    assert DisplayTicket("CA1", 1002, 77) in desk.actions
    desk.feed(leg("answered", BOB, 2, 3), at(3))
    (create,) = [action for action in desk.actions if action.kind.value == "create_ticket"]
    assert create.existing_ticket_id == 77  # type: ignore[union-attr]


def test_data_that_comes_late_ranks_a_queued_caller_and_brings_their_agent_at_the_next_offer() -> None:
    desk = knowing()
    desk.routing = replace(desk.routing, priority_tags=frozenset({"vip"}))
    for who in list(desk.agents):
        desk.agents[who] = choose(desk.agents[who], "away", T0, by="test")
    desk.feed(ev(EventKind.CALL_STARTED, "CA1", 0), at(0))
    desk.feed(ev(EventKind.CALL_STARTED, "CA2", 5, from_number="+14155550199"), at(5))
    assert positions(desk.waiting.values()) == {"CA1": 1, "CA2": 2}
    outcome = desk.feed(ev(EventKind.CUSTOMER_FOUND, "CA2", 6, customer=Customer(user_id=2002, tags=("vip",))), at(6))
    assert outcome.route == "refresh"
    assert desk.waiting["CA2"].priority == PRIORITY
    assert positions(desk.waiting.values()) == {"CA2": 1, "CA1": 2}
    desk.feed(ev(EventKind.CUSTOMER_FOUND, "CA1", 7, customer=BOBS), at(7))
    assert desk.waiting["CA1"].preferred == (Preferred(77, BOB),)
    # bob frees up: CA2, ahead, takes him (its priority); then alice frees up and CA1 rings her, not its agent.
    desk.agents[BOB] = choose(desk.agents[BOB], "available", at(10), by="test")
    desk.free_up(at(10))
    assert desk.waiting["CA2"].offered_to == (BOB,)
    assert desk.waiting["CA1"].offered_to == ()


def test_a_queued_caller_moved_to_their_own_agent_rings_them_with_the_ticket() -> None:
    desk = knowing()
    for who in list(desk.agents):
        desk.agents[who] = choose(desk.agents[who], "away", T0, by="test")
    desk.feed(ev(EventKind.CALL_STARTED), at(0))
    desk.feed(ev(EventKind.CUSTOMER_FOUND, seconds=1, customer=BOBS), at(1))
    desk.agents[BOB] = choose(desk.agents[BOB], "available", at(10), by="test")
    desk.agents[ALICE] = choose(desk.agents[ALICE], "available", at(10), by="test")
    desk.free_up(at(10))
    row = desk.waiting["CA1"]
    assert (row.offered_to, row.offered_ticket, row.preferred) == ((BOB,), 77, ())
    desk.feed(ev(EventKind.RESUMED, seconds=11, sequence=1), at(11))
    call = desk.calls["CA1"]
    assert (call.offers[-1].agents, call.offers[-1].seconds, call.open_ticket) == ([BOB], 10, 77)


def test_a_look_up_for_a_call_not_waiting_asks_nothing_of_routing() -> None:
    call = Call(sid="CA1", direction="inbound", from_number=CALLER, routed=True)
    outcome = step(call, ev(EventKind.CUSTOMER_FOUND, customer=BOBS), at(0), Policy(agents=TEAM))
    assert outcome.route is None
    assert outcome.call.customer == BOBS


def test_a_pop_to_another_agent_than_the_preferred_shows_the_caller() -> None:
    desk = knowing(preferred=0)
    desk.feed(ev(EventKind.CALL_STARTED), at(0))
    # Its data comes while its first offer rings (no row in the queue): nothing changes until the next offer.
    outcome = desk.feed(ev(EventKind.CUSTOMER_FOUND, seconds=1, customer=BOBS), at(1))
    assert outcome.route == "refresh"
    assert "CA1" not in desk.waiting
    desk.feed(leg("ringing", ALICE, 1, 1), at(1))
    assert DisplayUser("CA1", 1001, CALLER) in desk.actions
    assert desk.calls["CA1"].open_ticket is None


def test_the_new_actions_keep_their_stored_form() -> None:
    for action in (LookUpCustomer("CA1", CALLER), DisplayTicket("CA1", 1002, 77), DisplayTicket("CA1", 1002)):
        assert decode(action.kind.value, action.key, "CA1", encode(action), T0) == action
    assert LookUpCustomer("CA1", CALLER).needs == (f"tel:{CALLER}:user",)
    assert DisplayTicket("CA1", 1002, 77).needs == ()


# --- the wait to expect -------------------------------------------------------------------------------------


def test_handle_times_are_kept_per_agent_when_their_call_ends() -> None:
    talking = Agent(ALICE, 1001, busy="on_call", busy_call="CA1", busy_since=at(0))
    done = estimate.handled(talking, replace(talking, busy=None, busy_call=None), at(200), wrap_up=40)
    assert done.handled == (240.0,)
    still = estimate.handled(talking, talking, at(200), wrap_up=0)  # another call's end: nothing kept
    assert still.handled == ()
    ringing = Agent(ALICE, 1001, busy="ringing", busy_since=at(0))
    assert estimate.handled(ringing, replace(ringing, busy=None), at(10), 0).handled == ()
    full = replace(done, handled=tuple(float(n) for n in range(estimate.HANDLE_SAMPLES)))
    again = estimate.handled(replace(full, busy="on_call", busy_since=at(0)), full, at(5), 0)
    assert len(again.handled) == estimate.HANDLE_SAMPLES
    assert again.handled[-1] == 5.0
    assert estimate.handle_time([done]) is None  # too few
    agents = [replace(done, handled=(100.0, 200.0, 300.0)), Agent(BOB, 1002, handled=(250.0, 5000.0))]
    assert estimate.handle_time(agents) == 250.0


def test_the_estimate_is_when_the_callers_agent_frees_up_from_what_each_agent_has_left() -> None:
    handled = (240.0,) * 5
    policy = PresencePolicy()
    # alice talked 200 s of a typical 240; bob is in wrap-up for 30 s more; carol is ringing for someone ahead.
    alice = Agent(ALICE, 1001, busy="on_call", busy_since=at(-200), handled=handled)
    bob = Agent(BOB, 1002, busy="wrap_up", busy_since=at(-10), busy_until=at(30))
    carol = Agent("client:carol", 1003, busy="ringing", busy_since=at(0), busy_until=at(20))
    away = choose(Agent("client:dan", 1004, handled=handled), "away", T0, by="test")
    team = [alice, bob, carol, away]
    assert estimate.remaining(alice, at(0), 240) == 40
    assert estimate.remaining(replace(alice, busy_since=at(-900)), at(0), 240) == 240 * estimate.RESIDUAL_FLOOR
    assert estimate.remaining(bob, at(0), 240) == 30
    assert estimate.remaining(carol, at(0), 240) == 240
    assert estimate.remaining(Agent("client:erin", 1005), at(0), 240) == 0
    # Ends at 30 (bob), 40 (alice), 240 (carol), then 270 (bob again): place 4 waits 270 s.
    assert [estimate.for_line(place, team, at(0), policy) for place in (1, 2, 3, 4)] == [30, 40, 240, 270]
    assert estimate.for_line(1, [away], at(0), policy) is None  # nobody working
    assert estimate.for_line(0, team, at(0), policy) is None
    assert estimate.for_line(1, [bob], at(0), policy) is None  # too few handle times
    assert estimate.announced(None) is None
    assert estimate.announced(estimate.ANNOUNCE_FROM - 1) is None  # short: only the place is said
    assert estimate.announced(270) == "about five minutes"


def test_a_wait_is_said_as_people_round_it() -> None:
    assert estimate.spoken(20) == "about one minute"
    assert estimate.spoken(100) == "about two minutes"
    assert estimate.spoken(299) == "about five minutes"
    assert estimate.spoken(20 * 60 + 29) == "about twenty minutes"
    assert estimate.spoken(21 * 60) == "more than twenty minutes"
