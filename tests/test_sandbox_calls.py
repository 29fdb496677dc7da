"""Exercise the sandbox's Talk Partner Edition Calls API over real loopback HTTP, and the client's methods for it."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp.plugin import AiohttpClient

from bridge.devtools.sandbox import CALL_RESPONSE_KEYS, CLOSED_TEXT, FaultRule, SandboxConfig, create_sandbox_app
from bridge.zendesk.client import (
    FieldsDropped,
    Invalid,
    NotFound,
    RateLimited,
    ServerBroken,
    Unreachable,
    ZendeskClient,
)
from tests.sandbox_kit import BASIC, Client, call, sandbox_of

APP_ID = 1003048  # the app id of the recorded cassettes
CALLS = "/api/v2/calls.json"
# The request body of zenpy's cassette TestCallPE.test_create_update_get.
RECORDED_CALL = {
    "app_id": APP_ID,
    "call_ended_at": "2022-01-27T15:32:40+01",
    "call_started_at": "2022-01-27T15:31:40+01",
    "direction": "inbound",
    "from_line": "+183808333456",
    "from_line_nickname": "Sales",
    "to_line": "+149488484873",
    "to_line_nickname": "Technical Support",
}
# Every key of the recorded answer, in its order.
RECORDED_KEYS = [
    "id", "account_id", "ticket_id", "end_user_id", "organization_id", "brand_id", "app_id", "agent_id",
    "from_line", "from_line_nickname", "to_line", "to_line_nickname", "call_started_at", "call_ended_at",
    "direction", "duration", "dnis", "phone_name", "call_type", "end_user_location", "callback",
    "callback_source", "callback_number", "wait_time", "time_to_answer", "queue_time", "exceeded_queue_time",
    "queue_name", "ivr_time_spent", "ivr_hops", "ivr_action", "ivr_routed_to", "ivr_destination_group_name",
    "talk_time", "hold_time", "consultation_time", "wrap_up_time", "completion_status", "call_abandoned_position",
    "customer_requested_voicemail", "voicemail", "outside_business_hours", "overflowed", "overflowed_to",
    "call_disposition", "recording_url", "recording_time", "not_recording_time", "call_recording_consent_action",
    "recording_control_interactions", "created_at", "updated_at", "transcript", "external_id",
]  # fmt: skip
CALLER = {
    "app_id": APP_ID,
    "from_line": "+14155550123",
    "to_line": "+16505550100",
    "call_started_at": "2024-05-01T10:00:00Z",
    "direction": "inbound",
    "external_id": "CA" + "1" * 32,
    "end_user_id": 2001,
}


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    return await aiohttp_client(create_sandbox_app(SandboxConfig(app_public_keys=((APP_ID, "unused"),))))


async def create(client: Client, call_fields: dict[str, Any], comment: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {"call": call_fields}
    if comment is not None:
        body["comment"] = comment
    status, data, _ = await call(client, "POST", CALLS, body)
    assert status == 201, data
    return data["call"]


async def comments_of(client: Client, ticket_id: int) -> list[dict[str, Any]]:
    status, data, _ = await call(client, "GET", f"/api/v2/tickets/{ticket_id}/comments.json")
    assert status == 200, data
    return list(data["comments"])


def details(data: Any) -> dict[str, str]:
    assert data["error"] == "RecordInvalid", data
    return {name: items[0]["description"] for name, items in data["details"].items()}


# -- create ----------------------------------------------------------------------------------------


async def test_create_answers_the_recorded_shape(client: Client) -> None:
    """201 with every recorded key, nulls included, and the +01 timestamps in UTC (cassette)."""
    status, data, resp = await call(client, "POST", CALLS, {"call": RECORDED_CALL})
    assert status == 201
    made = data["call"]
    assert list(made) == RECORDED_KEYS == list(CALL_RESPONSE_KEYS)
    assert (made["call_started_at"], made["call_ended_at"]) == ("2022-01-27T14:31:40Z", "2022-01-27T14:32:40Z")
    assert made["ticket_id"] is None
    assert made["completion_status"] is None
    assert isinstance(made["id"], int)
    assert isinstance(made["account_id"], int)
    assert made["created_at"].endswith("Z")
    assert made["created_at"] == made["updated_at"]
    assert "X-Zendesk-API-Warn" not in resp.headers
    assert resp.headers["X-Rate-Limit"] == "700"
    assert sandbox_of(client).snapshot()["calls"][made["id"]]["from_line_nickname"] == "Sales"
    for path in ("/api/v2/calls", "/api/v2/calls.json"):
        status, _, _ = await call(client, "POST", path, {"call": RECORDED_CALL})
        assert status == 201


async def test_create_keeps_every_documented_field(client: Client) -> None:
    fields = {
        **CALLER,
        "agent_id": 1001,
        "brand_id": 6001,
        "call_ended_at": "2024-05-01T10:05:00-04:00",
        "duration": 300,
        "talk_time": 240,
        "time_to_answer": 12,
        "completion_status": "completed",
        "call_recording_consent": "opt_out",
        "callback_source": "web widget",
        "call_type": "phone",
        "voicemail": False,
        "recording_url": "https://bridge.example.com/recordings/RE1.mp3",
        "transcript": "Hello",
    }
    made = await create(client, fields)
    assert made["call_ended_at"] == "2024-05-01T14:05:00Z"
    for key, value in fields.items():
        if key not in ("call_ended_at", "call_recording_consent"):
            assert made[key] == value, key
    # Documented but absent from the recorded answer: kept, not shown.
    assert "call_recording_consent" not in made
    assert sandbox_of(client).calls[made["id"]]["call_recording_consent"] == "opt_out"


@pytest.mark.parametrize(
    ("change", "field", "text"),
    [
        ({"app_id": None}, "app_id", "cannot be blank"),
        ({"from_line": ""}, "from_line", "cannot be blank"),
        ({"to_line": None}, "to_line", "cannot be blank"),
        ({"call_started_at": None}, "call_started_at", "cannot be blank"),
        ({"direction": None}, "direction", "cannot be blank"),
        ({"app_id": 7}, "app_id", "is not an app installed"),
        ({"app_id": "1003048"}, "app_id", "is not an app installed"),
        ({"direction": "internal"}, "direction", "is not one of"),
        ({"completion_status": "missed"}, "completion_status", "is not one of"),
        ({"call_recording_consent": "sometimes"}, "call_recording_consent", "is not one of"),
        ({"callback_source": "email"}, "callback_source", "is not one of"),
        ({"call_started_at": "2024-05-01T10:00:00"}, "call_started_at", "with an offset"),
        ({"call_ended_at": "yesterday"}, "call_ended_at", "with an offset"),
        ({"call_ended_at": "2024-05-01"}, "call_ended_at", "with an offset"),
        ({"duration": 1.5}, "duration", "whole number of seconds"),
        ({"talk_time": -1}, "talk_time", "whole number of seconds"),
        ({"wait_time": "10"}, "wait_time", "whole number of seconds"),
        ({"voicemail": "no"}, "voicemail", "true or false"),
        ({"from_line": 14155550123}, "from_line", "must be a string"),
        ({"agent_id": 2001}, "agent_id", "is not an agent"),
        ({"agent_id": True}, "agent_id", "is not an agent"),
        ({"end_user_id": 999}, "end_user_id", "does not exist"),
        ({"brand_id": 1}, "brand_id", "does not exist"),
        ({"ticket_id": 42}, "ticket_id", "does not exist"),
        ({"id": 5}, "id", "is read-only"),
        ({"created_at": "2024-05-01T10:00:00Z"}, "created_at", "is read-only"),
    ],
)
async def test_create_refuses_invalid_fields(client: Client, change: dict[str, Any], field: str, text: str) -> None:
    status, data, _ = await call(client, "POST", CALLS, {"call": {**CALLER, **change}})
    assert status == 422
    assert text in details(data)[field]
    assert sandbox_of(client).calls == {}


async def test_create_refuses_a_body_without_call(client: Client) -> None:
    for body in ({}, {"call": "x"}, {"comment": {"title": "t"}}):
        status, data, _ = await call(client, "POST", CALLS, body)
        assert (status, list(details(data))) == (422, ["call"])


async def test_unknown_keys_are_dropped_with_a_warning(client: Client) -> None:
    """As the cassette's X-Zendesk-API-Warn: removed, not refused."""
    body = {"call": {**CALLER, "colour": "blue"}, "comment": {"title": "t", "mood": 1}, "extra": True}
    status, data, resp = await call(client, "POST", CALLS, body)
    assert status == 201
    assert resp.headers["X-Zendesk-API-Warn"] == 'Removed restricted keys ["extra", "colour", "mood"] from parameters'
    assert "colour" not in sandbox_of(client).calls[data["call"]["id"]]


