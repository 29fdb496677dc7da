"""Agents' availability in Zendesk: the sandbox's Agent Availability API, and the bridge reading it for routing.

Everything goes over real loopback HTTP: the sandbox serves `GET /api/v2/agent_availabilities/{id}` to admins
only, as Zendesk does; the bridge's reader keeps an agent away or offline there from calls when its token may
read it, and routes on its own presence, saying once what the token needs, when it may not.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pytest_aiohttp.plugin import AiohttpClient

from bridge.core import presence
from bridge.core.presence import PresencePolicy
from bridge.core.routing import RoutingPolicy
from bridge.devtools.sandbox import SANDBOX, FaultRule, Sandbox, SandboxConfig, create_sandbox_app
from bridge.dispatch import Desk, Routes
from bridge.store.sqlite import SqliteStore
from bridge.zendesk.availability import ASK_AGAIN, STALE_ROUNDS, AvailabilityPoller, pace, talk_status
from bridge.zendesk.client import ZendeskClient
from tests.sandbox_kit import BASIC, Client, call, sandbox_of

TEAM = {"client:alice": 1001, "client:bob": 1002, "+16505550111": 1003}
POLICY = PresencePolicy()


async def sandbox_client(aiohttp_client: AiohttpClient, **config: Any) -> Client:
    """Return a test client of a sandbox made with these settings."""
    return await aiohttp_client(create_sandbox_app(SandboxConfig(**config)))


def talk(document: dict[str, Any]) -> str:
    """Return the talk channel's status in an availability document."""
    return next(item["attributes"]["status"] for item in document["included"] if item["attributes"]["name"] == "talk")


# -- the sandbox ---------------------------------------------------------------------------------------------


async def test_an_admin_reads_an_agents_availability_as_a_json_api_document(aiohttp_client: AiohttpClient) -> None:
    client = await sandbox_client(aiohttp_client, token_role="admin")
    status, document, _ = await call(client, "GET", "/api/v2/agent_availabilities/1001")
    assert status == 200
    data = document["data"]
    assert data["type"] == "agent_availabilities"
    assert data["id"] == "agent_availabilities|1001"
    assert data["attributes"]["agent_id"] == 1001
    assert data["attributes"]["agent_status"]["name"] == "online"
    channels = {item["attributes"]["name"]: item["attributes"]["status"] for item in document["included"]}
    assert channels == {"messaging": "online", "support": "online", "talk": "online"}
    assert [ref["id"] for ref in data["relationships"]["channels"]["data"]] == [i["id"] for i in document["included"]]
    sandbox_of(client).set_agent_status(1001, "away")  # Zendesk's default Away: every channel offline
    _, document, _ = await call(client, "GET", "/api/v2/agent_availabilities/1001.json")
    unified = document["data"]["attributes"]["agent_status"]
    assert (unified["id"], unified["name"]) == (4, "away")
    assert talk(document) == "offline"
    sandbox_of(client).set_agent_status(1001, "away", channel="talk")
    _, document, _ = await call(client, "GET", "/api/v2/agent_availabilities/1001")
    assert talk(document) == "away"


