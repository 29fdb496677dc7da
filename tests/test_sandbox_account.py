"""Exercise the Sandbox's Python API: what the demo and the tests call directly, without HTTP."""

from __future__ import annotations

import pytest
from pytest_aiohttp.plugin import AiohttpClient

from bridge.devtools.sandbox import Sandbox, SandboxError, create_sandbox_app
from tests.sandbox_kit import Client, sandbox_of


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    return await aiohttp_client(create_sandbox_app())


def test_python_api_without_http() -> None:
    sandbox = Sandbox()
    with pytest.raises(SandboxError) as missing:
        sandbox.update_ticket(5, {"ticket": {}})
    assert missing.value.status == 404
    assert missing.value.payload == {"error": "RecordNotFound", "description": "Not found"}
    with pytest.raises(SandboxError):
        sandbox.get_ticket(5)
    ticket = sandbox.create_voice_ticket({"ticket": {"via_id": 44, "voice_comment": {}}})
    assert ticket["comments"][0]["body"] == "Call from: unknown | To: unknown"
    sandbox.tickets_api.display(1001, "ticket", ticket["id"])
    with pytest.raises(SandboxError):
        sandbox.tickets_api.display(1001, "user", 4040)
    assert sandbox.snapshot()["displays"] == [{"agent_id": 1001, "kind": "ticket", "id": 1}]
    assert sandbox.list_tickets() == [ticket]
    assert sandbox.users_api.is_agent(1000)
    assert not sandbox.users_api.is_agent(True)


async def test_snapshot_is_a_copy(client: Client) -> None:
    sandbox = sandbox_of(client)
    snap = sandbox.snapshot()
    snap["users"][0]["name"] = "changed"
    assert sandbox.users[1000]["name"] == "Bridge Integration"
