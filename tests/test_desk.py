"""The Desk: presence changed from outside calls, and who sends the moves it decides, on both stores."""

from __future__ import annotations

from datetime import timedelta

from bridge.app import open_store
from bridge.appkeys import DESK
from bridge.core.clock import from_epoch
from bridge.core.routing import RoutingPolicy
from bridge.devtools.demo import DEMO_AGENTS, DEMO_NUMBER
from bridge.devtools.waiting import wait_until
from bridge.dispatch import Desk, Routes
from bridge.ingest import Ingest
from bridge.ops.settings import Settings
from bridge.store import ActionRow
from schemas.twilio import IncomingCall
from tests.conftest import BridgeFactory
from webhooks import translate

NOW = from_epoch(1_000_000.0)
AGENTS = {"client:alice": 1001, "client:bob": 1002}
CALLERS = [f"CA{n:032d}" for n in (1, 2)]


async def test_a_status_for_an_agent_without_a_row_makes_the_row(database_url: str) -> None:
    """AGENTS may name an agent the store has no row for yet (another instance's settings): choosing makes it."""
    store = await open_store(Settings(database_url=database_url))
    desk = Desk(store, Routes(RoutingPolicy(), AGENTS), lambda: NOW)
    await store.add_agents({"client:alice": 1001}, NOW)
    bob = await desk.choose("client:bob", "away", by="test")
    assert (bob.identity, bob.zendesk_id, bob.chosen) == ("client:bob", 1002, "away")
    await desk.choose("client:alice", "offline", by="test")
    assert {agent.identity: agent.chosen for agent in await store.agents()} == {
        "client:alice": "offline",
        "client:bob": "away",
    }
    await store.close()


async def test_an_instance_is_handed_its_own_moves_leased_and_claims_the_others(database_url: str) -> None:
    """A move is leased to the mover of the instance that decided it; one `bridge agents set` decided is claimed."""
    settings = Settings(database_url=database_url, agents=AGENTS, twilio_account_sid="AC" + "1" * 32)
    routes = Routes(settings.routing_policy(), AGENTS)
    instance, command_line = await open_store(settings), await open_store(settings)
    handed: list[ActionRow] = []
    instance.hand_over_moves(30.0, handed.extend)
    await instance.add_agents(AGENTS, NOW)
    desk, elsewhere = Desk(instance, routes, lambda: NOW), Desk(command_line, routes, lambda: NOW)
    for agent in AGENTS:
        await desk.choose(agent, "away", by="test")
    ingest = Ingest(instance, settings.policy(), lambda: NOW, routes)
    for n, sid in enumerate(CALLERS):
        form = IncomingCall.model_validate({"CallSid": sid, "From": f"+1415555012{n}", "To": "+16505550100",
                                            "CallStatus": "ringing", "Direction": "inbound"})  # fmt: skip
        await ingest([f"incoming|{sid}"], translate.incoming(form, NOW + timedelta(seconds=n)))
    assert [caller.call_sid for caller in await instance.waiting()] == CALLERS
    await desk.choose("client:alice", "available", by="test")
    assert [(row.call_sid, row.kind) for row in handed] == [(CALLERS[0], "move_call")]
    assert await instance.claim(NOW, 10, 30.0, telephony=True) == []  # leased to this instance: nobody claims it
    await elsewhere.choose("client:bob", "available", by="test")
    assert len(handed) == 1
    assert [row.call_sid for row in await instance.claim(NOW, 10, 30.0, telephony=True)] == CALLERS[1:]
    await instance.close()
    await command_line.close()


async def test_an_agent_choosing_available_is_rung_by_the_longest_waiting_caller(
    make_bridge: BridgeFactory, database_url: str
) -> None:
    """Through the stand-in: both callers wait; alice becomes available; Twilio moves the first one to ring her."""
    async with make_bridge(stand_in=True, database_url=database_url) as bridge:
        fake, desk = bridge.stand_in, bridge.app[DESK]
        assert fake is not None
        for agent in DEMO_AGENTS:
            await desk.choose(agent, "away", by="test")
        first = await fake.incoming("+14155550123", DEMO_NUMBER)
        second = await fake.incoming("+14155550199", DEMO_NUMBER)
        assert first.queue is not None
        assert second.queue is not None
        await desk.choose("client:alice", "available", by="test")
        leg = await fake.ringing("client:alice")
        assert leg.parent is first
        assert second.queue is not None

        async def moves() -> list[tuple[str, int]]:
            return [(row.call_sid, row.attempts) for row in await bridge.store.list_actions(["done"])
                    if row.kind == "move_call"]  # fmt: skip

        # Twilio acts on the move before it answers; the move is settled once the answer is in.
        await wait_until(moves, within=10, what="the move settled")
        assert await moves() == [(first.sid, 1)]
