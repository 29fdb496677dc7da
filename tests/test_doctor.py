"""`bridge doctor` catches each misconfiguration with the right message and passes a good one."""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridge.cli import main
from bridge.devtools.sandbox import SANDBOX, Sandbox, SandboxConfig, create_sandbox_app, installation_id
from tests.softphone_kit import APP_ID, public_pem
from webhooks.names import Route, route_url

ACCOUNT = "AC" + "4" * 32
KEY_SID, KEY_SECRET = "SK" + "5" * 32, "api-key-secret"
KEY = f"{KEY_SID}:{KEY_SECRET}"
GOOD_APP, WRONG_APP = "AP" + "6" * 32, "AP" + "7" * 32
TWIML_APPS = {
    GOOD_APP: route_url("https://bridge.example.com", Route.OUTGOING),
    WRONG_APP: "https://old.example.com/voice",
}


def fake_twilio_accounts() -> web.Application:
    """Answer GET Accounts/{sid}.json for the right Basic credentials only, as Twilio does."""

    async def account(request: web.Request) -> web.Response:
        accepted = {"Basic " + base64.b64encode(pair.encode()).decode() for pair in (f"{ACCOUNT}:twilio-token", KEY)}
        if request.headers.get("Authorization") not in accepted:
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

    async def application(request: web.Request) -> web.Response:
        response = await account(request)
        if response.status != 200 or request.match_info["sid"] not in TWIML_APPS:
            return web.json_response({"code": 20404, "status": 404}, status=404) if response.status == 200 else response
        voice_url = TWIML_APPS[request.match_info["sid"]]
        return web.json_response({"sid": request.match_info["sid"], "friendly_name": "Browser agents",
                                  "voice_url": voice_url, "voice_method": "POST"})  # fmt: skip

    app = web.Application()
    app.router.add_get(f"/2010-04-01/Accounts/{ACCOUNT}.json", account)
    app.router.add_get(f"/2010-04-01/Accounts/{ACCOUNT}/Applications/{{sid}}.json", application)
    app.router.add_get(f"/2010-04-01/Accounts/{ACCOUNT}/IncomingPhoneNumbers.json", numbers)
    app.router.add_get(f"/2010-04-01/Accounts/{ACCOUNT}/OutgoingCallerIds.json", caller_ids)
    app.router.add_get(f"/2010-04-01/Accounts/{ACCOUNT}/Recordings.json", recordings)
    return app


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """A sandbox Zendesk and a fake Twilio API; return a good environment for them."""
    async with (
        TestServer(
            create_sandbox_app(SandboxConfig(app_public_keys=((APP_ID, public_pem()),))), host="127.0.0.1"
        ) as zendesk,
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
    ("unknown group", {"ZENDESK_GROUP_ID": "1"}, "FAIL  ZENDESK_GROUP_ID"),
    ("unknown brand", {"ZENDESK_BRAND_ID": "1"}, "FAIL  ZENDESK_BRAND_ID"),
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


async def test_doctor_reads_the_token_from_dot_env(
    servers: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """TWILIO_AUTH_TOKEN in `.env` (copied from .env.example) counts as set; the environment wins over the file."""
    for name, value in servers.items():
        if name != "TWILIO_AUTH_TOKEN":
            monkeypatch.setenv(name, value)
    # The file's CALLER_ID is not the account's: the doctor would fail on it if the file won.
    dot_env = f"TWILIO_AUTH_TOKEN={servers['TWILIO_AUTH_TOKEN']}\nCALLER_ID=+16505550199\n"
    await asyncio.to_thread(Path(".env").write_text, dot_env)
    code = await asyncio.wait_for(asyncio.to_thread(main, ["doctor"]), 60)
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"PASS\s+TWILIO_AUTH_TOKEN\s+set", out), out
    assert "Twilio's media API accepts the auth token" in out
    assert "+16505550100 is a number of the account" in out
    assert "twilio-token" not in out


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


def softphone_env(servers: dict[str, str], **change: str | None) -> dict[str, str | None]:
    """Return the doctor's environment with browser agents configured (the app's key fetched by id)."""
    audience = f"{servers['ZENDESK_URL']}/api/v2/apps/installations/{installation_id(APP_ID)}.json"
    env: dict[str, str | None] = {
        **servers,
        "TWILIO_API_KEY_SID": KEY_SID,
        "TWILIO_API_KEY_SECRET": KEY_SECRET,
        "TWILIO_TWIML_APP_SID": GOOD_APP,
        "ZENDESK_APP_ID": str(APP_ID),
        "ZENDESK_APP_AUDIENCE": audience,
    }
    return {**env, **change}


SOFTPHONE_CASES = [
    ("good", {}, None),
    ("key given as PEM", {"ZENDESK_APP_PUBLIC_KEY": public_pem()}, None),
    ("TwiML App calls elsewhere", {"TWILIO_TWIML_APP_SID": WRONG_APP}, "set the TwiML App's Voice Request URL to"),
    ("TwiML App unknown", {"TWILIO_TWIML_APP_SID": "AP" + "8" * 32}, "Twilio answered 404"),
    ("API key refused", {"TWILIO_API_KEY_SECRET": "wrong"}, "Twilio refused TWILIO_API_KEY_SID (401)"),
    ("app not installed", {"ZENDESK_APP_ID": "7"}, "could not fetch it"),
    ("wrong audience", {"ZENDESK_APP_AUDIENCE": "https://acme.zendesk.com/api/v2/apps/installations/1.json"},
     f"/api/v2/apps/installations/{installation_id(APP_ID)}.json"),
    ("missing TwiML App", {"TWILIO_TWIML_APP_SID": None}, "set TWILIO_TWIML_APP_SID"),
    ("unreadable PEM", {"ZENDESK_APP_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"},
     "not a readable PEM"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "expected"), SOFTPHONE_CASES, ids=[c for c, _, _ in SOFTPHONE_CASES])
async def test_doctor_checks_the_softphone(
    servers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    change: dict[str, str | None],
    expected: str | None,
) -> None:
    """The API key, the TwiML App's Voice URL, the app's key and its installation URL, each with its fix."""
    for name, value in softphone_env(servers, **change).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    code = await asyncio.wait_for(asyncio.to_thread(main, ["doctor"]), 60)
    out = capsys.readouterr().out
    if expected is None:
        assert code == 0, out
        for check in (
            "softphone settings",
            "softphone API key",
            "TwiML App",
            "softphone app key",
            "ZENDESK_APP_AUDIENCE",
        ):
            assert re.search(rf"PASS\s+{check}", out), check
        assert "/zendesk/softphone" in out
    else:
        assert code == 1, out
        assert expected in out, out
        assert KEY_SECRET not in out


CALLS_CASES = [
    ("good", {"ZENDESK_API": "calls"}, None),
    ("tickets mode checks no app", {"ZENDESK_API": "tickets"}, None),
    # An app only for call records (no browser agents): no softphone check fails for want of its settings.
    ("app for records only", {"ZENDESK_API": "calls", "TWILIO_TWIML_APP_SID": None, "ZENDESK_APP_AUDIENCE": None,
     "TWILIO_API_KEY_SID": None, "TWILIO_API_KEY_SECRET": None}, None),
    ("app not installed", {"ZENDESK_API": "calls", "ZENDESK_APP_ID": "7", "ZENDESK_APP_PUBLIC_KEY": public_pem()},
     "app 7 is not installed"),
    ("calls without an app", {"ZENDESK_API": "calls", "ZENDESK_APP_ID": None},
     "ZENDESK_API=calls needs ZENDESK_APP_ID"),
    ("unknown API", {"ZENDESK_API": "voice"}, "ZENDESK_API: Input should be 'tickets' or 'calls'"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "expected"), CALLS_CASES, ids=[c for c, _, _ in CALLS_CASES])
async def test_doctor_checks_the_calls_api(
    servers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    change: dict[str, str | None],
    expected: str | None,
) -> None:
    """ZENDESK_API=calls: ZENDESK_APP_ID must be set and an installed app the token can see."""
    for name, value in softphone_env(servers, **change).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    code = await asyncio.wait_for(asyncio.to_thread(main, ["doctor"]), 60)
    out = capsys.readouterr().out
    if expected is None:
        assert code == 0, out
        calls = change["ZENDESK_API"] == "calls"
        assert bool(re.search(r"PASS\s+ZENDESK_API=calls\s+call records name app", out)) is calls, out
        assert bool(re.search(r"PASS\s+creates call records\s+not probed", out)) is calls, out
        if case == "app for records only":
            assert "softphone" not in out.split("Paste into the Twilio console")[0], out
    else:
        assert code == 1, out
        assert expected in out, out
        assert "fix:" in out


def set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str | None]) -> None:
    """Set the doctor's environment (None: unset)."""
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


