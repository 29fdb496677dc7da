"""Exercise the sandbox's voice tickets, updates, merges, follow-ups and screen-pops over real loopback HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_aiohttp.plugin import AiohttpClient

from bridge.devtools.sandbox import MAX_COMMENTS, SandboxConfig, SandboxError, create_sandbox_app
from tests.sandbox_kit import AUTH, TICKETS, VOICE_COMMENT, Client, call, create_ticket, sandbox_of


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    return await aiohttp_client(create_sandbox_app())


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
