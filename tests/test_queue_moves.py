"""Moving a waiting caller when Twilio fails the move: tried again, decided again, or the next caller offered.

Twilio is the stand-in of bridge.devtools.fake_twilio on virtual time; its REST API answers the moves
(Calls update, Url) with the failures the test scripts. The mover waits out a failure on the bridge's
clock, so the test moves virtual time to the moment the next attempt is due.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bridge.appkeys import DESK
from bridge.core.actions import ActionKind
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge, calls_mode
from bridge.devtools.waiting import wait_until
from bridge.store import DONE, DROPPED, PENDING, ActionRow
from tests import queue_flows as flows
from tests.conftest import BridgeFactory, call_outcome, call_records

ALICE, BOB, DANA, ERIN = flows.ALICE, flows.BOB, flows.DANA, flows.ERIN


@pytest.fixture
async def bridge(make_bridge: BridgeFactory, database_url: str) -> AsyncIterator[LocalBridge]:
    """A bridge on either store, in calls mode, its Twilio the stand-in on virtual time; nobody available."""
    options = {"agents": dict(flows.TEAM), **calls_mode()}
    async with make_bridge(stand_in=True, virtual_time=True, database_url=database_url, **options) as running:
        await flows.choose(running, "away", ALICE, BOB)
        yield running


async def moves(bridge: LocalBridge) -> list[ActionRow]:
    """Return every move the bridge decided, oldest first."""
    rows = await bridge.store.list_actions([PENDING, DONE, "dead", DROPPED], limit=1000)
    return [row for row in reversed(rows) if row.kind == ActionKind.MOVE_CALL.value]


async def backing_off(bridge: LocalBridge) -> ActionRow:
    """Wait until a move waits out a failed attempt (due later on the bridge's clock); return it."""
    found: list[ActionRow] = []

    async def waiting() -> bool:
        now = bridge.clock()
        found[:] = [row for row in await moves(bridge) if row.status == PENDING and row.next_at > now]
        return bool(found)

    await wait_until(waiting, what="a move waiting to be tried again")
    return found[0]


async def try_again(bridge: LocalBridge) -> ActionRow:
    """Move virtual time to when the move that failed is due again; return it as it was."""
    row = await backing_off(bridge)
    await flows.twilio(bridge).advance((row.next_at - bridge.clock()).total_seconds())
    return row


async def test_a_move_twilio_is_too_busy_for_is_tried_again_and_lands(bridge: LocalBridge) -> None:
    """503, 429, 500 to the Calls update: the move is tried again each time and lands; Dana rings alice."""
    fake = flows.twilio(bridge)
    dana = await fake.incoming(DANA, DEMO_NUMBER)
    await flows.queued(bridge, dana)
    failures = fake.account.script.rest_failures
    failures.extend([(503, 20503), (429, 20429), (500, 20500)])  # Twilio docs: errors 20503, 20429, 20500
    await flows.choose(bridge, "available", ALICE)
    errors = [(await try_again(bridge)).last_error for _ in range(3)]
    assert errors == [
        "Twilio answered 503 (20503: Internal error)",
        "Twilio answered 429 (20429: Too Many Requests)",
        "Twilio answered 500 (20500: Internal error)",
    ]
    leg = await fake.ringing(ALICE)
    assert leg.parent is dana
    assert failures == []

    async def settled() -> bool:
        (move,) = await moves(bridge)
        return move.status == DONE  # the mover records Twilio's answer just after Twilio acted on it

    await wait_until(settled, what="the move settled")
    (move,) = await moves(bridge)
    assert move.attempts == 4
    await fake.answer(leg)
    await fake.advance(20)
    await fake.hang_up(leg)
    await flows.finished(bridge, dana)
    snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, dana.sid)
    assert ticket["assignee_id"] == 1001
    (record,) = call_records(snapshot, dana.sid)
    assert record["completion_status"] == "completed"


