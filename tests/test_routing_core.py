"""Presence and routing, pure: who may be offered a call, whom an offer rings, where a caller nobody takes goes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.core import presence as p
from bridge.core.presence import Agent, PresencePolicy
from bridge.core.routing import (
    RING_ALL_MAX,
    Missed,
    NoAgent,
    Offer,
    RoutingPolicy,
    Wait,
    Waiting,
    match,
    order,
    place,
    positions,
)

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
POLICY = PresencePolicy(wrap_up_seconds=30, presence_timeout=60, missed_offers_away=2)


def at(seconds: float) -> datetime:
    """Return T0 plus some seconds."""
    return T0 + timedelta(seconds=seconds)


def agent(name: str, number: int = 1, **fields: object) -> Agent:
    """Build an available agent."""
    return replace(Agent(identity=f"client:{name}", zendesk_id=number, chosen_at=T0, idle_since=T0), **fields)


# --- presence ------------------------------------------------------------------------------------------


def test_an_available_free_agent_is_offerable_and_says_available() -> None:
    alice = agent("alice")
    assert p.offerable(alice, T0, POLICY)
    assert p.status(alice, T0, POLICY) == "available"
    assert p.since(alice, T0, POLICY) == T0


@pytest.mark.parametrize("chosen", ["away", "offline"])
def test_an_agent_who_chose_away_or_offline_is_not_offered_calls(chosen: p.Chosen) -> None:
    alice = p.choose(agent("alice"), chosen, at(5), by="alice")
    assert not p.offerable(alice, at(5), POLICY)
    assert p.status(alice, at(5), POLICY) == chosen
    assert alice.chosen_at == at(5)
    assert alice.chosen_by == "alice"


def test_choosing_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="not a status"):
        p.choose(agent("alice"), "lunch", T0, by="alice")  # type: ignore[arg-type]


def test_choosing_the_same_status_again_keeps_since_when() -> None:
    alice = p.choose(agent("alice"), "away", at(5), by="alice")
    assert p.choose(alice, "away", at(50), by="cli").chosen_at == at(5)


def test_coming_back_to_available_starts_idle_time_and_forgets_misses() -> None:
    alice = p.choose(replace(agent("alice"), missed=3), "away", at(5), by="alice")
    back = p.choose(alice, "available", at(100), by="alice")
    assert back.idle_since == at(100)
    assert back.missed == 0
    assert back.reason is None


def test_an_agent_without_idle_time_gets_it_when_choosing() -> None:
    fresh = Agent(identity="+15550001111", zendesk_id=9)
    assert p.choose(fresh, "available", T0, by="cli").idle_since == T0


def test_a_silent_softphone_makes_its_agent_offline_after_the_timeout() -> None:
    alice = p.seen(agent("alice"), T0, POLICY)
    assert p.offerable(alice, at(60), POLICY)
    assert not p.offerable(alice, at(61), POLICY)
    assert p.status(alice, at(61), POLICY) == "offline"
    assert p.since(alice, at(61), POLICY) == at(60)


def test_an_agent_who_never_had_a_softphone_keeps_their_choice() -> None:
    phone = Agent(identity="+15550001111", zendesk_id=9)
    assert p.offerable(phone, at(10_000), POLICY)


def test_a_softphone_that_comes_back_is_idle_from_then() -> None:
    alice = p.seen(agent("alice"), T0, POLICY)
    back = p.seen(alice, at(500), POLICY)
    assert p.offerable(back, at(500), POLICY)
    assert back.idle_since == at(500)
    assert p.seen(back, at(510), POLICY).idle_since == at(500)  # still there: idle time goes on


def test_a_softphone_that_says_goodbye_is_offline_at_once() -> None:
    alice = p.went_away(p.seen(agent("alice"), T0, POLICY), at(5))
    assert p.status(alice, at(5), POLICY) == "offline"
    assert p.since(alice, at(6), POLICY) == at(5)
    assert p.offerable(p.seen(alice, at(7), POLICY), at(7), POLICY)


def test_zendesk_away_or_offline_keeps_calls_from_the_agent() -> None:
    for status in ("away", "offline"):
        assert not p.offerable(replace(agent("alice"), zendesk=status), T0, POLICY)
    assert p.offerable(replace(agent("alice"), zendesk="available"), T0, POLICY)


def test_zendesks_word_stands_beside_the_agents_choice_and_never_overwrites_it() -> None:
    alice = p.zendesk_said(agent("alice"), "away", at(5))
    assert (alice.chosen, alice.zendesk, alice.zendesk_at) == ("available", "away", at(5))
    assert p.status(alice, at(6), POLICY) == "away"
    assert p.since(alice, at(6), POLICY) == at(5)
    assert p.zendesk_said(alice, "away", at(9)) is alice  # the same word again changes nothing
    chose_offline = p.choose(alice, "offline", at(7), by="alice")
    assert p.status(chose_offline, at(8), POLICY) == "offline"  # her own choice is what she is
    back = p.zendesk_said(alice, "available", at(20))
    assert p.offerable(back, at(20), POLICY)
    assert back.idle_since == at(20)  # free to take a call from now, for longest-idle routing
    unknown = p.zendesk_said(alice, None, at(30))  # the bridge can no longer read it: its own presence counts
    assert p.offerable(unknown, at(30), POLICY)


def test_a_reserved_agent_rings_until_the_offer_deadline() -> None:
    alice = p.reserve(agent("alice"), "CA1", T0, at(35))
    assert p.status(alice, at(10), POLICY) == "ringing"
    assert p.since(alice, at(10), POLICY) == T0
    assert not p.offerable(alice, at(10), POLICY)
    assert p.offerable(alice, at(35), POLICY)  # the reservation ran out: nobody reported the ring's end
    assert alice.offered_at == T0


def test_a_ringing_report_holds_a_free_agent_but_not_one_busy_elsewhere() -> None:
    alice = p.ringing(agent("alice"), "CA1", T0, at(35))
    assert alice.busy == "ringing"
    assert alice.busy_call == "CA1"
    assert p.ringing(alice, "CA2", at(1), at(36)) == alice
    assert p.ringing(alice, "CA1", at(2), at(37)) == alice
    talking = p.answered(alice, "CA1", at(3))
    assert p.ringing(talking, "CA1", at(4), at(40)) == talking  # a late ringing after the answer


def test_answering_makes_the_agent_on_call_until_it_ends_then_wrap_up() -> None:
    alice = p.answered(p.reserve(replace(agent("alice"), missed=1), "CA1", T0, at(35)), "CA1", at(5))
    assert alice.busy == "on_call"
    assert alice.busy_until is None
    assert alice.missed == 0
    assert p.answered(alice, "CA1", at(6)) == alice
    assert p.status(alice, at(10_000), POLICY) == "on_call"  # a call keeps its agent however long it lasts
    wrapping = p.call_ended(alice, "CA1", at(100), POLICY)
    assert p.status(wrapping, at(120), POLICY) == "wrap_up"
    assert p.since(wrapping, at(120), POLICY) == at(100)
    assert p.offerable(wrapping, at(130), POLICY)
    assert wrapping.idle_since == at(130)
    assert p.call_ended(wrapping, "CA1", at(101), POLICY) == wrapping


def test_without_wrap_up_the_agent_is_free_when_the_call_ends() -> None:
    alice = p.answered(agent("alice"), "CA1", T0)
    free = p.call_ended(alice, "CA1", at(60), PresencePolicy())
    assert p.offerable(free, at(60), PresencePolicy())
    assert free.idle_since == at(60)


def test_the_end_of_another_call_leaves_the_agent_as_they_are() -> None:
    alice = p.answered(agent("alice"), "CA1", T0)
    assert p.call_ended(alice, "CA2", at(5), POLICY) == alice
    assert p.released(alice, "CA2", at(5), POLICY, missed=True) == alice


def test_ending_wrap_up_early_frees_the_agent() -> None:
    wrapping = p.call_ended(p.answered(agent("alice"), "CA1", T0), "CA1", at(60), POLICY)
    ready = p.end_wrap_up(wrapping, at(65))
    assert p.offerable(ready, at(65), POLICY)
    assert ready.idle_since == at(65)
    assert p.end_wrap_up(ready, at(66)) == ready


def test_an_offer_that_stops_ringing_frees_the_agent_and_a_rung_out_one_counts_as_missed() -> None:
    rung = p.reserve(agent("alice"), "CA1", T0, at(35))
    canceled = p.released(rung, "CA1", at(5), POLICY, missed=False)
    assert canceled.busy is None
    assert canceled.missed == 0
    assert canceled.idle_since == T0
    missed = p.released(rung, "CA1", at(20), POLICY, missed=True)
    assert missed.busy is None
    assert missed.missed == 1
    assert missed.chosen == "available"


def test_missed_offers_in_a_row_set_the_agent_away_with_a_reason() -> None:
    alice = agent("alice")
    for second in (0, 100):
        alice = p.released(
            p.reserve(alice, "CA1", at(second), at(second + 35)), "CA1", at(second + 20), POLICY, missed=True
        )
    assert alice.chosen == "away"
    assert alice.reason == p.MISSED_OFFERS
    assert alice.chosen_by == "bridge"
    assert not p.offerable(alice, at(200), POLICY)


def test_missed_offers_never_set_away_when_the_setting_is_off() -> None:
    alice = agent("alice")
    for second in range(0, 1000, 100):
        alice = p.released(
            p.reserve(alice, "CA1", at(second), at(second + 35)), "CA1", at(second + 20), PresencePolicy(), missed=True
        )
    assert alice.chosen == "available"
    assert alice.missed == 10


# --- routing -------------------------------------------------------------------------------------------


def caller(sid: str, arrived: float = 0, **fields: object) -> Waiting:
    """Build a waiting caller."""
    return replace(Waiting(call_sid=sid, arrived_at=at(arrived)), **fields)


def test_ring_all_offers_every_free_agent_idle_longest_first_at_most_ten() -> None:
    team = [agent(f"a{n:02}", n, idle_since=at(-n)) for n in range(12)]
    offers = match(team, [caller("CA1")], T0, RoutingPolicy())
    assert offers == {"CA1": Offer(tuple(f"client:a{n:02}" for n in range(11, 1, -1)), 20)}
    assert len(offers["CA1"].agents) == RING_ALL_MAX


def test_busy_away_and_reserved_agents_are_not_rung() -> None:
    team = [
        agent("free", 1),
        p.choose(agent("away", 2), "away", T0, by="away"),
        p.answered(agent("talking", 3), "CA9", T0),
        p.reserve(agent("held", 4), "CA8", T0, at(30)),
    ]
    assert match(team, [caller("CA1")], at(1), RoutingPolicy()) == {"CA1": Offer(("client:free",), 20)}


def test_longest_idle_offers_one_agent_for_the_agent_ring_time() -> None:
    team = [
        agent("recent", 1, idle_since=at(-5)),
        agent("longest", 2, idle_since=at(-500)),
        agent("never", 3, idle_since=None),
    ]
    policy = RoutingPolicy(strategy="longest_idle", agent_ring_seconds=15)
    assert match(team, [caller("CA1")], T0, policy) == {"CA1": Offer(("client:never",), 15)}
    assert match(team[:2], [caller("CA1")], T0, policy) == {"CA1": Offer(("client:longest",), 15)}


def test_round_robin_goes_to_the_agent_offered_longest_ago_in_configured_order() -> None:
    team = [agent("a", 1, offered_at=at(-10)), agent("b", 2), agent("c", 3), agent("d", 4, offered_at=at(-50))]
    policy = RoutingPolicy(strategy="round_robin")
    assert match(team, [caller("CA1")], T0, policy) == {"CA1": Offer(("client:b",), 15)}
    assert match([team[0], team[3]], [caller("CA1")], T0, policy) == {"CA1": Offer(("client:d",), 15)}


def test_the_longest_waiting_caller_gets_the_agent_first() -> None:
    waiting = [caller("CA_new", 30, queued=True), caller("CA_old", 10, queued=True), caller("CA_mid", 20, queued=True)]
    policy = RoutingPolicy(strategy="longest_idle", queue=True)
    offers = match([agent("alice", 1), agent("bob", 2, idle_since=at(1))], waiting, at(40), policy)
    assert offers == {"CA_old": Offer(("client:alice",), 15), "CA_mid": Offer(("client:bob",), 15)}


def test_ring_all_gives_the_oldest_caller_every_free_agent() -> None:
    waiting = [caller("CA1", 0, queued=True), caller("CA2", 5, queued=True)]
    offers = match([agent("a", 1), agent("b", 2)], waiting, at(40), RoutingPolicy(queue=True))
    assert offers == {"CA1": Offer(("client:a", "client:b"), 20)}


def test_a_caller_being_offered_keeps_the_offer_and_is_passed_over() -> None:
    waiting = [caller("CA1", 0, offered_to=("client:x",), offered_until=at(50)), caller("CA2", 5, queued=True)]
    assert match([agent("a")], waiting, at(40), RoutingPolicy(queue=True)) == {"CA2": Offer(("client:a",), 20)}
    # Once the offer's deadline passes with no word, the caller may be offered again.
    assert match([agent("a")], waiting, at(50), RoutingPolicy(queue=True)) == {"CA1": Offer(("client:a",), 20)}


def test_a_caller_is_not_offered_again_to_an_agent_who_just_let_them_ring_out() -> None:
    waiting = [caller("CA1", 0, queued=True, missed=(Missed("client:a", at(20)),)), caller("CA2", 5, queued=True)]
    policy = RoutingPolicy(queue=True)
    assert match([agent("a")], waiting, at(40), policy) == {"CA2": Offer(("client:a",), 20)}
    assert match([agent("a")], waiting[:1], at(80), policy) == {"CA1": Offer(("client:a",), 20)}


def test_a_caller_past_the_longest_wait_is_left_for_voicemail() -> None:
    waiting = [caller("CA1", 0, queued=True), caller("CA2", 100, queued=True)]
    policy = RoutingPolicy(queue=True, max_wait=300)
    assert match([agent("a")], waiting, at(300), policy) == {"CA2": Offer(("client:a",), 20)}


def test_lines_offer_only_agents_who_serve_them() -> None:
    waiting = [caller("CA1", 0, line="sales"), caller("CA2", 5, line="support")]
    serves = {"client:a": frozenset({"support"}), "client:b": frozenset({"sales", "support"})}
    offers = match(
        [agent("a", 1), agent("b", 2, idle_since=at(1))],
        waiting,
        at(10),
        RoutingPolicy(strategy="longest_idle"),
        serves,
    )
    assert offers == {"CA1": Offer(("client:b",), 15), "CA2": Offer(("client:a",), 15)}


def test_each_line_offers_by_its_own_policy_and_an_agent_on_two_lines_gets_the_longest_waiting() -> None:
    """Lines in the policy: a caller is offered by their line's strategy and ring time, to their line's agents."""
    support = RoutingPolicy(strategy="ring_all", ring_all_seconds=25)
    sales = RoutingPolicy(strategy="longest_idle", agent_ring_seconds=12)
    serves = {"client:a": frozenset({"support"}), "client:b": frozenset({"support", "sales"})}
    policy = RoutingPolicy(lines={"support": support, "sales": sales}, serves=serves)
    waiting = [caller("CA1", 0, line="sales"), caller("CA2", 5, line="support")]
    # b serves both lines: the sales caller waited longest, so b is theirs; a takes the support caller.
    offers = match([agent("a", 1), agent("b", 2)], waiting, at(10), policy)
    assert offers == {"CA1": Offer(("client:b",), 12), "CA2": Offer(("client:a",), 25)}
    # Only b free: the longest waiting of either of his lines, whichever line it is.
    assert match([agent("b", 2)], waiting, at(10), policy) == {"CA1": Offer(("client:b",), 12)}
    # Only a free: she never gets the sales caller, however long they wait.
    assert match([agent("a", 1)], waiting, at(10), policy) == {"CA2": Offer(("client:a",), 25)}


def test_a_line_no_longer_configured_routes_on_the_first_line() -> None:
    """A queue row of a line since removed (or of the line before lines) is the first line's caller."""
    first, second = RoutingPolicy(max_size=1, queue=True), RoutingPolicy(queue=False)
    policy = RoutingPolicy(lines={"support": first, "sales": second})
    assert policy.line_key("default") == "support"
    assert policy.line("gone") is first
    assert policy.line("sales") is second
    assert RoutingPolicy().line("anything") == RoutingPolicy()  # no lines: the policy itself


