"""Exercise the sandbox's credentials, roles and rate limits over real loopback HTTP."""

from __future__ import annotations

import base64

import aiohttp
import pytest
from pytest_aiohttp.plugin import AiohttpClient

from bridge.devtools.sandbox import SandboxConfig, create_sandbox_app
from tests.sandbox_kit import Client, call, create_ticket, sandbox_of


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    return await aiohttp_client(create_sandbox_app())


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic " + base64.b64encode(b"bridge@example.com/token:wrong").decode()},
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Bearer some-token"},
        {"Authorization": "Token sandbox-token"},
    ],
)
async def test_rejects_missing_or_wrong_credentials(client: Client, headers: dict[str, str]) -> None:
    status, data, resp = await call(client, "POST", "/api/v2/users.json", {"user": {"name": "X"}}, headers=headers)
    assert status == 401
    assert data == {"error": "Couldn't authenticate you"}
    assert resp.headers["X-Rate-Limit"] == "700"
    assert 3001 not in sandbox_of(client).users


async def test_basic_auth_with_api_token(client: Client) -> None:
    status, data, resp = await call(client, "GET", "/api/v2/users/me.json")
    assert status == 200
    assert data["user"]["id"] == 1000
    assert data["user"]["email"] == "bridge@example.com"
    assert data["user"]["role"] == "agent"  # least privilege by default
    assert resp.headers["X-Rate-Limit"] == "700"
    assert resp.headers["X-Rate-Limit-Remaining"] == "699"


async def test_aiohttp_basic_auth_helper_is_accepted(client: Client) -> None:
    header = aiohttp.encode_basic_auth("bridge@example.com/token", "sandbox-token")
    async with client.get("/api/v2/users/me", headers={"Authorization": header}) as resp:
        assert resp.status == 200


async def test_bearer_auth_when_oauth_configured(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(create_sandbox_app(SandboxConfig(oauth_token="oauth-xyz")))
    status, data, _ = await call(client, "GET", "/api/v2/users/me", headers={"Authorization": "Bearer oauth-xyz"})
    assert status == 200
    assert data["user"]["id"] == 1000
    status, _, _ = await call(client, "GET", "/api/v2/users/me", headers={"Authorization": "Bearer nope"})
    assert status == 401


async def test_custom_credentials(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(create_sandbox_app(SandboxConfig(email="ops@acme.test", api_token="t0k")))
    good = "Basic " + base64.b64encode(b"ops@acme.test/token:t0k").decode()
    status, data, _ = await call(client, "GET", "/api/v2/users/me", headers={"Authorization": good})
    assert (status, data["user"]["email"]) == (200, "ops@acme.test")
    status, _, _ = await call(client, "GET", "/api/v2/users/me")
    assert status == 401


async def test_an_agent_token_may_not_list_tickets_but_may_list_a_users_requested_ones(client: Client) -> None:
    """Listing Tickets is for admins (Zendesk docs, Tickets); the requested list is what agents may call."""
    await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}, "external_id": "CA1", "requester_id": 2001})
    await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}, "external_id": "CA2", "requester_id": 2001})
    status, data, _ = await call(client, "GET", "/api/v2/tickets.json", params={"external_id": "CA1"})
    assert (status, data["error"]) == (403, "Forbidden")
    status, data, _ = await call(client, "GET", "/api/v2/users/2001/tickets/requested.json")
    assert (status, [t["external_id"] for t in data["tickets"]]) == (200, ["CA2", "CA1"])
    status, _, _ = await call(client, "GET", "/api/v2/users/9999/tickets/requested.json")
    assert status == 404
    await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}, "external_id": "CA3", "assignee_id": 1001})
    status, data, _ = await call(client, "GET", "/api/v2/users/1001/tickets/assigned.json")
    assert (status, [t["external_id"] for t in data["tickets"]]) == (200, ["CA3"])


async def test_rate_limit_429_is_text_plain(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(create_sandbox_app(SandboxConfig(rate_limit_per_minute=2)))
    sandbox = sandbox_of(client)
    now = [1000.0]
    sandbox.access.clock = lambda: now[0]
    remaining = []
    for _ in range(2):
        status, _, resp = await call(client, "GET", "/api/v2/users/me")
        assert status == 200
        assert resp.headers["X-Rate-Limit"] == "2"
        remaining.append(resp.headers["X-Rate-Limit-Remaining"])
    assert remaining == ["1", "0"]
    now[0] += 20.5
    status, text, resp = await call(client, "POST", "/api/v2/users", {"user": {"name": "X"}})
    assert status == 429
    assert resp.content_type == "text/plain"
    assert text == "Number of allowed API requests per minute exceeded"
    assert resp.headers["Retry-After"] == "40"
    assert resp.headers["X-Rate-Limit-Remaining"] == "0"
    assert 3001 not in sandbox.users
    assert sandbox.requests[-1]["status"] == 429
    now[0] += 40
    status, _, resp = await call(client, "POST", "/api/v2/users", {"user": {"name": "X"}})
    assert status == 201
    assert resp.headers["X-Rate-Limit-Remaining"] == "1"


async def test_unauthenticated_requests_do_not_use_the_budget(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(create_sandbox_app(SandboxConfig(rate_limit_per_minute=1)))
    status, _, _ = await call(client, "GET", "/api/v2/users/me", headers={})
    assert status == 401
    status, _, _ = await call(client, "GET", "/api/v2/users/me")
    assert status == 200


async def test_zero_rate_limit_blocks_everything(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(create_sandbox_app(SandboxConfig(rate_limit_per_minute=0)))
    status, _, resp = await call(client, "GET", "/api/v2/users/me")
    assert (status, resp.headers["Retry-After"]) == (429, "60")


async def test_rate_limit_headers_include_the_reset(client: Client) -> None:
    status, _, resp = await call(client, "GET", "/api/v2/users/me")
    assert status == 200
    assert resp.headers["X-Rate-Limit"] == "700"
    assert 0 <= int(resp.headers["ratelimit-reset"]) <= 60
