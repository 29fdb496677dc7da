"""The Desk: presence changed from outside calls, on both stores."""

from __future__ import annotations

from bridge.app import open_store
from bridge.core.clock import from_epoch
from bridge.core.routing import RoutingPolicy
from bridge.dispatch import Desk, Routes
from bridge.ops.settings import Settings

NOW = from_epoch(1_000_000.0)


async def test_a_status_for_an_agent_without_a_row_makes_the_row(database_url: str) -> None:
    """AGENTS may name an agent the store has no row for yet (another instance's settings): choosing makes it."""
    store = await open_store(Settings(database_url=database_url))
    desk = Desk(store, Routes(RoutingPolicy(), {"client:alice": 1001, "client:bob": 1002}), lambda: NOW)
    await store.add_agents({"client:alice": 1001}, NOW)
    bob = await desk.choose("client:bob", "away", by="test")
    assert (bob.identity, bob.zendesk_id, bob.chosen) == ("client:bob", 1002, "away")
    await desk.choose("client:alice", "offline", by="test")
    assert {agent.identity: agent.chosen for agent in await store.agents()} == {
        "client:alice": "offline",
        "client:bob": "away",
    }
    await store.close()
