"""The caller's look-up at the arrival, in pieces: another instance's answer, no budget, a late look-up's stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.core.actions import DisplayTicket, FindCaller, LookUpCustomer, caller_key
from bridge.core.events import CallEvent, EventKind
from bridge.core.preference import Customer, OpenTicket
from bridge.dispatch import Desk, Routes
from bridge.dispatch.customers import LAST_KNOWN, Customers
from bridge.ingest import Ingest
from bridge.ops.settings import Settings
from bridge.store import DONE, lapses
from bridge.store.sqlite import SqliteStore
from bridge.zendesk.outbox.context import Context
from bridge.zendesk.outbox.customers import keep, look_up_customer
from bridge.zendesk.outbox.results import Dropped, Needs
from tests.fake_zendesk import FakeZendesk

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
AGENTS = {"client:alice": 1001, "client:bob": 1002}
LINE = '[[line]]\nnumber = "+16505550100"\npreferred_agent_seconds = 10\n'
DANA = "+14155550123"
BOBS = Customer(user_id=2001, tickets=(OpenTicket(id=7, status="open", assignee_id=1002),))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A real store."""
    opened = await SqliteStore.open(str(tmp_path / "lookup.db"))
    yield opened
    await opened.close()


def customers(store: SqliteStore, budget: float, lines: str | None = LINE) -> tuple[Customers, Ingest]:
    """Return the arrival's look-up over `store`, and the ingest it listens to."""
    settings = Settings(agents=AGENTS, lines=lines)
    routes = Routes(settings.routing_policy(), AGENTS)
    ingest = Ingest(store, settings.policy(), lambda: NOW, routes)
    return Customers(store, ingest, routes, lambda: NOW, budget), ingest


async def test_the_answer_another_instance_ingested_is_read_from_the_store(store: SqliteStore) -> None:
    """This instance's ingest never hears of it: the arrival reads the call and finds the data there."""
    arriving, _ = customers(store, budget=5.0)
    other = Ingest(store, Settings(agents=AGENTS).policy(), lambda: NOW)  # another instance's worker's ingest
    await other(["customer:CA1"], CallEvent(kind=EventKind.CUSTOMER_FOUND, call_sid="CA1", at=NOW, customer=BOBS))
    arrival = await arriving.arrive("CA1", DANA)
    assert arrival.fresh
    queued = await store.results([caller_key(DANA), "CA1:customer"])
    assert set(queued) == {caller_key(DANA), "CA1:customer"}  # the look-up was queued all the same


async def test_without_a_budget_the_arrival_waits_for_nothing_and_knows_nothing_yet(store: SqliteStore) -> None:
    """LOOKUP_BUDGET_MS=0: the look-up is queued and the call goes on; the number was never looked up."""
    arriving, _ = customers(store, budget=0.0)
    arrival = await arriving.arrive("CA1", DANA)
    assert (arrival.fresh, arrival.known) == (False, None)
    assert arriving.wanted(None)
    plain, _ = customers(store, budget=0.0, lines=None)
    assert not plain.wanted(None)


async def test_a_late_look_up_stands_in_the_numbers_last_one_unless_unreadable(store: SqliteStore) -> None:
    """What the last look-up kept beside the caller's user is the arrival's, when the fresh one is late."""
    arriving, _ = customers(store, budget=0.0)
    await store.add_actions([FindCaller("CA0", DANA)], now=NOW)
    (row,) = await store.claim(NOW, 1, 30.0)
    await store.finish(row.id, DONE, result={"user_id": 2001}, error=None, now=NOW)
    assert (await arriving.arrive("CA1", DANA)).known is None  # found, but never looked up for routing
    await store.update_result(caller_key(DANA), {"user_id": 2001, LAST_KNOWN: BOBS.model_dump(mode="json")}, now=NOW)
    assert (await arriving.arrive("CA2", DANA)).known == BOBS
    await store.update_result(caller_key(DANA), {"user_id": 2001, LAST_KNOWN: {"tickets": "?"}}, now=NOW)
    assert (await arriving.arrive("CA3", DANA)).known is None


async def test_a_look_up_without_the_callers_user_is_dropped_and_keeps_nothing(store: SqliteStore) -> None:
    """The caller's user was never found (its look-up died): nothing to read; nothing kept for a number unknown."""
    _, ingest = customers(store, budget=0.0)
    ctx = Context(FakeZendesk(), store, lambda: NOW)
    outcome = await look_up_customer(ctx, ingest, 1, LookUpCustomer("CA1", DANA), Needs({}))
    assert isinstance(outcome, Dropped)
    await keep(ctx, DANA, BOBS)
    assert await store.results([caller_key(DANA)]) == {}


def test_the_look_up_lapses_like_a_pop() -> None:
    """Past POP_DEADLINE_SECONDS the look-up is dropped as a pop is; the caller's own look-up is kept."""
    assert lapses(LookUpCustomer("CA1", DANA))
    assert lapses(DisplayTicket("CA1", 1002, 7))
    assert not lapses(FindCaller("CA1", DANA))


async def test_the_place_said_ranks_an_aged_ordinary_caller_with_the_priority_ones(store: SqliteStore) -> None:
    """Dana waits; a VIP comes 30 s later and waits ahead; at 70 s, aged past 60 s, Dana hears she is first again."""
    vips = '[[line]]\nnumber = "+16505550100"\npriority_tags = ["vip"]\n'
    settings = Settings(agents=AGENTS, lines=vips, twilio_account_sid="AC" + "1" * 32, priority_aging_seconds=60)
    routes = Routes(settings.routing_policy(), AGENTS)
    clock = [NOW]
    await store.add_agents(AGENTS, NOW)
    desk = Desk(store, routes, lambda: clock[0])
    for agent in AGENTS:
        await desk.choose(agent, "away", by="test")
    ingest = Ingest(store, settings.policy(), lambda: clock[0], routes)
    vip = Customer(user_id=2002, tags=("vip",))
    for n, (sid, customer) in enumerate((("CA1", None), ("CA2", vip))):
        clock[0] = NOW + timedelta(seconds=30 * n)
        event = CallEvent(kind=EventKind.CALL_STARTED, call_sid=sid, at=clock[0], direction="inbound",
                          from_number=f"+1415555012{n}", to_number="+16505550100", customer=customer)  # fmt: skip
        await ingest([f"incoming|{sid}"], event)
    assert (await store.announce("CA1", 0, NOW + timedelta(seconds=50), aging=60))[0] == 2
    assert (await store.announce("CA1", 0, NOW + timedelta(seconds=70), aging=60))[0] == 1
    assert (await store.announce("CA1", 0, NOW + timedelta(seconds=70)))[0] == 2  # without aging
