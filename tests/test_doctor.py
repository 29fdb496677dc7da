"""`bridge doctor` catches each misconfiguration with the right message and passes a good one."""

from __future__ import annotations

import asyncio
import base64
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

    async def numbers(request: web.Request) -> web.Response:
        # Twilio's list shape (Twilio docs: IncomingPhoneNumber resource, read multiple).
        owned = request.query.get("PhoneNumber") == "+16505550100"
        items = [{"sid": "PN" + "1" * 32, "phone_number": "+16505550100"}] if owned else []
        return web.json_response({"incoming_phone_numbers": items, "next_page_uri": None, "page": 0, "page_size": 1})

    async def caller_ids(request: web.Request) -> web.Response:
        return web.json_response({"outgoing_caller_ids": [], "next_page_uri": None, "page": 0, "page_size": 1})

    async def recordings(request: web.Request) -> web.Response:
        response = await account(request)
        return response if response.status != 200 else web.json_response({"recordings": []})

    app = web.Application()
    app.router.add_get(f"/2010-04-01/Accounts/{ACCOUNT}.json", account)
    app.router.add_get(f"/2010-04-01/Accounts/{ACCOUNT}/IncomingPhoneNumbers.json", numbers)
    app.router.add_get(f"/2010-04-01/Accounts/{ACCOUNT}/OutgoingCallerIds.json", caller_ids)
    app.router.add_get(f"/2010-04-01/Accounts/{ACCOUNT}/Recordings.json", recordings)
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
    (
        "media API refuses the key",
        {"TWILIO_API_KEY_SID": "SK" + "1" * 32, "TWILIO_API_KEY_SECRET": "x"},
        "FAIL  RECORDINGS=proxy",
    ),
    (
        "zendesk mode, token may not upload",
        {"RECORDINGS": "zendesk", "ZENDESK_API_TOKEN": "wrong"},
        "FAIL  RECORDINGS=zendesk",
    ),
    ("half an API key", {"TWILIO_API_KEY_SID": "SK" + "1" * 32}, "TWILIO_API_KEY_SECRET"),
    ("no agents", {"AGENTS": ""}, "incoming calls would go straight to voicemail"),
    ("CALLER_ID not the account's", {"CALLER_ID": "+16505550199"}, "neither a number of this account"),
]


async def test_doctor_checks_each_recordings_mode(
    servers: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """zendesk: a real upload (then deleted); twilio: a warning about public media; proxy without a SID: a note."""
    for name, value in servers.items():
        monkeypatch.setenv(name, value)
    expected = {
        "zendesk": "PASS  RECORDINGS=zendesk  Zendesk accepts uploads",
        "twilio": "only while Enforce HTTP Auth on Media URLs is off",
    }
    for mode, text in expected.items():
        monkeypatch.setenv("RECORDINGS", mode)
        code = await asyncio.wait_for(asyncio.to_thread(main, ["doctor"]), 60)
        out = capsys.readouterr().out
        assert code == 0, out
        assert text in out.replace("   ", "  "), out
    monkeypatch.setenv("RECORDINGS", "proxy")
    monkeypatch.delenv("TWILIO_ACCOUNT_SID")
    code = await asyncio.wait_for(asyncio.to_thread(main, ["doctor"]), 60)
    assert "set TWILIO_ACCOUNT_SID and the doctor asks" in capsys.readouterr().out


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
        assert "+16505550100 is a number of the account" in out
        assert "Twilio's media API accepts the auth token" in out
    else:
        assert code == 1, out
        assert expected in out, out
        assert "fix:" in out
        assert "twilio-token" not in out
        assert "sandbox-token" not in out
