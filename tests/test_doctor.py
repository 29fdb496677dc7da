"""`bridge doctor` catches each misconfiguration with the right message and passes a good one."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridge.cli import main
from bridge.devtools.sandbox import create_sandbox_app
from webhooks.names import Route, route_url

ACCOUNT = "AC" + "4" * 32


def fake_twilio_accounts() -> web.Application:
    """Answer GET Accounts/{sid}.json for the right Basic credentials only, as Twilio does."""

    async def account(request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT}:twilio-token".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        return web.json_response({"sid": ACCOUNT, "friendly_name": "Acme support", "status": "active"})

    app = web.Application()
    app.router.add_get(f"/2010-04-01/Accounts/{ACCOUNT}.json", account)
    return app


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """A sandbox Zendesk and a fake Twilio API; return a good environment for them."""
    async with (
        TestServer(create_sandbox_app(), host="127.0.0.1") as zendesk,
        TestServer(fake_twilio_accounts(), host="127.0.0.1") as twilio,
    ):
        yield {
            "PUBLIC_URL": "https://bridge.example.com",
            "TWILIO_AUTH_TOKEN": "twilio-token",
            "TWILIO_ACCOUNT_SID": ACCOUNT,
            "TWILIO_API_URL": str(twilio.make_url("")).rstrip("/"),
            "ZENDESK_URL": str(zendesk.make_url("")).rstrip("/"),
            "ZENDESK_EMAIL": "bridge@example.com",
            "ZENDESK_API_TOKEN": "sandbox-token",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
            "AGENTS": "client:alice=1001,+16505550111=1003",
            "CALLER_ID": "+16505550100",
            "ZENDESK_GROUP_ID": "5001",
        }


CASES = [
    ("good configuration", {}, None),
    ("missing token", {"TWILIO_AUTH_TOKEN": None}, "FAIL  TWILIO_AUTH_TOKEN"),
    ("http public URL", {"PUBLIC_URL": "http://bridge.example.com"}, "is not https"),
    ("bad AGENTS", {"AGENTS": "alice=1001"}, "AGENTS entry 'alice=1001': identity must be client:NAME"),
    ("AGENTS number not E.164", {"AGENTS": "client:alice=1001,6505550111=1003"}, "AGENTS entry '6505550111=1003'"),
    ("CALLER_ID not E.164", {"CALLER_ID": "650-555-0100"}, "CALLER_ID '650-555-0100' must be an E.164 number"),
    ("wrong Zendesk credentials", {"ZENDESK_API_TOKEN": "wrong"}, "refused them (401)"),
    ("AGENTS id is an end-user", {"AGENTS": "client:alice=2001"}, "user 2001 (Dana Customer) is an end-user"),
    ("AGENTS id unknown", {"AGENTS": "client:alice=999"}, "Zendesk has no user 999"),
    ("unwritable database", {"DATABASE_URL": "sqlite:////nonexistent-dir/bridge.db"}, "FAIL  database"),
    ("wrong Twilio credentials", {"TWILIO_AUTH_TOKEN": "other-token"}, "FAIL  Twilio credentials"),
    ("no agents", {"AGENTS": ""}, "incoming calls would go straight to voicemail"),
    ("unknown group", {"ZENDESK_GROUP_ID": "1"}, "FAIL  ZENDESK_GROUP_ID"),
    ("unknown brand", {"ZENDESK_BRAND_ID": "1"}, "FAIL  ZENDESK_BRAND_ID"),
]


@pytest.mark.parametrize(("case", "change", "expected"), CASES, ids=[case for case, _, _ in CASES])
async def test_doctor(
    servers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    change: dict[str, str | None],
    expected: str | None,
) -> None:
    """Each misconfiguration fails with its own message and a fix; a good one passes with the Twilio URLs."""
    for name, value in {**servers, **change}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    # The doctor runs its own event loop, so it runs in a thread while this loop serves the fakes.
    code = await asyncio.wait_for(asyncio.to_thread(main, ["doctor"]), 60)
    out = capsys.readouterr().out
    if expected is None:
        assert code == 0, out
        assert "All checks passed." in out
        assert "FAIL" not in out
        assert (
            "agent client:alice  Alice Agent (1001), browser client"
            in out.replace("   ", "  ").replace("  agent", "agent")
            or "Alice Agent (1001), browser client" in out
        )
        assert route_url("https://bridge.example.com", Route.INCOMING) in out
        assert route_url("https://bridge.example.com", Route.OUTGOING) in out
        assert "account Acme support" in out
        # The sandbox token is an agent's (least privilege): each permission is explained, none missing.
        assert "Bridge Integration (agent)" in out
        assert "refused to this agent, as Zendesk allows it for admins only; not needed" in out
        for granted in ("may search callers", "may read identities", "may list requested", "creates end-users"):
            assert re.search(rf"PASS\s+{granted}\s", out), granted
        assert "Support (5001)" in out
    else:
        assert code == 1, out
        assert expected in out, out
        assert "fix:" in out
        assert "twilio-token" not in out
        assert "sandbox-token" not in out
