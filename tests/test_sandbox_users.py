"""Exercise the sandbox's users and their phone identities over real loopback HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_aiohttp.plugin import AiohttpClient

from bridge.devtools.sandbox import create_sandbox_app
from bridge.devtools.sandbox.errors import SandboxError
from tests.sandbox_kit import Client, call, sandbox_of


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    return await aiohttp_client(create_sandbox_app())


async def test_show_user(client: Client) -> None:
    status, data, _ = await call(client, "GET", "/api/v2/users/2001.json")
    assert status == 200
    assert data["user"] == {
        "id": 2001,
        "name": "Dana Customer",
        "email": "dana@example.net",
        "phone": "+14155550123",
        "shared_phone_number": False,
        "role": "end-user",
        "custom_role_id": None,
        "suspended": False,
        "external_id": None,
        "organization_id": None,
        "tags": [],
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    }
    status, data, _ = await call(client, "GET", "/api/v2/users/9999")
    assert status == 404
    assert data == {"error": "RecordNotFound", "description": "Not found"}


async def test_a_users_role_and_custom_role_are_shown_as_an_admin_sets_them(client: Client) -> None:
    """Zendesk docs, Users JSON format: `role`, and `custom_role_id` for an agent's custom role (null otherwise)."""
    sandbox = sandbox_of(client)
    sandbox.set_role(1002, "agent", 360001)
    status, data, _ = await call(client, "GET", "/api/v2/users/1002.json")
    assert status == 200
    assert (data["user"]["role"], data["user"]["custom_role_id"]) == ("agent", 360001)
    sandbox.set_role(1002, "admin", 360001)  # an admin has no custom role
    status, data, _ = await call(client, "GET", "/api/v2/users/1002.json")
    assert (data["user"]["role"], data["user"]["custom_role_id"]) == ("admin", None)
    with pytest.raises(SandboxError):
        sandbox.set_role(9999, "agent")


async def test_create_user(client: Client) -> None:
    status, data, _ = await call(client, "POST", "/api/v2/users.json", {"user": {"name": "Caller: 15551234567"}})
    assert status == 201
    user = data["user"]
    assert user["id"] == 3001
    assert user["role"] == "end-user"
    assert user["phone"] is None
    assert user["created_at"].endswith("Z")
    body = {"user": {"name": "Frank", "phone": "+15551230000", "role": "agent", "email": "f@example.com"}}
    status, data, _ = await call(client, "POST", "/api/v2/users", body)
    assert status == 201
    assert (data["user"]["id"], data["user"]["role"], data["user"]["phone"]) == (3002, "agent", "+15551230000")
    assert sandbox_of(client).users[3002]["email"] == "f@example.com"
    status, data, _ = await call(client, "GET", "/api/v2/users/3002")
    assert data["user"]["name"] == "Frank"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user": {"phone": "+15551230000"}}, "name"),
        ({"user": {"name": "  "}}, "name"),
        ({"user": {"name": "X", "role": "owner"}}, "role"),
        ({"user": {"name": "X", "phone": 15551230000}}, "phone"),
        ({"user": {"name": "X", "email": "DANA@example.net"}}, "email"),
        ({"user": "X"}, "user"),
        (None, "user"),
    ],
)
async def test_create_user_validation(client: Client, body: Any, field: str) -> None:
    status, data, _ = await call(client, "POST", "/api/v2/users", body)
    assert status == 422
    assert data["error"] == "RecordInvalid"
    assert data["description"] == "Record validation errors"
    assert data["details"][field][0]["error"] == "InvalidValue"
    assert data["details"][field][0]["description"]
    assert 3001 not in sandbox_of(client).users


async def test_users_by_external_id_and_its_uniqueness(client: Client) -> None:
    """external_id finds a user at once, and a second user cannot take the same one."""
    user = {"user": {"name": "Caller", "phone": "+14155550100", "external_id": "bridge-phone:+14155550100"}}
    status, created, _ = await call(client, "POST", "/api/v2/users.json", user)
    assert status == 201
    status, data, _ = await call(
        client, "GET", "/api/v2/users/search.json", params={"external_id": "bridge-phone:+14155550100"}
    )
    assert status == 200
    assert [u["id"] for u in data["users"]] == [created["user"]["id"]]
    status, data, _ = await call(client, "POST", "/api/v2/users.json", user)
    assert status == 422
    assert "external_id" in data["details"]


async def test_phone_identities_are_listed(client: Client) -> None:
    status, data, _ = await call(client, "GET", "/api/v2/users/2006/identities.json")
    assert status == 200
    assert [(i["value"], i["primary"]) for i in data["identities"]] == [
        ("+1 503 555 0190", True),
        ("(503) 555-0160", False),
    ]
