"""The agent's status over HTTP: the softphone's session names the agent, and only their own status changes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bridge.appkeys import CLOCK, DESK
from bridge.core import presence
from bridge.core.clock import system_clock
from bridge.core.routing import Waiting
from bridge.devtools.demo import LocalBridge, serve
from bridge.ops.settings import Settings
from bridge.softphone import routes as softphone
from bridge.softphone.identity import SessionSigner
from bridge.softphone.presence import line_up
from tests.conftest import BridgeFactory, recording
from tests.softphone_kit import API_KEY_SECRET, softphone_settings, zendesk_jwt
from tests.test_softphone import post_page, session_of

PRESENCE = "/softphone/presence"
WRAP_UP = "/softphone/presence/wrap-up"
GOODBYE = "/softphone/presence/goodbye"
ROUTES = [("GET", PRESENCE), ("POST", PRESENCE), ("POST", WRAP_UP), ("POST", GOODBYE)]


class Phone:
    """One agent's softphone, as the page talks to the bridge: its session on every request."""

    def __init__(self, bridge: LocalBridge, session: str | None) -> None:
        """Talk to `bridge` with `session` (None: no Authorization at all)."""
        self.bridge = bridge
        self.session = session

    async def send(self, method: str, path: str, **options: Any) -> tuple[int, Any]:
        """Send one request; return the status and the JSON body (None when there is none)."""
        headers = {"Authorization": f"Bearer {self.session}"} if self.session is not None else {}
        headers.update(options.pop("headers", {}))
        async with (
            aiohttp.ClientSession() as client,
            client.request(method, self.bridge.url + path, headers=headers, **options) as response,
        ):
            text = await response.text()
            return response.status, json.loads(text) if text else None

    async def look(self) -> tuple[int, Any]:
        return await self.send("GET", PRESENCE)

    async def choose(self, body: Any) -> tuple[int, Any]:
        return await self.send("POST", PRESENCE, json=body)


async def signed_in(bridge: LocalBridge, agent: int = 1001) -> Phone:
    """Sign in as Zendesk does (the signed top-bar request) and return that agent's phone."""
    status, page = await post_page(bridge, zendesk_jwt(agent))
    assert status == 200
    return Phone(bridge, session_of(page))


def forged_session(bridge: LocalBridge, identity: str, agent_id: int) -> Phone:
    """Return a phone whose session the bridge did issue (its own key) for an agent of our choosing."""
    return Phone(bridge, SessionSigner(API_KEY_SECRET.encode()).issue(identity, agent_id, bridge.clock()))


async def agent(bridge: LocalBridge, identity: str = "client:alice") -> presence.Agent:
    """Return the agent's presence as the store keeps it."""
    return await bridge.app[DESK].agent(identity)


def stores(bridge: BridgeFactory, database_url: str, **extra: Any) -> Any:
    """Start a softphone bridge on the given store."""
    return bridge(database_url=database_url, **softphone_settings(**extra))


async def test_reading_the_status_is_the_softphones_sign_of_life(make_bridge: BridgeFactory, database_url: str) -> None:
    """GET answers the agent's own presence and records that their softphone is alive."""
    async with stores(make_bridge, database_url) as bridge:
        assert (await agent(bridge)).seen_at is None
        phone = await signed_in(bridge)
        status, body = await phone.look()
        assert status == 200
        assert body["identity"] == "client:alice"
        assert (body["chosen"], body["busy"], body["status"]) == ("available", None, "available")
        assert (body["wrap_up_until"], body["why"]) == (None, None)
        assert body["check_in_seconds"] == 15
        assert body["queue"] == {"waiting": 0, "callbacks": 0}  # the page shows "3 waiting, 1 callback" when any
        assert datetime.fromisoformat(body["since"]) <= bridge.clock()
        alice = await agent(bridge)
        assert alice.seen_at is not None
        assert not alice.left
        assert (await agent(bridge, "client:bob")).seen_at is None


