"""Exercise the sandbox's search (phone formats, order, the index's lag) over real loopback HTTP."""

from __future__ import annotations

import pytest
from pytest_aiohttp.plugin import AiohttpClient

from bridge.devtools.sandbox import SandboxConfig, create_sandbox_app
from tests.sandbox_kit import Client, call, create_ticket


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    return await aiohttp_client(create_sandbox_app())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("role:end-user phone:*4155550123", [2001]),
        ("role:end-user phone:*0123", [2001]),
        ("role:end-user phone:14155550123", [2001]),
        ("role:end-user phone:4155550123", []),
        ("role:end-user phone:*41555501", []),
        ("phone:*6505550111", [1003]),
        ("phone:16505550111", [1003]),
        ("role:end-user phone:*6505550111", []),
        ("role:agent phone:*6505550111", [1003]),
        ("role:end-user", [2001, 2002, 2003, 2004, 2005, 2006, 2007, 2009, 2010, 2011, 2012, 2008]),
        ("type:user Erin", [2002]),
        ("type:ticket phone:*0123", []),
        ("phone:*99", [2002, 2012]),
        ("role:end-user phone:*5035550147", [2003, 2011]),
        ("role:end-user phone:*15035550147", [2011]),
        ("role:end-user phone:*5035550160", [2006]),
        ("role:end-user phone:*5035550170", [2007, 2008]),
    ],
)
async def test_search_by_phone(client: Client, query: str, expected: list[int]) -> None:
    status, data, _ = await call(client, "GET", "/api/v2/search.json", params={"query": query})
    assert status == 200
    assert [user["id"] for user in data["results"]] == expected
    assert data["count"] == len(expected)
    assert data["next_page"] is None
    assert all(user["result_type"] == "user" for user in data["results"])


async def test_search_orders_recently_updated_first(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(create_sandbox_app(SandboxConfig(search_index_delay=0)))
    status, created, _ = await call(
        client, "POST", "/api/v2/users", {"user": {"name": "Dup", "phone": "+1 (415) 555-0123"}}
    )
    assert status == 201
    _, data, _ = await call(client, "GET", "/api/v2/search", params={"query": "role:end-user phone:*4155550123"})
    assert [user["id"] for user in data["results"]] == [created["user"]["id"], 2001]


async def test_search_lags_writes_but_external_id_is_immediate(client: Client) -> None:
    """A new user or ticket is invisible to search for the index delay; external_id finds the user at once."""
    body = {"user": {"name": "New", "phone": "+15035550999", "external_id": "bridge-phone:+15035550999"}}
    status, created, _ = await call(client, "POST", "/api/v2/users.json", body)
    assert status == 201
    await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}, "external_id": "CA9"})
    _, data, _ = await call(client, "GET", "/api/v2/search", params={"query": "phone:*5035550999"})
    assert data["results"] == []
    _, data, _ = await call(client, "GET", "/api/v2/search", params={"query": "type:ticket external_id:CA9"})
    assert data["results"] == []
    _, data, _ = await call(client, "GET", "/api/v2/users/search", params={"external_id": "bridge-phone:+15035550999"})
    assert [u["id"] for u in data["users"]] == [created["user"]["id"]]


async def test_indexed_tickets_are_found_by_external_id(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(create_sandbox_app(SandboxConfig(search_index_delay=0)))
    await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}, "external_id": "CA9"})
    _, data, _ = await call(client, "GET", "/api/v2/search", params={"query": "type:ticket external_id:CA9"})
    assert [(t["id"], t["result_type"]) for t in data["results"]] == [(1, "ticket")]