def test_priority_callers_wait_ahead_and_positions_count_per_line() -> None:
    waiting = [caller("CA1", 0), caller("CA2", 10, priority=1), caller("CA3", 5, line="sales"), caller("CA4", 20)]
    assert [w.call_sid for w in sorted(waiting, key=order)] == ["CA2", "CA1", "CA3", "CA4"]
    assert positions(waiting) == {"CA2": 1, "CA1": 2, "CA3": 1, "CA4": 3}


def test_placing_a_caller_nobody_can_take() -> None:
    queueing = RoutingPolicy(queue=True, max_wait=300, max_size=2)
    assert place(caller("CA1"), 1, at(10), queueing) == Wait()
    assert place(caller("CA1"), 2, at(10), queueing) == NoAgent("overflowed", True)
    assert place(caller("CA1", queued=True), 5, at(10), queueing) == Wait()  # back from an offer: keeps their place
    assert place(caller("CA1", queued=True), 0, at(300), queueing) == NoAgent("exceeded_queue_time", True)
    assert place(caller("CA1"), 0, T0, RoutingPolicy()) == NoAgent("no_agent", True)
    assert place(caller("CA1"), 0, T0, RoutingPolicy(voicemail=False)) == NoAgent("no_agent", False)


def test_an_offer_holds_its_agents_past_its_ring_time() -> None:
    offer = Offer(("client:a",), 20)
    assert offer.until(T0, moved=False) == at(35)
    assert offer.until(T0, moved=True) == at(50)
    assert RoutingPolicy(strategy="round_robin", agent_ring_seconds=12).ring_seconds == 12


