"""Exercise the sandbox's HTTP layer over real loopback HTTP: JSON bodies, unknown endpoints, control endpoints."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_aiohttp.plugin import AiohttpClient

from bridge.devtools.sandbox import FaultRule, create_sandbox_app
from tests.sandbox_kit import AUTH, SEED_IDS, TICKETS, Client, call, create_ticket, sandbox_of


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    return await aiohttp_client(create_sandbox_app())


@pytest.mark.parametrize(("raw", "logged"), [(b"{not json", None), (b"[1, 2]", [1, 2]), (b"\xff\xfe", None)])
async def test_invalid_json_body(client: Client, raw: bytes, logged: Any) -> None:
    async with client.post(
        "/api/v2/users.json", data=raw, headers={**AUTH, "Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 400
        assert await resp.json() == {"error": "InvalidJSON"}
    assert sandbox_of(client).requests[-1]["body"] == logged
    assert 3001 not in sandbox_of(client).users


async def test_unknown_endpoint(client: Client) -> None:
    # /api/v2/calls/{id} is served now (tests/test_sandbox_calls.py); a Talk endpoint the sandbox lacks is not.
    status, data, _ = await call(client, "GET", "/api/v2/channels/voice/phone_numbers/1")
    assert (status, data["error"]) == (404, "InvalidEndpoint")
    status, data, _ = await call(client, "DELETE", "/api/v2/tickets/1")
    assert (status, data["error"]) == (404, "InvalidEndpoint")
    status, _, _ = await call(client, "GET", "/api/v2/channels/voice/phone_numbers/1", headers={})
    assert status == 401


async def test_state_endpoint(client: Client) -> None:
    await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}}, display_to_agent=1001)
    await call(client, "GET", "/api/v2/search", params={"query": "phone:*0123"})
    async with client.get("/sandbox/state") as resp:
        assert resp.status == 200
        state = await resp.json()
    assert [u["id"] for u in state["users"]] == SEED_IDS
    assert [t["id"] for t in state["tickets"]] == [1]
    assert state["displays"] == [{"agent_id": 1001, "kind": "ticket", "id": 1}]
    assert all(isinstance(entry.pop("at"), float) for entry in state["requests"])
    assert state["requests"] == [
        {
            "method": "POST",
            "path": TICKETS,
            "query": {},
            "status": 201,
            "body": {"ticket": {"via_id": 45, "comment": {"body": "x"}}, "display_to_agent": 1001},
            "fault": None,
        },
        {
            "method": "GET",
            "path": "/api/v2/search",
            "query": {"query": "phone:*0123"},
            "status": 200,
            "body": None,
            "fault": None,
        },
    ]
    snapshot = sandbox_of(client).snapshot()
    for entry in snapshot["requests"]:
        del entry["at"]
    assert state == snapshot


async def test_reset(client: Client) -> None:
    await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}}, display_to_agent=1001)
    await call(client, "POST", "/api/v2/users", {"user": {"name": "New"}})
    await call(client, "PUT", "/api/v2/tickets/1", {"ticket": {"comment": {"body": "y"}}})
    sandbox = sandbox_of(client)
    sandbox.add_faults([FaultRule(method="GET", path_prefix="/api/v2/users/me", kind="500")])
    sandbox.set_random_faults(0.5, ["503"], seed=1)
    async with client.post("/sandbox/reset") as resp:
        assert resp.status == 200
    snap = sandbox.snapshot()
    assert snap["tickets"] == snap["displays"] == snap["requests"] == []
    assert sorted(sandbox.users) == SEED_IDS
    assert sandbox.fault_state() == {"rules": [], "random": None}
    status, _, _ = await call(client, "GET", "/api/v2/users/me")
    assert status == 200
    _, data = await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}})
    assert (data["ticket"]["id"], data["ticket"]["comments"][0]["id"]) == (1, 1)
    _, data, _ = await call(client, "POST", "/api/v2/users", {"user": {"name": "New"}})
    assert data["user"]["id"] == 3001


async def test_writes_need_a_json_content_type(client: Client) -> None:
    async with client.post("/api/v2/channels/voice/agents/1001/users/2001/display.json", headers=AUTH) as resp:
        assert resp.status == 415
    assert sandbox_of(client).displays == []