# -- create with a comment -------------------------------------------------------------------------


async def test_create_with_comment_makes_the_ticket(client: Client) -> None:
    """No ticket_id and a comment section: a ticket (via 45), linked, with a TpeVoiceComment (cassette)."""
    comment = {"call_fields": ["from_line", "to_line", "call_started_at"], "title": "Inbound call"}
    made = await create(client, {**CALLER, "brand_id": 6002}, comment)
    ticket = sandbox_of(client).tickets[made["ticket_id"]]
    assert (ticket["via_id"], ticket["requester_id"], ticket["brand_id"]) == (45, 2001, 6002)
    assert ticket["subject"] == "Call from +14155550123"
    assert ticket["external_id"] is None
    [voice] = await comments_of(client, ticket["id"])
    assert (voice["type"], voice["public"], voice["title"]) == ("TpeVoiceComment", False, "Inbound call")
    assert voice["data"] == {
        "app_id": APP_ID,
        "app_name": "Bridge softphone",
        "author_id": None,
        "call_id": made["id"],
        "direction": "inbound",
        "external_id": CALLER["external_id"],
        "title": "Inbound call",
        "via_id": 45,
        "recording_url": "",
        "from_line": "+14155550123",
        "to_line": "+16505550100",
        "call_started_at": "2024-05-01T10:00:00Z",
    }
    assert voice["body"] == (
        "Inbound call\n\nSummary\nFrom line: +14155550123\nTo line: +16505550100\nCall started at: 2024-05-01T10:00:00Z"
    )
    assert (voice["formatted_from"], voice["formatted_to"]) == ("+14155550123", "+16505550100")
    assert voice["author_id"] == 1000
    assert set(voice) >= {"html_body", "audit_id", "created_at", "transcription_visible", "trusted", "attachments"}
    assert sandbox_of(client).displays == []