async def test_an_agents_token_is_refused_and_an_end_user_has_no_availability(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await sandbox_client(aiohttp_client)  # the token of an agent, as the README advises
    status, body, _ = await call(client, "GET", "/api/v2/agent_availabilities/1001")
    assert status == 403
    assert body["error"] == "Forbidden"
    admin = await sandbox_client(aiohttp_client, token_role="admin")
    status, body, _ = await call(admin, "GET", "/api/v2/agent_availabilities/2001")
    assert status == 404
    assert body["error"] == "RecordNotFound"


async def test_an_account_without_the_api_or_unified_statuses(aiohttp_client: AiohttpClient) -> None:
    missing = await sandbox_client(aiohttp_client, token_role="admin", agent_availability=False)
    status, body, _ = await call(missing, "GET", "/api/v2/agent_availabilities/1001")
    assert status == 404
    assert body["error"] == "InvalidEndpoint"
    plain = await sandbox_client(aiohttp_client, token_role="admin", unified_statuses=False)
    _, document, _ = await call(plain, "GET", "/api/v2/agent_availabilities/1001")
    assert "agent_status" not in document["data"]["attributes"]
    assert talk(document) == "online"


# -- reading a document ----------------------------------------------------------------------------------------


def document(talk_status_: str | None = None, unified: str | None = None) -> dict[str, Any]:
    """Build an availability document with a talk channel and a unified status, each when given."""
    attributes: dict[str, Any] = {"agent_id": 1001}
    if unified is not None:
        attributes["agent_status"] = {"id": 9, "name": unified}
    included = [{"type": "channels", "attributes": {"name": "messaging", "status": "online"}}]
    if talk_status_ is not None:
        included.append({"type": "channels", "attributes": {"name": "talk", "status": talk_status_}})
    return {"data": {"type": "agent_availabilities", "attributes": attributes}, "included": included}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (document("online", "away"), "available"),  # the talk channel's word wins: it is the one for calls
        (document("away"), "away"),
        (document("transfers_only"), "away"),  # a call to the line is not a transfer
        (document("offline"), "offline"),
        (document(None, "Away"), "away"),  # no talk channel: the unified status, when it is a default one
        (document(None, "Lunch"), None),  # a custom status without its talk mapping says nothing
        (document(), None),
        ({}, None),
    ],
)
def test_the_talk_channel_says_whether_an_agent_may_take_calls(doc: dict[str, Any], expected: str | None) -> None:
    assert talk_status(doc) == expected


def test_reading_takes_at_most_a_tenth_of_the_rate_limit() -> None:
    assert pace(3, 30, 400) == 30
    assert pace(100, 30, 400) == 150  # 100 requests a round, 40 a minute


# -- the bridge reading it -------------------------------------------------------------------------------------


class Team:
    """A desk on a real store, a Zendesk client and a poller, against one sandbox."""

    def __init__(self, desk: Desk, poller: AvailabilityPoller, sandbox: Sandbox, clock: list[float]) -> None:
        self.desk, self.poller, self.sandbox, self.clock = desk, poller, sandbox, clock

    async def status(self, identity: str) -> str:
        """Return the agent's status as routing and /metrics read it."""
        return presence.status(await self.desk.agent(identity), datetime.now(UTC), POLICY)

    async def offerable(self, identity: str) -> bool:
        """Tell whether routing may offer the agent a call now."""
        return presence.offerable(await self.desk.agent(identity), datetime.now(UTC), POLICY)


TeamFactory = Callable[..., Any]


@pytest.fixture
async def team(tmp_path: Path) -> AsyncIterator[TeamFactory]:
    """Build a Team against a sandbox made with the given settings; close everything afterwards."""
    opened: list[Any] = []

    async def build(**config: Any) -> Team:
        server = TestServer(create_sandbox_app(SandboxConfig(**config)), host="127.0.0.1")
        await server.start_server()
        store = await SqliteStore.open(str(tmp_path / f"bridge-{len(opened)}.db"))
        session = aiohttp.ClientSession()
        opened.append((server, store, session))
        desk = Desk(store, Routes(RoutingPolicy(presence=POLICY), TEAM))
        zendesk = ZendeskClient(session, str(server.make_url("")).rstrip("/"), BASIC, timeout=5)
        clock = [1000.0]
        # Not started: each test runs the rounds itself, moving the clock between them.
        poller = AvailabilityPoller(zendesk, TEAM, desk.zendesk_said, interval=30, per_minute=400,
                                    clock=lambda: clock[0])  # fmt: skip
        return Team(desk, poller, server.app[SANDBOX], clock)

    yield build
    for server, store, session in opened:
        await session.close()
        await store.close()
        await server.close()