async def test_the_agent_chooses_their_own_status_and_nobody_elses(
    make_bridge: BridgeFactory, database_url: str
) -> None:
    """POST sets the session's agent's status; a body naming another agent is refused, and bob is untouched."""
    async with stores(make_bridge, database_url) as bridge:
        phone = await signed_in(bridge)
        status, body = await phone.choose({"status": "away"})
        assert status == 200
        assert (body["chosen"], body["status"], body["chosen_by"]) == ("away", "away", "agent")
        alice = await agent(bridge)
        assert (alice.chosen, alice.chosen_by) == ("away", "agent")
        status, body = await phone.choose({"status": "offline"})
        assert (status, body["status"]) == (200, "offline")
        status, body = await phone.choose({"status": "available", "agent": "client:bob"})
        assert status == 400
        assert "nothing else" in body["error"]
        status, body = await phone.choose({"status": "available"})
        assert (status, body["status"]) == (200, "available")
        bob = await agent(bridge, "client:bob")
        assert (bob.chosen, bob.chosen_by) == ("available", None)


@pytest.mark.parametrize(
    ("body", "says"),
    [({"status": "busy"}, "'busy' is not a status"), ({"status": "Away"}, "'Away' is not a status"),
     ({"status": None}, "None' is not a status"), ({}, "nothing else"), ([], "nothing else"),
     ("away", "nothing else"), ({"status": "away", "by": "supervisor"}, "nothing else"),
     (b"status=away", "nothing else"), (b"{not json", "nothing else")],
)  # fmt: skip
async def test_a_body_that_is_not_a_status_is_refused_and_stores_nothing(
    make_bridge: BridgeFactory, database_url: str, body: Any, says: str
) -> None:
    """400 with a message naming what is expected; the agent's row is as it was."""
    async with stores(make_bridge, database_url) as bridge:
        phone = await signed_in(bridge)
        await phone.look()
        before = await agent(bridge)
        options = {"data": body} if isinstance(body, bytes) else {"json": body}
        status, answer = await phone.send("POST", PRESENCE, **options)
        assert status == 400
        assert says in answer["error"]
        assert '"available" | "away" | "offline"' in answer["error"]
        assert await agent(bridge) == before


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_presence_route_needs_the_bridges_own_session(
    make_bridge: BridgeFactory, method: str, path: str
) -> None:
    """No session, a forged one, or Zendesk's JWT itself: 401, and no agent changes."""
    async with make_bridge(**softphone_settings()) as bridge:
        before = await bridge.app[DESK].agents()
        for session in [None, "", "forged.session", zendesk_jwt(1001), "é.é"]:
            status, body = await Phone(bridge, session).send(method, path, json={"status": "away"})
            assert status == 401, session
            assert "session" in body["error"]
        assert await bridge.app[DESK].agents() == before


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_session_whose_agent_is_not_in_agents_is_refused(
    make_bridge: BridgeFactory, method: str, path: str
) -> None:
    """A session for an identity AGENTS does not name, or names for another Zendesk user: 403 saying why."""
    async with make_bridge(**softphone_settings()) as bridge:
        before = await bridge.app[DESK].agents()
        carol = forged_session(bridge, "carol", 1005)
        status, body = await carol.send(method, path, json={"status": "away"})
        assert status == 403
        assert "client:carol is not in AGENTS" in body["error"]
        assert "client:carol=1005" in body["error"]
        impostor = forged_session(bridge, "alice", 1002)  # AGENTS says client:alice is 1001
        status, body = await impostor.send(method, path, json={"status": "away"})
        assert status == 403
        assert "another Zendesk user" in body["error"]
        assert await bridge.app[DESK].agents() == before


async def test_wrap_up_shows_until_when_and_the_agent_can_end_it(make_bridge: BridgeFactory, database_url: str) -> None:
    """After alice's call she is in wrap-up until WRAP_UP_SECONDS are over; ending it frees her at once."""
    async with stores(make_bridge, database_url, wrap_up_seconds=600) as bridge:
        phone = await signed_in(bridge)
        status, body = await phone.send("POST", WRAP_UP)
        assert (status, body["busy"]) == (200, None)  # not in wrap-up: nothing to end, nothing changes
        await bridge.replay([recording("inbound_answered")])
        await bridge.settle_calls()
        status, body = await phone.look()
        assert (status, body["busy"], body["status"], body["chosen"]) == (200, "wrap_up", "wrap_up", "available")
        until = datetime.fromisoformat(body["wrap_up_until"])
        assert 590 < (until - bridge.clock()).total_seconds() <= 600
        status, body = await phone.send("POST", WRAP_UP)
        assert (status, body["busy"], body["status"], body["wrap_up_until"]) == (200, None, "available", None)
        alice = await agent(bridge)
        assert presence.busy_now(alice, bridge.clock()) is None
        assert presence.offerable(alice, bridge.clock(), bridge.app[DESK].routes.policy.presence)


