"""Exercise the sandbox's fault injection (rules, random faults, drops, hangs, late commits) over real HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp.plugin import AiohttpClient

from bridge.devtools.sandbox import SANDBOX, FaultRule, Sandbox, SandboxConfig, create_sandbox_app
from bridge.devtools.sandbox import faults as faults_module
from tests.conftest import eventually
from tests.sandbox_kit import AUTH, TICKETS, Client, call, create_ticket, sandbox_of


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    return await aiohttp_client(create_sandbox_app())


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
    assert sandbox.faults.hangs_released
    assert sandbox.faults.active_hangs == 0


async def test_hang_that_outlives_its_limit_answers_504(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults_module, "HANG_SECONDS", 0.0)
    sandbox_of(client).add_faults([FaultRule(method=None, path_prefix="/api/v2/users/me", kind="hang")])
    status, data, _ = await call(client, "GET", "/api/v2/users/me")
    assert (status, data["error"]) == (504, "GatewayTimeout")
    assert sandbox_of(client).faults.active_hangs == 0


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
        faults = (sandbox.faults.next_fault("GET", "/api/v2/users/me") for _ in range(200))
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
    assert sandbox.faults.next_fault("GET", "/api/v2/users/me") is None


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