async def test_outbound_call_ticket_and_requester_choices(client: Client) -> None:
    """Outbound: via 46; the requester is the comment's end user, then the call's, then the API user."""
    outbound = {**CALLER, "direction": "outbound", "from_line": "+16505550100", "to_line": "+14155550199"}
    made = await create(client, outbound, {"title": "Out", "end_user_id": 2002, "subject": "Follow-up"})
    ticket = sandbox_of(client).tickets[made["ticket_id"]]
    assert (ticket["via_id"], ticket["requester_id"], ticket["subject"]) == (46, 2002, "Follow-up")
    anonymous = {key: value for key, value in CALLER.items() if key != "end_user_id"}
    made = await create(client, anonymous, {"title": "Who?"})
    assert sandbox_of(client).tickets[made["ticket_id"]]["requester_id"] == 1000


async def test_create_with_comment_pops_the_ticket(client: Client) -> None:
    made = await create(client, CALLER, {"title": "t", "display_to_agent": 1002})
    assert sandbox_of(client).displays == [{"agent_id": 1002, "kind": "ticket", "id": made["ticket_id"]}]


@pytest.mark.parametrize(
    ("comment", "field"),
    [
        ({"title": "t", "display_to_agent": 2001}, "display_to_agent"),
        ({}, "title"),
        ({"title": "  "}, "title"),
        ({"title": "t", "call_fields": ["nope"]}, "call_fields"),
        ({"title": "t", "call_fields": "direction"}, "call_fields"),
        ({"title": "t", "author_id": 999}, "author_id"),
        ({"title": "t", "end_user_id": "2001"}, "end_user_id"),
        ({"title": "t", "subject": 5}, "subject"),
        ("text", "comment"),
    ],
)
async def test_comment_section_is_validated_first(client: Client, comment: Any, field: str) -> None:
    """Nothing is created when the comment section is wrong (as display_to_agent on Create Ticket)."""
    status, data, _ = await call(client, "POST", CALLS, {"call": CALLER, "comment": comment})
    assert status == 422
    assert field in details(data)
    assert sandbox_of(client).calls == {}
    assert sandbox_of(client).tickets == {}