async def test_an_agent_away_or_offline_in_zendesk_is_not_offered_calls(team: TeamFactory) -> None:
    """Permitted (an admin's token): Zendesk's word keeps an agent from calls, beside their own choice."""
    crew = await team(token_role="admin")
    assert await crew.poller.round() == 30
    assert [await crew.status(identity) for identity in TEAM] == ["available"] * 3
    crew.sandbox.set_agent_status(1001, "away", channel="talk")
    crew.sandbox.set_agent_status(1003, "offline")
    await crew.poller.round()
    alice, _carol = await crew.desk.agent("client:alice"), await crew.desk.agent("+16505550111")
    assert (alice.zendesk, alice.chosen) == ("away", "available")  # her own choice is kept, not written over
    assert await crew.status("client:alice") == "away"
    assert await crew.status("+16505550111") == "offline"
    assert not await crew.offerable("client:alice")
    assert not await crew.offerable("+16505550111")
    assert await crew.offerable("client:bob")
    await crew.desk.choose("client:alice", "away", by="alice")
    crew.sandbox.set_agent_status(1001, "online")
    await crew.poller.round()
    assert await crew.status("client:alice") == "away"  # online in Zendesk, but she chose away here
    await crew.desk.choose("client:alice", "available", by="alice")
    assert await crew.offerable("client:alice")
    assert crew.poller.refused is None


async def test_a_refused_token_is_told_once_and_routing_goes_on(
    team: TeamFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused (an agent's token): one line says what the token needs; the bridge's own presence routes."""
    crew = await team()
    await crew.desk.zendesk_said("client:alice", "away")  # what an admin's token read before a change of token
    caplog.set_level(logging.INFO, "bridge.zendesk")
    asked = len(crew.sandbox.requests)
    assert await crew.poller.round() == ASK_AGAIN
    assert await crew.poller.round() == ASK_AGAIN
    lines = [r.getMessage() for r in caplog.records if "zendesk availability" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "HTTP 403" in lines[0]
    assert "admins only" in lines[0]
    assert "admin's API token" in lines[0]
    assert "ZENDESK_AVAILABILITY_SECONDS=0" in lines[0]
    assert len(crew.sandbox.requests) == asked + 2  # one request a round: the first refusal ends it
    assert [await crew.offerable(identity) for identity in TEAM] == [True] * 3
    assert (await crew.desk.agent("client:alice")).zendesk is None


async def test_an_account_without_the_api_is_told_once(team: TeamFactory, caplog: pytest.LogCaptureFixture) -> None:
    crew = await team(token_role="admin", agent_availability=False)
    caplog.set_level(logging.INFO, "bridge.zendesk")
    assert await crew.poller.round() == ASK_AGAIN
    await crew.poller.round()
    lines = [r.getMessage() for r in caplog.records if "zendesk availability" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "no Agent Availability API" in lines[0]
    assert [await crew.offerable(identity) for identity in TEAM] == [True] * 3


async def test_a_failing_zendesk_keeps_the_last_word_until_it_is_stale(
    team: TeamFactory, caplog: pytest.LogCaptureFixture
) -> None:
    crew = await team(token_role="admin")
    crew.sandbox.set_agent_status(1001, "offline")
    await crew.poller.round()
    assert await crew.status("client:alice") == "offline"
    crew.sandbox.add_faults([FaultRule("GET", "/api/v2/agent_availabilities", "503", times=1000)])
    caplog.set_level(logging.WARNING, "bridge.zendesk")
    crew.clock[0] += 30
    await crew.poller.round()
    assert await crew.status("client:alice") == "offline"  # a hiccup: what Zendesk said last still counts
    crew.clock[0] += STALE_ROUNDS * 30
    await crew.poller.round()
    assert await crew.status("client:alice") == "available"  # too old to count: the bridge's presence alone
    warned = [r.getMessage() for r in caplog.records if "could not read client:alice" in r.getMessage()]
    assert len(warned) == 1, warned
    crew.sandbox.clear_faults()
    await crew.poller.round()
    assert await crew.status("client:alice") == "offline"


async def test_a_rate_limited_round_stops_and_waits_as_zendesk_asks(team: TeamFactory) -> None:
    crew = await team(token_role="admin")
    crew.sandbox.add_faults([FaultRule("GET", "/api/v2/agent_availabilities", "429", times=5, retry_after=120)])
    asked = len(crew.sandbox.requests)
    assert await crew.poller.round() == 120
    assert len(crew.sandbox.requests) == asked + 1  # the other agents are not asked only to be refused too