@given(
    st.lists(st.tuples(st.integers(0, 600), st.integers(0, 2)), min_size=1, max_size=30),
    st.lists(st.integers(-600, 0), min_size=1, max_size=15),
    st.sampled_from(["ring_all", "longest_idle", "round_robin"]),
)
def test_no_agent_is_offered_twice_and_no_older_caller_is_skipped_for_a_younger(
    arrivals: list[tuple[int, int]], idles: list[int], strategy: str
) -> None:
    waiting = [caller(f"CA{n}", arrived, priority=prio, queued=True) for n, (arrived, prio) in enumerate(arrivals)]
    team = [agent(f"a{n}", n + 1, idle_since=at(idle)) for n, idle in enumerate(idles)]
    policy = RoutingPolicy(strategy=strategy, queue=True, max_wait=10_000)  # type: ignore[arg-type]
    offers = match(team, waiting, at(700), policy)
    rung = [identity for offer in offers.values() for identity in offer.agents]
    assert len(rung) == len(set(rung))
    offered = [w for w in sorted(waiting, key=order) if w.call_sid in offers]
    skipped = [w for w in sorted(waiting, key=order) if w.call_sid not in offers]
    if skipped and offered:
        assert order(skipped[0]) > order(offered[-1])  # every caller offered ranks ahead of every one left