async def test_pop_refused_for_an_agent_without_a_seat(aiohttp_client: AiohttpClient) -> None:
    config = SandboxConfig(app_public_keys=((APP_ID, "unused"),), no_tpe_seat=frozenset({1001}))
    client = await aiohttp_client(create_sandbox_app(config))
    status, data, _ = await call(
        client, "POST", CALLS, {"call": CALLER, "comment": {"title": "t", "display_to_agent": 1001}}
    )
    assert (status, list(details(data))) == (422, ["display_to_agent"])


async def test_create_with_comment_on_an_existing_ticket(client: Client) -> None:
    first = await create(client, CALLER, {"title": "first leg"})
    ticket_id = first["ticket_id"]
    second = await create(client, {**CALLER, "ticket_id": ticket_id}, {"title": "second leg", "display_to_agent": 1001})
    assert second["ticket_id"] == ticket_id
    assert len(sandbox_of(client).tickets) == 1
    titles = [(c["title"], c["data"]["call_id"]) for c in await comments_of(client, ticket_id)]
    assert titles == [("first leg", first["id"]), ("second leg", second["id"])]
    assert sandbox_of(client).displays == [{"agent_id": 1001, "kind": "ticket", "id": ticket_id}]


async def test_a_closed_ticket_refuses_the_comment(client: Client) -> None:
    """The closed-ticket answer of ticket updates, so Invalid.closed_ticket recognises it."""
    made = await create(client, CALLER, {"title": "t"})
    sandbox = sandbox_of(client)
    sandbox.close_ticket(made["ticket_id"])
    status, data, _ = await call(
        client, "POST", CALLS, {"call": {**CALLER, "ticket_id": made["ticket_id"]}, "comment": {"title": "again"}}
    )
    assert (status, details(data)) == (422, {"status": CLOSED_TEXT})
    assert len(sandbox.calls) == 1
    status, data, _ = await call(client, "POST", f"/api/v2/calls/{made['id']}/comments.json", {"title": "late"})
    assert (status, details(data)) == (422, {"status": CLOSED_TEXT})
    assert len(sandbox.tickets[made["ticket_id"]]["comments"]) == 1
    # Without a comment, linking a record to the closed ticket changes nothing on it: allowed.
    status, _, _ = await call(client, "POST", CALLS, {"call": {**CALLER, "ticket_id": made["ticket_id"]}})
    assert status == 201


# -- update and show -------------------------------------------------------------------------------


async def test_patch_updates_the_fields_given(client: Client) -> None:
    made = await create(client, CALLER)
    change = {"id": made["id"], "call_ended_at": "2022-04-16T09:15:37Z", "agent_id": 1001, "talk_time": 30}
    status, data, resp = await call(client, "PATCH", f"/api/v2/calls/{made['id']}", {"call": change})
    assert status == 200
    assert list(data["call"]) == RECORDED_KEYS
    assert (data["call"]["call_ended_at"], data["call"]["agent_id"], data["call"]["talk_time"]) == (
        "2022-04-16T09:15:37Z",
        1001,
        30,
    )
    assert data["call"]["from_line"] == CALLER["from_line"]
    assert "X-Zendesk-API-Warn" not in resp.headers  # the cassette's PATCH repeats the id without a warning
    status, data, _ = await call(client, "PATCH", f"/api/v2/calls/{made['id']}.json", {"call": {"talk_time": None}})
    assert (status, data["call"]["talk_time"]) == (200, None)
    status, data, _ = await call(client, "GET", f"/api/v2/calls/{made['id']}")
    assert (status, data["call"]["agent_id"], data["call"]["talk_time"]) == (200, 1001, None)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"app_id": 1}, "app_id"),
        ({"id": 1}, "id"),
        ({"account_id": 1}, "account_id"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ({"direction": None}, "direction"),
        ({"from_line": ""}, "from_line"),
        ({"completion_status": "answered"}, "completion_status"),
        ({"time_to_answer": -3}, "time_to_answer"),
        ({"ticket_id": 999}, "ticket_id"),
        ({"call_ended_at": "2024-05-01 10:00"}, "call_ended_at"),
    ],
)
async def test_patch_refuses_read_only_and_invalid_fields(client: Client, change: dict[str, Any], field: str) -> None:
    made = await create(client, CALLER)
    status, data, _ = await call(client, "PATCH", f"/api/v2/calls/{made['id']}", {"call": change})
    assert status == 422
    assert field in details(data)
    assert sandbox_of(client).calls_api.get(made["id"]) == made