async def test_a_move_twilio_keeps_failing_lets_the_agent_go_and_the_caller_rings_the_next(bridge: LocalBridge) -> None:
    """Twilio fails every attempt past the move's grace: alice is let go, and Dana waits for the next agent.

    Dana rings bob, who frees up next, by a new move (alice, whose move Twilio just refused, comes after
    a minute, so a move Twilio keeps refusing is not sent again at once).
    """
    fake = flows.twilio(bridge)
    dana = await fake.incoming(DANA, DEMO_NUMBER)
    await flows.queued(bridge, dana)
    failures = fake.account.script.rest_failures
    failures.extend([(503, 20503)] * 1000)
    await flows.choose(bridge, "available", ALICE)

    async def given_up() -> bool:
        return any(row.status == "dead" for row in await moves(bridge))

    while not await given_up():
        row = await backing_off(bridge)
        await fake.advance((row.next_at - bridge.clock()).total_seconds())
        await wait_until(lambda row=row: _moved_on(bridge, row), what="the next attempt")
    failures.clear()
    alice = await bridge.app[DESK].agent(ALICE)
    assert alice.busy is None  # free for the next caller, not held for a ring nobody hears
    (waiting,) = await bridge.app[DESK].waiting()
    assert waiting.call_sid == dana.sid
    assert not waiting.being_offered(bridge.clock())
    assert (await bridge.store.get_call(dana.sid)).placed.kind == "queue"  # type: ignore[union-attr]
    await flows.choose(bridge, "available", BOB)
    leg = await fake.ringing(BOB)
    assert leg.parent is dana
    first, second = await moves(bridge)
    assert (first.status, first.action.number, second.action.number) == ("dead", 1, 2)  # type: ignore[attr-defined]
    await fake.answer(leg)
    await fake.advance(20)
    await fake.hang_up(leg)
    await flows.finished(bridge, dana)
    (ticket,) = call_outcome(bridge.sandbox.snapshot(), dana.sid)
    assert ticket["assignee_id"] == 1002


async def _moved_on(bridge: LocalBridge, before: ActionRow) -> bool:
    """Tell whether a move was attempted again since `before` (or settled)."""
    row = next(row for row in await moves(bridge) if row.id == before.id)
    return row.status != PENDING or (row.attempts > before.attempts and row.next_at > bridge.clock())


async def test_a_move_that_finds_the_call_ended_offers_the_next_caller(bridge: LocalBridge) -> None:
    """Dana hangs up as alice frees up, her webhooks still on their way: the move finds her call ended (21220).

    Alice is offered Erin, next in line, at once; Dana is one missed call, however late Twilio's word of
    her hang-up comes.
    """
    fake = flows.twilio(bridge)
    dana = await fake.incoming(DANA, DEMO_NUMBER)
    await flows.queued(bridge, dana)
    await fake.advance(5)  # virtual time stands still otherwise: Erin comes after Dana, not at the same instant
    erin = await fake.incoming(ERIN, DEMO_NUMBER)
    await flows.queued(bridge, erin)
    # Twilio has ended Dana's call; the bridge has not heard yet (her webhooks go out at her next prompt).
    fake.account.close(dana)
    await flows.choose(bridge, "available", ALICE)
    leg = await fake.ringing(ALICE)
    assert leg.parent is erin
    first, second = await moves(bridge)
    assert (first.call_sid, first.status, second.call_sid) == (dana.sid, DROPPED, erin.sid)
    assert "21220" in (first.last_error or "")
    assert [row.call_sid for row in await bridge.app[DESK].waiting()] == [erin.sid]
    await fake.answer(leg)
    await fake.advance(30)  # Dana's hold music ends: Twilio tells the bridge she hung up
    await fake.hang_up(leg)
    await flows.finished(bridge, dana, erin)
    snapshot = bridge.sandbox.snapshot()
    (missed,) = call_outcome(snapshot, dana.sid)
    assert "missed_call" in missed["tags"]
    (record,) = call_records(snapshot, dana.sid)
    assert record["completion_status"] == "abandoned_in_queue"
    (answered,) = call_outcome(snapshot, erin.sid)
    assert answered["assignee_id"] == 1001