async def test_missed_offers_say_why_the_bridge_set_the_agent_away(make_bridge: BridgeFactory) -> None:
    """With MISSED_OFFERS_AWAY=1, an offer alice let ring out sets her away, and her softphone says why."""
    async with make_bridge(**softphone_settings(missed_offers_away=1)) as bridge:
        phone = await signed_in(bridge)
        await bridge.replay([recording("voicemail_transcribed")])  # alice's leg rings out: no-answer
        await bridge.settle_calls()
        status, body = await phone.look()
        assert (status, body["chosen"], body["chosen_by"], body["reason"]) == (200, "away", "bridge", "missed_offers")
        assert body["why"] == (
            "The bridge set you away: a call offered to you rang out. Choose Available when you are back."
        )
        status, body = await phone.choose({"status": "available"})
        assert (status, body["chosen"], body["reason"], body["why"]) == (200, "available", None, None)


async def test_goodbye_makes_the_agent_offline_at_once(make_bridge: BridgeFactory, database_url: str) -> None:
    """The page's beacon carries the session in its body; the agent is offline until the page checks in again."""
    async with stores(make_bridge, database_url) as bridge:
        phone = await signed_in(bridge)
        await phone.look()
        beacon = Phone(bridge, None)
        status, _ = await beacon.send("POST", GOODBYE, data=phone.session,
                                      headers={"Content-Type": "text/plain;charset=UTF-8"})  # fmt: skip
        assert status == 204
        alice = await agent(bridge)
        policy = bridge.app[DESK].routes.policy.presence
        assert alice.left
        assert presence.presence(alice, bridge.clock(), policy) == "offline"
        assert alice.chosen == "available"  # her choice stays: coming back makes her available again
        for token in ["", "forged.session", "é"]:
            status, body = await beacon.send("POST", GOODBYE, data=token.encode())
            assert status == 401
            assert "session" in body["error"]
        status, body = await phone.look()
        assert (status, body["status"]) == (200, "available")
        status, _ = await phone.send("POST", GOODBYE)  # the header works too
        assert status == 204
        assert (await agent(bridge)).left


@asynccontextmanager
async def softphone_without_routing() -> AsyncIterator[str]:
    """Serve only the softphone's routes, with no desk: a bridge that keeps no presence."""
    settings = Settings(agents={"client:alice": 1001}, **softphone_settings())
    app = web.Application()
    app[CLOCK] = system_clock
    softphone.setup(app, settings, None)
    runner, url = await serve(app)
    try:
        yield url
    finally:
        await runner.cleanup()


async def test_without_routing_the_presence_routes_say_so() -> None:
    """404 saying that routing is not running, never a 500."""
    async with softphone_without_routing() as url:
        session = SessionSigner(API_KEY_SECRET.encode()).issue("alice", 1001, system_clock())
        for method, path in ROUTES:
            async with (
                aiohttp.ClientSession() as client,
                client.request(
                    method, url + path, headers={"Authorization": f"Bearer {session}"}, json={"status": "away"}
                ) as response,
            ):
                assert response.status == 404, path
                assert "routing is not running" in (response.reason or "")


def test_the_count_of_who_waits_is_the_agents_own_lines_callbacks_apart() -> None:
    """The page's "3 waiting, 1 callback": callers holding the line and callbacks kept in it, on the agent's lines."""
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    rows = [
        Waiting("CA1", now, line="Support"),
        Waiting("CA2", now, line="Support", callback="+14155550123"),
        Waiting("CA3", now, line="Sales"),
    ]
    assert line_up("client:alice", rows, None) == {"waiting": 2, "callbacks": 1}
    assert line_up("client:alice", rows, {"client:alice": frozenset({"Support"})}) == {"waiting": 1, "callbacks": 1}
    assert line_up("client:bob", rows, {"client:alice": frozenset({"Support"})}) == {"waiting": 0, "callbacks": 0}