async def test_patch_and_get_of_unknown_calls(client: Client) -> None:
    status, data, _ = await call(client, "PATCH", "/api/v2/calls/123", {"call": {"talk_time": 1}})
    assert (status, data["error"]) == (404, "RecordNotFound")
    status, data, _ = await call(client, "PATCH", "/api/v2/calls/123", data=b"{not json", headers={
        "Authorization": BASIC, "Content-Type": "application/json"})  # fmt: skip
    assert status == 404  # 404 wins over a malformed body
    status, data, _ = await call(client, "GET", "/api/v2/calls/123.json")
    assert (status, data["error"]) == (404, "RecordNotFound")
    made = await create(client, CALLER)
    status, data, _ = await call(client, "PATCH", f"/api/v2/calls/{made['id']}", {"talk_time": 1})
    assert (status, list(details(data))) == (422, ["call"])
    status, _, resp = await call(
        client, "PATCH", f"/api/v2/calls/{made['id']}", {"call": {"talk_time": 1}, "comment": {"title": "x"}}
    )
    assert (status, resp.headers["X-Zendesk-API-Warn"]) == (200, 'Removed restricted keys ["comment"] from parameters')


async def test_patch_needs_a_json_content_type(client: Client) -> None:
    made = await create(client, CALLER)
    headers = {"Authorization": BASIC, "Content-Type": "text/plain"}
    status, _, _ = await call(client, "PATCH", f"/api/v2/calls/{made['id']}", data=b"{}", headers=headers)
    assert status == 415


async def test_the_voice_comment_shows_the_record_as_it_is_now(client: Client) -> None:
    """Docs: the data "is directly retrieved from the call record": a later PATCH shows in the comment."""
    made = await create(client, CALLER, {"title": "Call", "call_fields": ["transcript", "duration"]})
    [before] = await comments_of(client, made["ticket_id"])
    assert (before["data"]["recording_url"], before["data"]["transcript"], before["body"]) == ("", None, "Call")
    change = {"recording_url": "https://bridge.example.com/r/RE1.mp3", "transcript": "Hi", "duration": 61}
    status, _, _ = await call(client, "PATCH", f"/api/v2/calls/{made['id']}", {"call": change})
    assert status == 200
    [after] = await comments_of(client, made["ticket_id"])
    assert after["data"]["recording_url"] == "https://bridge.example.com/r/RE1.mp3"
    assert (after["data"]["transcript"], after["data"]["duration"]) == ("Hi", 61)
    assert after["body"] == "Call\n\nSummary\nTranscript: Hi\nDuration: 61"
    assert after["id"] == before["id"]
    assert after["created_at"] == before["created_at"]
    # The same rendering everywhere a comment is read: the ticket, the snapshot.
    status, data, _ = await call(client, "GET", f"/api/v2/tickets/{made['ticket_id']}.json")
    assert data["ticket"]["comments"][0]["data"]["recording_url"].endswith("RE1.mp3")
    state = sandbox_of(client).snapshot()
    assert state["tickets"][0]["comments"][0]["data"]["transcript"] == "Hi"


# -- the comments endpoint -------------------------------------------------------------------------


