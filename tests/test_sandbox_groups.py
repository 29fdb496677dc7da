"""The sandbox's groups and brands: shown to agents and admins as Zendesk does, and what tickets may name."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_aiohttp.plugin import AiohttpClient

from bridge.devtools.sandbox import SandboxConfig, create_sandbox_app
from bridge.devtools.sandbox.errors import FORBIDDEN
from tests.sandbox_kit import Client, call, create_ticket


async def sandbox_client(aiohttp_client: AiohttpClient, **config: Any) -> Client:
    """Return a test client of a sandbox made with these settings."""
    return await aiohttp_client(create_sandbox_app(SandboxConfig(**config)))


@pytest.mark.parametrize("role", ["agent", "admin"])
async def test_agents_and_admins_may_show_a_group_and_a_brand(aiohttp_client: AiohttpClient, role: str) -> None:
    """Groups, "Show Group", and Brands, "Show a Brand": allowed for admins and agents."""
    client = await sandbox_client(aiohttp_client, token_role=role)
    status, body, _ = await call(client, "GET", "/api/v2/groups/5001.json")
    assert status == 200
    assert {key: body["group"][key] for key in ("id", "name", "default", "deleted")} == {
        "id": 5001,
        "name": "Support",
        "default": True,
        "deleted": False,
    }
    status, body, _ = await call(client, "GET", "/api/v2/brands/6002")
    assert status == 200
    assert (body["brand"]["id"], body["brand"]["name"], body["brand"]["active"]) == (6002, "Acme Outlet", True)
    # Brands, JSON format: host_mapping "Only admins view this property".
    assert ("host_mapping" in body["brand"]) is (role == "admin")


async def test_an_end_user_token_may_show_neither(aiohttp_client: AiohttpClient) -> None:
    """Anyone but an agent or admin gets Zendesk's 403."""
    client = await sandbox_client(aiohttp_client, token_role="end-user")
    for path in ("/api/v2/groups/5001.json", "/api/v2/brands/6001.json"):
        status, body, _ = await call(client, "GET", path)
        assert (status, body) == (403, FORBIDDEN)


async def test_an_unknown_group_or_brand_is_not_found_and_tickets_may_not_name_it(
    aiohttp_client: AiohttpClient,
) -> None:
    """404 RecordNotFound to show; 422 naming the field to put on a ticket; the account's own are taken."""
    client = await sandbox_client(aiohttp_client)
    for path in ("/api/v2/groups/1.json", "/api/v2/brands/1.json"):
        status, body, _ = await call(client, "GET", path)
        assert (status, body["error"]) == (404, "RecordNotFound")
    ticket = {"via_id": 45, "subject": "Call", "external_id": "CA1", "requester_id": 2001, "comment": {"body": "Hi"}}
    status, body = await create_ticket(client, {**ticket, "group_id": 1, "brand_id": 1})
    assert status == 422
    assert set(body["details"]) == {"group_id", "brand_id"}
    status, body = await create_ticket(client, {**ticket, "group_id": 5002, "brand_id": 6002})
    assert status == 201
    assert (body["ticket"]["group_id"], body["ticket"]["brand_id"]) == (5002, 6002)
