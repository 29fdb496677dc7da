"""What the sandbox's tests share: the token's credentials, a request helper, a ticket and a voice comment."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

from bridge.devtools.sandbox import SANDBOX, Sandbox

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


def sandbox_of(client: Client) -> Sandbox:
    """Return the Sandbox a test client's app serves."""
    return client.app[SANDBOX]  # type: ignore[index]


async def call(
    client: Client, method: str, path: str, body: Any = None, **kwargs: Any
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """Send a request with the token's credentials; return the status, the decoded body and the response."""
    headers = kwargs.pop("headers", AUTH)
    if body is None and method in ("POST", "PUT"):
        # An empty JSON body, as the bridge sends to the display endpoints: Zendesk wants the content type.
        kwargs.setdefault("data", b"")
        headers = {**headers, "Content-Type": "application/json"}
    async with client.request(method, path, json=body, headers=headers, **kwargs) as resp:
        data = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, data, resp


async def create_ticket(client: Client, ticket: dict[str, Any], **extra: Any) -> tuple[int, Any]:
    """Create a voice ticket through the API; return the status and the body."""
    status, data, _ = await call(client, "POST", TICKETS, {"ticket": ticket, **extra})
    return status, data