async def test_comment_endpoint_answers_as_recorded(client: Client) -> None:
    """Flat body, 201 with the comment unwrapped and the `comment` warning (cassette TestCallPE.test_add_comment)."""
    made = await create(client, RECORDED_CALL)
    body = {"call_fields": ["direction"], "title": "This is a ticket comment 2"}
    status, data, resp = await call(client, "POST", f"/api/v2/calls/{made['id']}/comments.json", body)
    assert status == 201
    assert resp.headers["X-Zendesk-API-Warn"] == 'Removed restricted keys ["comment"] from parameters'
    assert list(data) == [
        "id", "type", "public", "data", "formatted_from", "formatted_to", "transcription_visible", "author_id",
        "body", "html_body", "trusted", "attachments", "created_at", "audit_id", "title",
    ]  # fmt: skip
    assert list(data["data"]) == [
        "app_id", "app_name", "author_id", "call_id", "direction", "external_id", "title", "via_id", "recording_url"
    ]  # fmt: skip
    assert (data["formatted_from"], data["formatted_to"]) == ("Unknown", "Unknown")  # as recorded for these lines
    assert data["body"] == "This is a ticket comment 2\n\nSummary\nDirection: inbound"
    assert data["html_body"] == (
        '<div class="zd-comment" dir="auto"><p dir="auto">This is a ticket comment 2</p>\n'
        '<p dir="auto">Summary<br>\nDirection: inbound</p></div>'
    )
    # The call had no ticket: Zendesk made one (the cassette's 201), and the record now names it.
    status, shown, _ = await call(client, "GET", f"/api/v2/calls/{made['id']}.json")
    ticket_id = shown["call"]["ticket_id"]
    assert ticket_id is not None
    assert [c["id"] for c in await comments_of(client, ticket_id)] == [data["id"]]
    again = await call(client, "POST", f"/api/v2/calls/{made['id']}/comments", {"title": "second", "author_id": 1001})
    assert again[0] == 201
    assert again[1]["author_id"] == 1001
    assert again[1]["data"]["author_id"] == 1001
    assert len(sandbox_of(client).tickets) == 1


async def test_comment_endpoint_refusals(client: Client) -> None:
    status, data, _ = await call(client, "POST", "/api/v2/calls/999/comments.json", {"title": "t"})
    assert (status, data["error"]) == (404, "RecordNotFound")
    made = await create(client, CALLER, {"title": "t"})
    path = f"/api/v2/calls/{made['id']}/comments.json"
    # A wrapped body loses its `comment` to the whitelist, and with it the title.
    status, data, _resp = await call(client, "POST", path, {"comment": {"title": "wrapped"}})
    assert (status, list(details(data))) == (422, ["title"])
    status, data, _ = await call(client, "POST", path, {"title": "t", "display_to_agent": 2001})
    assert (status, list(details(data))) == (422, ["display_to_agent"])
    sandbox_of(client).delete_ticket(made["ticket_id"])
    status, data, _ = await call(client, "POST", path, {"title": "t"})
    assert (status, data["error"]) == (404, "RecordNotFound")


async def test_comment_endpoint_pops(client: Client) -> None:
    made = await create(client, CALLER)
    status, _data, _ = await call(
        client, "POST", f"/api/v2/calls/{made['id']}/comments", {"title": "t", "display_to_agent": 1003}
    )
    assert status == 201
    ticket_id = sandbox_of(client).calls[made["id"]]["ticket_id"]
    assert sandbox_of(client).displays == [{"agent_id": 1003, "kind": "ticket", "id": ticket_id}]


# -- endpoints, middleware, state ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v2/calls"),
        ("GET", "/api/v2/calls.json"),
        ("GET", "/api/v2/calls/search.json"),
        ("GET", "/api/v2/calls/700001/comments.json"),
        ("DELETE", "/api/v2/calls/700001"),
        ("PUT", "/api/v2/calls/700001"),
    ],
)
async def test_no_list_search_or_other_call_endpoint(client: Client, method: str, path: str) -> None:
    """None is documented, so there is no look-up by external_id either."""
    await create(client, CALLER)
    status, data, _ = await call(client, method, path, {} if method == "PUT" else None)
    assert (status, data["error"]) == (404, "InvalidEndpoint")


async def test_calls_need_credentials_and_are_rate_limited(aiohttp_client: AiohttpClient) -> None:
    config = SandboxConfig(app_public_keys=((APP_ID, "unused"),), rate_limit_per_minute=1)
    client = await aiohttp_client(create_sandbox_app(config))
    status, _, _ = await call(client, "POST", CALLS, {"call": CALLER}, headers={})
    assert status == 401
    assert (await call(client, "POST", CALLS, {"call": CALLER}))[0] == 201
    status, _, resp = await call(client, "POST", CALLS, {"call": CALLER})
    assert (status, "Retry-After" in resp.headers) == (429, True)
    assert len(sandbox_of(client).calls) == 1