async def doctor(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run `bridge doctor` (in a thread: it runs its own loop while this one serves the fakes)."""
    code = await asyncio.wait_for(asyncio.to_thread(main, ["doctor"]), 60)
    return code, capsys.readouterr().out


def line(out: str, name: str) -> str:
    """Return the doctor's line for a check, its fix included, with the padding squeezed."""
    lines = out.splitlines()
    for index, text in enumerate(lines):
        if re.match(rf"(PASS|FAIL)\s+{re.escape(name)}\s", text):
            fix = lines[index + 1] if index + 1 < len(lines) and "fix:" in lines[index + 1] else ""
            return re.sub(r"\s{2,}", "  ", f"{text} {fix.strip()}".strip())
    raise AssertionError(f"no {name} line in:\n{out}")


QUEUE_CASES = [
    ("on", {}, "PASS  queueing  on: up to 50 callers wait, 300 s at most; Twilio's REST API accepts the auth token"),
    ("on with an API key", {"TWILIO_API_KEY_SID": KEY_SID, "TWILIO_API_KEY_SECRET": KEY_SECRET},
     "PASS  queueing  on: up to 50 callers wait, 300 s at most; Twilio's REST API accepts the API key"),
    ("no account SID", {"TWILIO_ACCOUNT_SID": None},
     "PASS  queueing  off: without TWILIO_ACCOUNT_SID a caller nobody can take goes to voicemail at once; to let "
     "callers wait, set TWILIO_ACCOUNT_SID (with TWILIO_AUTH_TOKEN, or TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET)"),
    ("turned off", {"QUEUE_MAX_SIZE": "0"}, "PASS  queueing  off (QUEUE_MAX_SIZE=0): a caller nobody can take goes"),
    ("key refused", {"TWILIO_API_KEY_SID": "SK" + "1" * 32, "TWILIO_API_KEY_SECRET": "x"},
     "FAIL  queueing  Twilio's REST API refused the API key (401): waiting callers could not be moved to agents and "
     "would go to voicemail after QUEUE_MAX_WAIT_SECONDS fix: set TWILIO_AUTH_TOKEN of TWILIO_ACCOUNT_SID, or a "
     "valid TWILIO_API_KEY_SID/TWILIO_API_KEY_SECRET pair"),
    ("Twilio unreachable", {"TWILIO_API_URL": "http://127.0.0.1:9"},
     "FAIL  queueing  Twilio's REST API did not answer (ClientConnectorError): waiting callers could not be moved "
     "to agents fix: check TWILIO_API_URL"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "expected"), QUEUE_CASES, ids=[c for c, _, _ in QUEUE_CASES])
async def test_doctor_says_whether_callers_may_wait_and_what_the_queue_needs(
    servers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    change: dict[str, str | None],
    expected: str,
) -> None:
    """Queueing: on, or off and why; the credentials moves use, asked of Twilio's REST API once for both uses."""
    set_env(monkeypatch, {**servers, **change})
    code, out = await doctor(capsys)
    assert line(out, "queueing").startswith(expected), out
    assert (code == 0) is expected.startswith("PASS"), out
    if case == "key refused":  # the same answer fails recording links too, said in each one's words
        assert "FAIL  RECORDINGS=proxy  Twilio's media API refused the API key (401)" in line(out, "RECORDINGS=proxy")


@pytest.fixture
async def admin_zendesk() -> AsyncIterator[Callable[..., Awaitable[tuple[str, Sandbox]]]]:
    """Start sandboxes whose token is an admin's; return their URL and the account."""
    started: list[TestServer] = []

    async def start(**config: Any) -> tuple[str, Sandbox]:
        server = TestServer(create_sandbox_app(SandboxConfig(token_role="admin", **config)), host="127.0.0.1")
        await server.start_server()
        started.append(server)
        return str(server.make_url("")).rstrip("/"), server.app[SANDBOX]

    yield start
    for server in started:
        await server.close()


async def test_doctor_reports_agents_availability_in_zendesk(
    servers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    admin_zendesk: Callable[..., Awaitable[tuple[str, Sandbox]]],
) -> None:
    """An agent's token: refused, routing on the bridge's presence; an admin's: each agent's word for Talk."""
    set_env(monkeypatch, servers)
    code, out = await doctor(capsys)
    assert code == 0, out
    assert line(out, "agent availability").startswith(
        "PASS  agent availability  refused (403): Zendesk shows it to admins only, so routing uses the bridge's own "
        "presence"
    )
    url, sandbox = await admin_zendesk()
    monkeypatch.setenv("ZENDESK_URL", url)
    sandbox.set_agent_status(1003, "away", channel="talk")
    code, out = await doctor(capsys)
    assert code == 0, out
    assert line(out, "agent availability") == (
        "PASS  agent availability  read every 30 s; for Talk now: client:alice available, +16505550111 away "
        "(away or offline get no calls)"
    )
    sandbox.set_agent_status(1001, "offline")
    code, out = await doctor(capsys)
    assert code == 1, out
    assert line(out, "agent availability") == (
        "FAIL  agent availability  every agent is away or offline in Zendesk for Talk (client:alice offline, "
        "+16505550111 away): no call would be offered now fix: if your agents keep no status in Zendesk, set "
        "ZENDESK_AVAILABILITY_SECONDS=0; else have one go online"
    )
    monkeypatch.setenv("ZENDESK_AVAILABILITY_SECONDS", "0")
    code, out = await doctor(capsys)
    assert code == 0, out
    assert "agent availability  not read (ZENDESK_AVAILABILITY_SECONDS=0)" in line(out, "agent availability")
    monkeypatch.delenv("ZENDESK_AVAILABILITY_SECONDS")
    url, _ = await admin_zendesk(agent_availability=False)
    monkeypatch.setenv("ZENDESK_URL", url)
    code, out = await doctor(capsys)
    assert code == 0, out
    assert "this account has no Agent Availability API" in line(out, "agent availability")


def test_doctor_builds_no_server() -> None:
    """`bridge doctor` imports nothing of the application (bridge.app): it opens only what it checks."""
    script = "import sys, bridge.cli, bridge.ops.doctor; print('bridge.app' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", result.stderr
