"""Exercise the Zendesk sandbox over real loopback HTTP."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp.plugin import AiohttpClient

from bridge.devtools import sandbox as sandbox_module
from bridge.devtools.sandbox import (
    MAX_COMMENTS,
    SANDBOX,
    FaultRule,
    Sandbox,
    SandboxConfig,
    SandboxError,
    create_sandbox_app,
)
from tests.conftest import eventually

Client = TestClient[web.Request, web.Application]
SEED_IDS = [1000, 1001, 1002, 1003, 1004, *range(2001, 2013)]

BASIC = "Basic " + base64.b64encode(b"bridge@example.com/token:sandbox-token").decode()
AUTH = {"Authorization": BASIC}
TICKETS = "/api/v2/channels/voice/tickets.json"
VOICE_COMMENT = {
    "from": "+14155550123",
    "to": "+16505550100",
    "recording_url": "https://media.example.com/rec/RE123.mp3",
    "started_at": "2024-05-01T10:00:00Z",
    "call_duration": 42,
    "answered_by_id": 1003,
    "transcription_text": "Hi,\nplease call me back",
    "location": "Dublin, IE",
}


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    return await aiohttp_client(create_sandbox_app())


def sandbox_of(client: Client) -> Sandbox:
    return client.app[SANDBOX]  # type: ignore[index]


async def call(
    client: Client, method: str, path: str, body: Any = None, **kwargs: Any
) -> tuple[int, Any, aiohttp.ClientResponse]:
    headers = kwargs.pop("headers", AUTH)
    if body is None and method in ("POST", "PUT"):
        # An empty JSON body, as the bridge sends to the display endpoints: Zendesk wants the content type.
        kwargs.setdefault("data", b"")
        headers = {**headers, "Content-Type": "application/json"}
    async with client.request(method, path, json=body, headers=headers, **kwargs) as resp:
        data = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, data, resp


async def create_ticket(client: Client, ticket: dict[str, Any], **extra: Any) -> tuple[int, Any]:
    status, data, _ = await call(client, "POST", TICKETS, {"ticket": ticket, **extra})
    return status, data


# -- auth ------------------------------------------------------------------------------------------


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


# -- users and search ------------------------------------------------------------------------------


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
        "suspended": False,
        "external_id": None,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    }
    status, data, _ = await call(client, "GET", "/api/v2/users/9999")
    assert status == 404
    assert data == {"error": "RecordNotFound", "description": "Not found"}


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


@pytest.mark.parametrize(("raw", "logged"), [(b"{not json", None), (b"[1, 2]", [1, 2]), (b"\xff\xfe", None)])
async def test_invalid_json_body(client: Client, raw: bytes, logged: Any) -> None:
    async with client.post(
        "/api/v2/users.json", data=raw, headers={**AUTH, "Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 400
        assert await resp.json() == {"error": "InvalidJSON"}
    assert sandbox_of(client).requests[-1]["body"] == logged
    assert 3001 not in sandbox_of(client).users


# -- TPE ticket creation ---------------------------------------------------------------------------


async def test_create_voicemail_ticket_with_pop(client: Client) -> None:
    status, data = await create_ticket(
        client,
        {
            "via_id": 44,
            "subject": "Voicemail from +14155550123",
            "requester_id": 2001,
            "external_id": "CA0123",
            "tags": ["voicemail", "twilio"],
            "additional_tags": ["twilio", "bridge"],
            "voice_comment": VOICE_COMMENT,
        },
        display_to_agent=1003,
    )
    assert status == 201
    ticket = data["ticket"]
    assert ticket["id"] == 1
    assert ticket["via_id"] == 44
    assert ticket["via"] == {"channel": "voice"}
    assert ticket["status"] == "new"
    assert ticket["requester_id"] == 2001
    assert ticket["assignee_id"] is None
    assert ticket["external_id"] == "CA0123"
    assert ticket["tags"] == ["voicemail", "twilio", "bridge"]
    [comment] = ticket["comments"]
    assert comment["type"] == "VoiceComment"
    assert comment["public"] is False
    assert comment["author_id"] == 1000
    assert comment["data"] == VOICE_COMMENT
    assert "\n" not in comment["body"]
    assert comment["body"].startswith("Call from: +14155550123 | To: +16505550100 | Answered by: Carol Agent")
    assert "Length of phone call: 42 seconds" in comment["body"]
    assert "Transcription: Hi, please call me back" in comment["body"]
    assert "Recording: https://media.example.com/rec/RE123.mp3" in comment["body"]
    sandbox = sandbox_of(client)
    assert sandbox.displays == [{"agent_id": 1003, "kind": "ticket", "id": 1}]
    assert sandbox.tickets[1] == ticket


async def test_create_call_ticket_with_comment_and_voice_comment(client: Client) -> None:
    status, data = await create_ticket(
        client,
        {
            "via_id": 45,
            "assignee_id": 1001,
            "comment": {"body": "Inbound call", "public": False},
            "voice_comment": {"from": "+1 415\n555 0199", "answered_by_id": 4242},
        },
    )
    assert status == 201
    ticket = data["ticket"]
    assert ticket["status"] == "open"
    assert ticket["requester_id"] == 1000
    assert ticket["subject"] is None
    assert ticket["tags"] == []
    assert [c["type"] for c in ticket["comments"]] == ["Comment", "VoiceComment"]
    assert ticket["comments"][0] == {
        "id": 1,
        "type": "Comment",
        "body": "Inbound call",
        "public": False,
        "author_id": 1000,
        "created_at": ticket["created_at"],
    }
    assert ticket["comments"][1]["body"] == "Call from: +1 415 555 0199 | To: unknown | Answered by: 4242"
    assert sandbox_of(client).displays == []
    status, data = await create_ticket(client, {"via_id": 46, "comment": {"body": "Out"}, "status": "pending"})
    assert (status, data["ticket"]["id"], data["ticket"]["status"]) == (201, 2, "pending")
    assert data["ticket"]["comments"][0]["public"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ticket": {"via_id": 47, "comment": {"body": "x"}}}, "via_id"),
        ({"ticket": {"comment": {"body": "x"}}}, "via_id"),
        ({"ticket": {"via_id": True, "comment": {"body": "x"}}}, "via_id"),
        ({"ticket": {"via_id": 45, "comment": {"body": "x"}}, "display_to_agent": 2001}, "display_to_agent"),
        ({"ticket": {"via_id": 45, "comment": {"body": "x"}}, "display_to_agent": 777}, "display_to_agent"),
        ({"ticket": {"via_id": 45, "comment": {"body": "x"}, "requester_id": 9999}}, "requester_id"),
        ({"ticket": {"via_id": 45, "comment": {"body": "x"}, "requester_id": "2001"}}, "requester_id"),
        ({"ticket": {"via_id": 45, "comment": {"body": "x"}, "assignee_id": 2001}}, "assignee_id"),
        ({"ticket": {"via_id": 45, "comment": {"body": "x"}, "status": "done"}}, "status"),
        ({"ticket": {"via_id": 45, "comment": {"body": "x"}, "subject": 5}}, "subject"),
        ({"ticket": {"via_id": 45, "comment": {"body": "x"}, "tags": "a b"}}, "tags"),
        ({"ticket": {"via_id": 45, "comment": {"body": "x"}, "additional_tags": [1]}}, "additional_tags"),
        ({"ticket": {"via_id": 45}}, "comment"),
        ({"ticket": {"via_id": 45, "comment": {"body": ""}}}, "comment"),
        ({"ticket": {"via_id": 45, "comment": "hello"}}, "comment"),
        ({"ticket": {"via_id": 45, "comment": {"body": "x", "public": "no"}}}, "comment"),
        ({"ticket": {"via_id": 45, "voice_comment": "call"}}, "voice_comment"),
        ({"display_to_agent": 1001}, "ticket"),
    ],
)
async def test_create_ticket_validation_creates_nothing(client: Client, body: Any, field: str) -> None:
    status, data, _ = await call(client, "POST", TICKETS, body)
    assert status == 422
    assert data["error"] == "RecordInvalid"
    assert field in data["details"]
    sandbox = sandbox_of(client)
    assert sandbox.tickets == {}
    assert sandbox.displays == []


async def test_display_to_end_user_reports_every_error(client: Client) -> None:
    body = {"ticket": {"via_id": 47, "comment": {"body": "x"}}, "display_to_agent": 2001}
    status, data, _ = await call(client, "POST", "/api/v2/channels/voice/tickets", body)
    assert status == 422
    assert set(data["details"]) == {"display_to_agent", "via_id"}
    assert sandbox_of(client).tickets == {}


# -- ticket update, show, list ---------------------------------------------------------------------


async def test_put_voice_comment_after_create(client: Client) -> None:
    _, created = await create_ticket(client, {"via_id": 45, "comment": {"body": "Call started"}, "tags": ["a"]})
    ticket_id = created["ticket"]["id"]
    body = {"ticket": {"voice_comment": VOICE_COMMENT, "additional_tags": ["b", "a"], "assignee_id": 1002}}
    status, data, _ = await call(client, "PUT", f"/api/v2/tickets/{ticket_id}.json", body)
    assert status == 200
    ticket = data["ticket"]
    assert [c["type"] for c in ticket["comments"]] == ["Comment", "VoiceComment"]
    assert ticket["comments"][1]["data"] == VOICE_COMMENT
    assert ticket["comments"][1]["id"] == 2
    assert ticket["tags"] == ["a", "b"]
    assert (ticket["assignee_id"], ticket["status"]) == (1002, "open")
    assert sandbox_of(client).tickets[ticket_id]["comments"][1]["type"] == "VoiceComment"


async def test_put_replaces_fields(client: Client) -> None:
    _, created = await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}, "tags": ["a", "b"]})
    ticket_id = created["ticket"]["id"]
    body = {
        "ticket": {
            "tags": ["c", "a"],
            "remove_tags": ["a"],
            "status": "solved",
            "subject": "Done",
            "external_id": "CA9",
            "comment": {"body": "Wrap-up", "public": False},
        }
    }
    status, data, _ = await call(client, "PUT", f"/api/v2/tickets/{ticket_id}", body)
    assert status == 200
    ticket = data["ticket"]
    assert ticket["tags"] == ["c"]
    assert (ticket["status"], ticket["subject"], ticket["external_id"]) == ("solved", "Done", "CA9")
    assert ticket["comments"][-1]["body"] == "Wrap-up"
    status, data, _ = await call(client, "PUT", f"/api/v2/tickets/{ticket_id}", {"ticket": {"assignee_id": None}})
    assert (status, data["ticket"]["assignee_id"], data["ticket"]["status"]) == (200, None, "solved")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ticket": {"assignee_id": 2002}}, "assignee_id"),
        ({"ticket": {"status": "gone"}}, "status"),
        ({"ticket": {"external_id": ["x"]}}, "external_id"),
        ({"ticket": {"remove_tags": "a"}}, "remove_tags"),
        ({"ticket": {"comment": {"body": None}}}, "comment"),
        ({"comment": {"body": "x"}}, "ticket"),
    ],
)
async def test_put_validation(client: Client, body: Any, field: str) -> None:
    _, created = await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}})
    before = sandbox_of(client).get_ticket(created["ticket"]["id"])
    status, data, _ = await call(client, "PUT", "/api/v2/tickets/1", body)
    assert status == 422
    assert field in data["details"]
    assert sandbox_of(client).tickets[1] == before


async def test_put_rejects_comment_past_the_limit(client: Client) -> None:
    await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}})
    sandbox = sandbox_of(client)
    sandbox.tickets[1]["comments"] = [{"id": n, "type": "Comment"} for n in range(MAX_COMMENTS)]
    status, data, _ = await call(client, "PUT", "/api/v2/tickets/1", {"ticket": {"comment": {"body": "one more"}}})
    assert status == 422
    assert "comment" in data["details"]
    assert len(sandbox.tickets[1]["comments"]) == MAX_COMMENTS
    status, _, _ = await call(client, "PUT", "/api/v2/tickets/1", {"ticket": {"tags": ["still-ok"]}})
    assert status == 200


async def test_unknown_ticket_is_404(client: Client) -> None:
    for method, body in (("GET", None), ("PUT", {"ticket": {"comment": {"body": "x"}}})):
        for path in ("/api/v2/tickets/42", "/api/v2/tickets/42.json"):
            status, data, _ = await call(client, method, path, body)
            assert (status, data) == (404, {"error": "RecordNotFound", "description": "Not found"})
    async with client.put(
        "/api/v2/tickets/42", data=b"{bad", headers={**AUTH, "Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 404


async def test_show_ticket(client: Client) -> None:
    _, created = await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}})
    for path in ("/api/v2/tickets/1", "/api/v2/tickets/1.json"):
        status, data, _ = await call(client, "GET", path)
        assert (status, data) == (200, created)


async def test_list_tickets_by_external_id(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(create_sandbox_app(SandboxConfig(token_role="admin")))
    for sid in ("CA1", "CA2", "CA1"):
        await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}, "external_id": sid})
    status, data, _ = await call(client, "GET", "/api/v2/tickets.json", params={"external_id": "CA1"})
    assert status == 200
    assert [t["id"] for t in data["tickets"]] == [1, 3]
    assert data["count"] == 2
    _, data, _ = await call(client, "GET", "/api/v2/tickets", params={"external_id": "CA404"})
    assert data == {"tickets": [], "count": 0}
    _, data, _ = await call(client, "GET", "/api/v2/tickets")
    assert [t["id"] for t in data["tickets"]] == [1, 2, 3]


# -- display endpoints -----------------------------------------------------------------------------


async def test_display_user_and_ticket(client: Client) -> None:
    await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}})
    status, data, _ = await call(client, "POST", "/api/v2/channels/voice/agents/1001/users/2001/display.json")
    assert (status, data) == (200, {})
    status, data, _ = await call(client, "POST", "/api/v2/channels/voice/agents/1000/tickets/1/display")
    assert (status, data) == (200, {})
    assert sandbox_of(client).displays == [
        {"agent_id": 1001, "kind": "user", "id": 2001},
        {"agent_id": 1000, "kind": "ticket", "id": 1},
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/channels/voice/agents/2001/users/2002/display",
        "/api/v2/channels/voice/agents/5555/users/2002/display.json",
        "/api/v2/channels/voice/agents/1001/users/9999/display",
        "/api/v2/channels/voice/agents/1001/tickets/77/display.json",
        "/api/v2/channels/voice/agents/2002/tickets/1/display",
    ],
)
async def test_display_404(client: Client, path: str) -> None:
    await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}})
    status, data, _ = await call(client, "POST", path)
    assert (status, data) == (404, {"error": "RecordNotFound", "description": "Not found"})
    assert sandbox_of(client).displays == []


async def test_unknown_endpoint(client: Client) -> None:
    # /api/v2/calls/{id} is served now (tests/test_sandbox_calls.py); a Talk endpoint the sandbox lacks is not.
    status, data, _ = await call(client, "GET", "/api/v2/channels/voice/phone_numbers/1")
    assert (status, data["error"]) == (404, "InvalidEndpoint")
    status, data, _ = await call(client, "DELETE", "/api/v2/tickets/1")
    assert (status, data["error"]) == (404, "InvalidEndpoint")
    status, _, _ = await call(client, "GET", "/api/v2/channels/voice/phone_numbers/1", headers={})
    assert status == 401


# -- control endpoints -----------------------------------------------------------------------------


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


async def test_snapshot_is_a_copy(client: Client) -> None:
    sandbox = sandbox_of(client)
    snap = sandbox.snapshot()
    snap["users"][0]["name"] = "changed"
    assert sandbox.users[1000]["name"] == "Bridge Integration"


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


# -- faults ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "503"])
async def test_server_error_faults_change_nothing(client: Client, kind: str) -> None:
    sandbox = sandbox_of(client)
    sandbox.add_faults([FaultRule(method="POST", path_prefix="/api/v2/users", kind=kind)])
    status, data, resp = await call(client, "POST", "/api/v2/users.json", {"user": {"name": "X"}})
    assert status == int(kind)
    assert data["error"] == "SandboxFault"
    assert "X-Rate-Limit" in resp.headers
    assert 3001 not in sandbox.users
    assert sandbox.requests[-1]["status"] == int(kind)
    assert sandbox.requests[-1]["fault"] == kind
    status, _, _ = await call(client, "POST", "/api/v2/users.json", {"user": {"name": "X"}})
    assert status == 201


async def test_fault_rules_match_method_and_count_down(client: Client) -> None:
    sandbox = sandbox_of(client)
    rule = FaultRule(method="get", path_prefix="/api/v2/users/", kind="503", times=2)
    sandbox.add_faults([rule])
    status, _, _ = await call(client, "POST", "/api/v2/users", {"user": {"name": "X"}})
    assert status == 201
    status, _, _ = await call(client, "GET", "/api/v2/search", params={"query": "phone:*0123"})
    assert status == 200
    assert [(await call(client, "GET", "/api/v2/users/me"))[0] for _ in range(3)] == [503, 503, 200]
    assert rule.times == 2  # the caller's rule is copied, not consumed


async def test_429_fault_is_text_plain_with_ceiled_retry_after(client: Client) -> None:
    sandbox = sandbox_of(client)
    sandbox.add_faults([FaultRule(method=None, path_prefix="/api/v2/channels", kind="429", retry_after=1.2)])
    status, text, resp = await call(client, "POST", TICKETS, {"ticket": {"via_id": 45, "comment": {"body": "x"}}})
    assert status == 429
    assert resp.content_type == "text/plain"
    assert text == "Number of allowed API requests per minute exceeded"
    assert resp.headers["Retry-After"] == "2"
    assert sandbox.tickets == {}


async def test_drop_closes_connection_and_changes_nothing(client: Client) -> None:
    sandbox = sandbox_of(client)
    sandbox.add_faults([FaultRule(method="POST", path_prefix=TICKETS, kind="drop")])
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}, "external_id": "CA1"})
    assert sandbox.tickets == {}
    assert sandbox.requests[-1]["status"] == 0
    assert sandbox.requests[-1]["fault"] == "drop"
    status, data = await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}, "external_id": "CA1"})
    assert (status, data["ticket"]["id"]) == (201, 1)


async def test_drop_on_get(client: Client) -> None:
    sandbox_of(client).add_faults([FaultRule(method="GET", path_prefix="/api/v2/users/me", kind="drop")])
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(client, "GET", "/api/v2/users/me")


async def test_drop_after_creates_ticket_but_client_never_hears(client: Client) -> None:
    sandbox = sandbox_of(client)
    sandbox.add_faults([FaultRule(method="POST", path_prefix="/api/v2/channels/voice/tickets", kind="drop_after")])
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await create_ticket(
            client, {"via_id": 45, "comment": {"body": "x"}, "external_id": "CA77"}, display_to_agent=1001
        )
    assert list(sandbox.tickets) == [1]
    assert sandbox.displays == [{"agent_id": 1001, "kind": "ticket", "id": 1}]
    assert (sandbox.requests[-1]["status"], sandbox.requests[-1]["fault"]) == (0, "drop_after")
    status, data, _ = await call(client, "GET", "/api/v2/users/1000/tickets/requested.json")
    assert (status, [t["id"] for t in data["tickets"]]) == (200, [1])


async def test_hang_is_cancelled_when_client_times_out(client: Client) -> None:
    sandbox = sandbox_of(client)
    sandbox.add_faults([FaultRule(method="GET", path_prefix="/api/v2/users/me", kind="hang")])
    with pytest.raises(asyncio.TimeoutError):
        await call(client, "GET", "/api/v2/users/me", timeout=aiohttp.ClientTimeout(total=0.2))
    await asyncio.wait_for(sandbox.wait_for_hangs(0), timeout=5)
    assert (sandbox.requests[-1]["status"], sandbox.requests[-1]["fault"]) == (0, "hang")
    status, _, _ = await call(client, "GET", "/api/v2/users/me")
    assert status == 200


async def _start_runner(sandbox_app: web.Application) -> tuple[web.AppRunner, str]:
    # A plain AppRunner, as `run_app` uses: it does not cancel handlers when the client goes away.
    runner = web.AppRunner(sandbox_app, handler_cancellation=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def test_hang_ends_on_disconnect_without_handler_cancellation() -> None:
    app = create_sandbox_app()
    sandbox = app[SANDBOX]
    sandbox.add_faults([FaultRule(method=None, path_prefix="/api/v2/search", kind="hang")])
    runner, base = await _start_runner(app)
    try:
        async with aiohttp.ClientSession(headers=AUTH) as session:
            with pytest.raises(asyncio.TimeoutError):
                await session.get(f"{base}/api/v2/search", timeout=aiohttp.ClientTimeout(total=0.2))
        await asyncio.wait_for(sandbox.wait_for_hangs(0), timeout=5)
    finally:
        await runner.cleanup()


async def test_shutdown_releases_hanging_requests() -> None:
    app = create_sandbox_app()
    sandbox = app[SANDBOX]
    sandbox.add_faults([FaultRule(method=None, path_prefix="/api/v2/users/me", kind="hang")])
    runner, base = await _start_runner(app)
    async with aiohttp.ClientSession(headers=AUTH) as session:
        pending = asyncio.ensure_future(session.get(f"{base}/api/v2/users/me"))
        await asyncio.wait_for(sandbox.wait_for_hangs(1), timeout=5)
        await asyncio.wait_for(runner.cleanup(), timeout=5)
        async with await pending as resp:
            assert resp.status == 504
    assert sandbox.hangs_released
    assert sandbox.active_hangs == 0


async def test_hang_that_outlives_its_limit_answers_504(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_module, "HANG_SECONDS", 0.0)
    sandbox_of(client).add_faults([FaultRule(method=None, path_prefix="/api/v2/users/me", kind="hang")])
    status, data, _ = await call(client, "GET", "/api/v2/users/me")
    assert (status, data["error"]) == (504, "GatewayTimeout")
    assert sandbox_of(client).active_hangs == 0


async def test_rules_only_via_control_endpoint(client: Client) -> None:
    payload = {"rules": [{"kind": "drop", "times": 2}]}
    async with client.post("/sandbox/faults", json=payload) as resp:
        state = await resp.json()
    assert state == {
        "rules": [{"method": None, "path_prefix": "/api/v2", "kind": "drop", "times": 2, "retry_after": 1.0}],
        "random": None,
    }
    for _ in range(2):
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await call(client, "GET", "/api/v2/users/me")
    status, _, _ = await call(client, "GET", "/api/v2/users/me")
    assert status == 200


async def test_random_faults_via_control_endpoint(client: Client) -> None:
    payload = {"random": {"rate": 1.0, "kinds": ["503"], "seed": 7}}
    async with client.post("/sandbox/faults", json=payload) as resp:
        assert resp.status == 200
        assert await resp.json() == {"rules": [], "random": {"rate": 1.0, "kinds": ["503"], "seed": 7}}
    assert [(await call(client, "GET", "/api/v2/users/me"))[0] for _ in range(3)] == [503, 503, 503]
    async with client.get("/sandbox/state") as resp:  # control endpoints are never faulted
        assert resp.status == 200
    async with client.delete("/sandbox/faults") as resp:
        assert await resp.json() == {"rules": [], "random": None}
    status, _, _ = await call(client, "GET", "/api/v2/users/me")
    assert status == 200


async def test_rules_via_control_endpoint_take_precedence(client: Client) -> None:
    payload = {
        "rules": [{"method": "GET", "path_prefix": "/api/v2/users/me", "kind": "429", "retry_after": 3}],
        "random": {"rate": 1.0, "kinds": ["500"]},
    }
    async with client.post("/sandbox/faults", json=payload) as resp:
        state = await resp.json()
    assert state["rules"] == [
        {"method": "GET", "path_prefix": "/api/v2/users/me", "kind": "429", "times": 1, "retry_after": 3.0}
    ]
    status, _, resp = await call(client, "GET", "/api/v2/users/me")
    assert (status, resp.headers["Retry-After"], resp.headers["X-Rate-Limit-Remaining"]) == (429, "3", "700")
    status, _, _ = await call(client, "GET", "/api/v2/users/me")
    assert status == 500


async def test_random_faults_are_seeded_and_probabilistic() -> None:
    def draws(seed: int) -> list[str | None]:
        sandbox = Sandbox()
        sandbox.set_random_faults(0.3, ["500", "503", "429", "hang", "drop"], seed=seed)
        faults = (sandbox.next_fault("GET", "/api/v2/users/me") for _ in range(200))
        return [fault.kind if fault else None for fault in faults]

    first = draws(7)
    assert first == draws(7)
    assert first != draws(8)
    hit = [kind for kind in first if kind is not None]
    assert 30 <= len(hit) <= 90
    assert set(hit) == {"500", "503", "429", "hang", "drop"}


async def test_random_faults_rate_zero_disables() -> None:
    sandbox = Sandbox()
    sandbox.set_random_faults(0.5, ["500"], seed=1)
    sandbox.set_random_faults(0, [], seed=1)
    assert sandbox.fault_state()["random"] is None
    assert sandbox.next_fault("GET", "/api/v2/users/me") is None


@pytest.mark.parametrize(
    "payload",
    [
        {"rules": [{"kind": "teapot"}]},
        {"rules": [{"kind": "500", "times": 0}]},
        {"rules": [{"kind": "429", "retry_after": -1}]},
        {"rules": [{"path_prefix": "/api"}]},
        {"rules": ["500"]},
        {"rules": [{"kind": "500", "method": 1}]},
        {"rules": {"kind": "500"}},
        {"rules": [{"kind": "500"}], "random": {"rate": 2, "kinds": ["500"]}},
        {"random": {"rate": 0.5, "kinds": ["boom"]}},
        {"random": {"rate": 0.5, "kinds": []}},
        {"random": {"kinds": ["500"]}},
        {"random": "often"},
    ],
)
async def test_invalid_fault_payloads_apply_nothing(client: Client, payload: Any) -> None:
    async with client.post("/sandbox/faults", json=payload) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "InvalidFault"
    assert sandbox_of(client).fault_state() == {"rules": [], "random": None}


async def test_fault_endpoint_rejects_invalid_json(client: Client) -> None:
    async with client.post("/sandbox/faults", data=b"nope") as resp:
        assert resp.status == 400
        assert await resp.json() == {"error": "InvalidJSON"}


def test_fault_rule_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultRule(method=None, path_prefix="/", kind="404")
    with pytest.raises(ValueError, match="times"):
        FaultRule(method=None, path_prefix="/", kind="500", times=0)
    with pytest.raises(ValueError, match="rate"):
        Sandbox().set_random_faults(1.5, ["500"], seed=0)


async def test_faults_apply_before_auth(client: Client) -> None:
    sandbox_of(client).add_faults([FaultRule(method=None, path_prefix="/api/v2", kind="500")])
    status, _, _ = await call(client, "GET", "/api/v2/users/me", headers={})
    assert status == 500


# -- rate limiting ---------------------------------------------------------------------------------


async def test_rate_limit_429_is_text_plain(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(create_sandbox_app(SandboxConfig(rate_limit_per_minute=2)))
    sandbox = sandbox_of(client)
    now = [1000.0]
    sandbox.clock = lambda: now[0]
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


# -- plain Python API ------------------------------------------------------------------------------


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
    sandbox.display(1001, "ticket", ticket["id"])
    with pytest.raises(SandboxError):
        sandbox.display(1001, "user", 4040)
    assert sandbox.snapshot()["displays"] == [{"agent_id": 1001, "kind": "ticket", "id": 1}]
    assert sandbox.list_tickets() == [ticket]
    assert sandbox.is_agent(1000)
    assert not sandbox.is_agent(True)


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


# -- as strict as Zendesk: roles, index lag, phones, conflicts, closed tickets, warnings ------------------


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


async def test_phone_identities_are_listed(client: Client) -> None:
    status, data, _ = await call(client, "GET", "/api/v2/users/2006/identities.json")
    assert status == 200
    assert [(i["value"], i["primary"]) for i in data["identities"]] == [
        ("+1 503 555 0190", True),
        ("(503) 555-0160", False),
    ]


async def test_closed_ticket_refuses_updates_and_a_merge_closes_the_source(client: Client) -> None:
    """Merging closes the source (tag closed_by_merge, a comment naming the target); updates then get 422."""
    await create_ticket(client, {"via_id": 45, "subject": "Call", "comment": {"body": "x"}})
    await create_ticket(client, {"via_id": 45, "subject": "Older", "comment": {"body": "y"}})
    status, _, _ = await call(client, "POST", "/api/v2/tickets/2/merge.json", {"ids": [1]})
    assert status == 200
    source = sandbox_of(client).tickets[1]
    assert (source["status"], source["tags"]) == ("closed", ["closed_by_merge"])
    assert source["comments"][-1]["body"].startswith("This request was closed and merged into request #2")
    status, data, _ = await call(client, "PUT", "/api/v2/tickets/1.json", {"ticket": {"comment": {"body": "z"}}})
    assert status == 422
    assert data["details"] == {
        "status": [{"description": "Status: closed prevents ticket update", "error": "InvalidValue"}]
    }
    status, _, _ = await call(client, "POST", "/api/v2/tickets/2/merge.json", {"ids": "1"})
    assert status == 422
    status, _, _ = await call(client, "POST", "/api/v2/tickets/9/merge.json", {"ids": [1]})
    assert status == 404


async def test_follow_up_must_name_a_closed_ticket(client: Client) -> None:
    await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}})
    status, data = await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}, "via_followup_source_id": 1})
    assert (status, list(data["details"])) == (422, ["via_followup_source_id"])
    sandbox_of(client).close_ticket(1)
    status, data = await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}, "via_followup_source_id": 1})
    assert (status, data["ticket"]["via_followup_source_id"]) == (201, 1)
    sandbox_of(client).delete_ticket(2)
    status, _, _ = await call(client, "GET", "/api/v2/tickets/2.json")
    assert status == 404
    with pytest.raises(SandboxError):
        sandbox_of(client).delete_ticket(2)


@pytest.mark.parametrize(
    ("ticket", "field"),
    [
        ({"assignee_id": 1004}, "assignee_id"),  # a suspended agent
        ({"assignee_id": 2001}, "assignee_id"),  # downgraded to end-user
        ({"requester_id": 2012}, "requester_id"),  # a suspended end-user
        ({"group_id": 1}, "group_id"),
        ({"brand_id": 1}, "brand_id"),
        ({"voice_comment": {"from": "", "to": "+16505550100", "started_at": "2024-01-01T00:00:00Z"}}, "voice_comment"),
    ],
)
async def test_422_names_the_field_at_fault(client: Client, ticket: dict[str, Any], field: str) -> None:
    status, data = await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}, **ticket})
    assert (status, list(data["details"])) == (422, [field])


async def test_group_and_brand_are_kept(client: Client) -> None:
    status, data = await create_ticket(
        client, {"via_id": 44, "comment": {"body": "x"}, "group_id": 5001, "brand_id": 6001}
    )
    assert (status, data["ticket"]["group_id"], data["ticket"]["brand_id"]) == (201, 5001, 6001)
    status, data, _ = await call(client, "PUT", "/api/v2/tickets/1", {"ticket": {"group_id": 5002}})
    assert (status, data["ticket"]["group_id"]) == (200, 5002)
    assert (await call(client, "GET", "/api/v2/groups/5001"))[0] == 200
    assert (await call(client, "GET", "/api/v2/groups/1"))[0] == 404
    assert (await call(client, "GET", "/api/v2/brands/6001"))[0] == 200
    assert (await call(client, "GET", "/api/v2/brands/1"))[0] == 404


async def test_unknown_keys_are_dropped_with_a_warning(aiohttp_client: AiohttpClient) -> None:
    """Zendesk answers 200 and names the keys it removed in X-Zendesk-API-Warn (zenpy cassette)."""
    config = SandboxConfig(dropped_ticket_keys=frozenset({"voice_comment"}))
    client = await aiohttp_client(create_sandbox_app(config))
    status, data, resp = await call(
        client, "POST", TICKETS, {"ticket": {"via_id": 45, "comment": {"body": "x"}, "mood": 1}}
    )
    assert status == 201
    assert resp.headers["X-Zendesk-API-Warn"] == 'Removed restricted keys ["mood"] from parameters'
    status, data, resp = await call(client, "PUT", "/api/v2/tickets/1", {"ticket": {"voice_comment": VOICE_COMMENT}})
    assert status == 200
    assert resp.headers["X-Zendesk-API-Warn"] == 'Removed restricted keys ["voice_comment"] from parameters'
    assert [c["type"] for c in data["ticket"]["comments"]] == ["Comment"]


async def test_writes_need_a_json_content_type(client: Client) -> None:
    async with client.post("/api/v2/channels/voice/agents/1001/users/2001/display.json", headers=AUTH) as resp:
        assert resp.status == 415
    assert sandbox_of(client).displays == []


async def test_rate_limit_headers_include_the_reset(client: Client) -> None:
    status, _, resp = await call(client, "GET", "/api/v2/users/me")
    assert status == 200
    assert resp.headers["X-Rate-Limit"] == "700"
    assert 0 <= int(resp.headers["ratelimit-reset"]) <= 60


async def test_conflict_fault_is_a_409_database_conflict(client: Client) -> None:
    await create_ticket(client, {"via_id": 45, "comment": {"body": "x"}})
    sandbox_of(client).add_faults([FaultRule(method="PUT", path_prefix="/api/v2/tickets", kind="409")])
    status, data, _ = await call(client, "PUT", "/api/v2/tickets/1", {"ticket": {"comment": {"body": "y"}}})
    assert (status, data["error"]) == (409, "DatabaseConflict")
    assert len(sandbox_of(client).tickets[1]["comments"]) == 1


async def test_late_fault_commits_after_the_client_gave_up(aiohttp_client: AiohttpClient) -> None:
    """The client times out before the write commits; looking at once finds nothing, later it is there."""
    client = await aiohttp_client(create_sandbox_app(SandboxConfig(late_commit_seconds=0.5)))
    sandbox = sandbox_of(client)
    sandbox.add_faults([FaultRule(method="POST", path_prefix="/api/v2/channels/voice/tickets", kind="late")])
    body = {"ticket": {"via_id": 45, "comment": {"body": "x"}}}
    with pytest.raises(asyncio.TimeoutError):
        await call(client, "POST", TICKETS, body, timeout=aiohttp.ClientTimeout(total=0.1))
    assert sandbox.tickets == {}
    await eventually(lambda: bool(sandbox.tickets), within=10)
    assert list(sandbox.tickets) == [1]


async def test_late_read_sees_the_state_at_arrival(aiohttp_client: AiohttpClient) -> None:
    """A slow read answers what it saw when it arrived, even if a write landed while it was slow."""
    client = await aiohttp_client(create_sandbox_app(SandboxConfig(late_commit_seconds=0.3)))
    sandbox = sandbox_of(client)
    sandbox.add_faults([FaultRule(method="GET", path_prefix="/api/v2/users/search", kind="late")])
    read = asyncio.ensure_future(call(client, "GET", "/api/v2/users/search", params={"external_id": "e1"}))
    await eventually(lambda: bool(sandbox.requests))
    sandbox.create_user({"user": {"name": "Late", "external_id": "e1"}})
    status, data, _ = await read
    assert (status, data["users"]) == (200, [])