async def test_agents_may_use_the_calls_api(aiohttp_client: AiohttpClient) -> None:
    """The default token is an agent's, and every Calls endpoint answers it (no admin-only rule)."""
    for role in ("agent", "admin"):
        config = SandboxConfig(app_public_keys=((APP_ID, "unused"),), token_role=role)
        client = await aiohttp_client(create_sandbox_app(config))
        made = await create(client, CALLER)
        assert (await call(client, "PATCH", f"/api/v2/calls/{made['id']}", {"call": {"duration": 1}}))[0] == 200
        assert (await call(client, "GET", f"/api/v2/calls/{made['id']}"))[0] == 200
        assert (await call(client, "POST", f"/api/v2/calls/{made['id']}/comments", {"title": "t"}))[0] == 201


@pytest.mark.parametrize("kind", ["500", "503", "409"])
async def test_faulted_writes_change_nothing(client: Client, kind: str) -> None:
    sandbox = sandbox_of(client)
    sandbox.add_faults([FaultRule(method="POST", path_prefix="/api/v2/calls", kind=kind)])
    status, _, _ = await call(client, "POST", CALLS, {"call": CALLER})
    assert status == int(kind)
    assert sandbox.calls == {}
    assert sandbox.requests[-1]["fault"] == kind


async def test_drop_after_commits_every_calls_write(client: Client) -> None:
    """The answer is lost, the write is not: create with its ticket, patch and comment all land."""
    sandbox = sandbox_of(client)
    sandbox.add_faults([FaultRule(method=None, path_prefix="/api/v2/calls", kind="drop_after", times=3)])
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(client, "POST", CALLS, {"call": CALLER, "comment": {"title": "t", "display_to_agent": 1001}})
    [record] = sandbox.calls.values()
    assert record["ticket_id"] in sandbox.tickets
    assert len(sandbox.displays) == 1
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(client, "PATCH", f"/api/v2/calls/{record['id']}", {"call": {"completion_status": "completed"}})
    assert sandbox.calls[record["id"]]["completion_status"] == "completed"
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(client, "POST", f"/api/v2/calls/{record['id']}/comments", {"title": "recording"})
    assert len(sandbox.tickets[record["ticket_id"]]["comments"]) == 2
    assert [entry["fault"] for entry in sandbox.requests] == ["drop_after"] * 3


async def test_drop_before_and_429_write_nothing(client: Client) -> None:
    sandbox = sandbox_of(client)
    sandbox.add_faults(
        [
            FaultRule(method="POST", path_prefix="/api/v2/calls", kind="drop"),
            FaultRule(method="POST", path_prefix="/api/v2/calls", kind="429", retry_after=7),
        ]
    )
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(client, "POST", CALLS, {"call": CALLER})
    status, _, resp = await call(client, "POST", CALLS, {"call": CALLER})
    assert (status, resp.headers["Retry-After"]) == (429, "7")
    assert sandbox.calls == {}


async def test_hang_and_latency_apply(aiohttp_client: AiohttpClient) -> None:
    config = SandboxConfig(app_public_keys=((APP_ID, "unused"),), latency_seconds=0.05)
    client = await aiohttp_client(create_sandbox_app(config))
    sandbox = sandbox_of(client)
    sandbox.add_faults([FaultRule(method="GET", path_prefix="/api/v2/calls", kind="hang")])
    made = await create(client, CALLER)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(call(client, "GET", f"/api/v2/calls/{made['id']}"), 0.5)
    assert loop.time() - started >= 0.5
    status, _, _ = await call(client, "GET", f"/api/v2/calls/{made['id']}")
    assert status == 200


async def test_state_and_reset(client: Client) -> None:
    """/sandbox/state lists calls by id, so tests can count records per external_id; reset clears them."""
    await create(client, CALLER, {"title": "t"})
    await create(client, {**CALLER, "external_id": "CA2"})
    async with client.get("/sandbox/state") as resp:
        state = await resp.json()
    by_external = sorted(record["external_id"] for record in state["calls"].values())
    assert by_external == sorted([CALLER["external_id"], "CA2"])
    assert state["tickets"][0]["comments"][0]["type"] == "TpeVoiceComment"
    async with client.post("/sandbox/reset") as resp:
        assert resp.status == 200
    assert sandbox_of(client).snapshot()["calls"] == {}
    made = await create(client, CALLER)
    assert made["id"] == 700001  # ids start over


# -- the client ------------------------------------------------------------------------------------


@pytest.fixture
async def zendesk(client: Client) -> ZendeskClient:
    return ZendeskClient(client.session, str(client.make_url("")), BASIC, timeout=2)


async def test_client_creates_updates_reads_and_comments(client: Client, zendesk: ZendeskClient) -> None:
    made = await zendesk.create_call(CALLER)
    assert list(made) == RECORDED_KEYS
    assert made["ticket_id"] is None
    updated = await zendesk.update_call(made["id"], {"agent_id": 1001, "time_to_answer": 4})
    assert (updated["agent_id"], updated["time_to_answer"]) == (1001, 4)
    assert (await zendesk.call_record(made["id"]))["agent_id"] == 1001
    voice = await zendesk.add_call_comment(made["id"], {"title": "Voicemail", "call_fields": ["direction"]})
    assert (voice["type"], voice["data"]["call_id"]) == ("TpeVoiceComment", made["id"])
    ticket_id = (await zendesk.call_record(made["id"]))["ticket_id"]
    [listed] = await zendesk.ticket_comments(ticket_id)
    assert listed["data"]["external_id"] == CALLER["external_id"]
    with_ticket = await zendesk.create_call({**CALLER, "external_id": "CA3"}, {"title": "t", "display_to_agent": 1001})
    assert with_ticket["ticket_id"] in sandbox_of(client).tickets
    # A PATCH without a body still says JSON (Zendesk wants the content type), and is refused for its content.
    with pytest.raises(Invalid) as empty:
        await zendesk.request("PATCH", f"/api/v2/calls/{made['id']}.json")
    assert list(empty.value.details) == ["call"]


async def test_client_errors(client: Client, zendesk: ZendeskClient) -> None:
    with pytest.raises(NotFound):
        await zendesk.call_record(1)
    with pytest.raises(NotFound):
        await zendesk.update_call(1, {"duration": 1})
    with pytest.raises(NotFound):
        await zendesk.add_call_comment(1, {"title": "t"})
    with pytest.raises(Invalid) as invalid:
        await zendesk.create_call({**CALLER, "completion_status": "missed"})
    assert "completion_status" in invalid.value.details
    assert not invalid.value.closed_ticket
    made = await zendesk.create_call(CALLER, {"title": "t"})
    sandbox_of(client).close_ticket(made["ticket_id"])
    with pytest.raises(Invalid) as closed:
        await zendesk.add_call_comment(made["id"], {"title": "late"})
    assert closed.value.closed_ticket
    with pytest.raises(Invalid) as closed:
        await zendesk.create_call({**CALLER, "ticket_id": made["ticket_id"]}, {"title": "late"})
    assert closed.value.closed_ticket
    # A record Zendesk made is made, even without a field it dropped (warned, logged): sending it again would
    # duplicate a record that has no ticket to be found by.
    kept = await zendesk.create_call({**CALLER, "caller_mood": "happy"})
    assert "caller_mood" not in kept
    await zendesk.update_call(kept["id"], {"caller_mood": "happy"})
    open_call = await zendesk.create_call(CALLER, {"title": "t"})
    with pytest.raises(FieldsDropped):
        await zendesk.add_call_comment(open_call["id"], {"title": "t", "tone": "calm"})


async def test_client_faults(client: Client, zendesk: ZendeskClient) -> None:
    sandbox = sandbox_of(client)
    sandbox.add_faults(
        [
            FaultRule(method="POST", path_prefix="/api/v2/calls", kind="503"),
            FaultRule(method="POST", path_prefix="/api/v2/calls", kind="429", retry_after=3),
            FaultRule(method="POST", path_prefix="/api/v2/calls", kind="drop_after"),
        ]
    )
    with pytest.raises(ServerBroken):
        await zendesk.create_call(CALLER)
    with pytest.raises(RateLimited) as limited:
        await zendesk.create_call(CALLER)
    assert limited.value.retry_after == 3
    with pytest.raises(Unreachable) as lost:
        await zendesk.create_call(CALLER)
    assert lost.value.uncertain
    assert len(sandbox.calls) == 1  # the dropped answer's write landed
