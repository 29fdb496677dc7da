"""Shared fixtures: a real bridge and a real sandbox Zendesk on loopback, and recording helpers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from playwright.async_api import Browser, async_playwright

from bridge.devtools.demo import DEMO_APP_ID, LocalBridge, calls_mode, local_bridge
from bridge.devtools.waiting import wait_until
from bridge.ops.settings import Settings
from bridge.zendesk.outbox import RetryPolicy

RECORDINGS = Path(__file__).parent / "recordings"
# settle: the wait before a "did it land?" look-up, past the sandbox's late commit (1 s after arrival).
FAST_RETRY = RetryPolicy(base=0.01, cap=0.05, settle=1.5)


def recording(name: str) -> Path:
    """Return the path of a recording in tests/recordings."""
    path = RECORDINGS / f"{name}.jsonl"
    assert path.exists(), path
    return path


def parent_sid(path: Path) -> str:
    """Return the parent CallSid of a recorded call."""
    first = json.loads(path.read_text().splitlines()[0])["params"]
    return str(first.get("ParentCallSid") or first["CallSid"])


def call_outcome(snapshot: dict[str, Any], call_sid: str) -> list[dict[str, Any]]:
    """Return the tickets a call produced in the sandbox."""
    return [ticket for ticket in snapshot["tickets"] if ticket["external_id"] == call_sid]


def voice_comments(ticket: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the voice comments' data of a ticket."""
    return [comment["data"] for comment in ticket["comments"] if comment["type"] == "VoiceComment"]


def tpe_comments(ticket: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the data of a ticket's TPE voice comments (call records shown on it)."""
    return [comment["data"] for comment in ticket["comments"] if comment["type"] == "TpeVoiceComment"]


def call_records(snapshot: dict[str, Any], call_sid: str) -> list[dict[str, Any]]:
    """Return the call records a call produced in the sandbox."""
    return [record for record in snapshot["calls"].values() if record["external_id"] == call_sid]


CALLS_APP_ID = DEMO_APP_ID  # the app id of zenpy's recorded TestCallPE cassettes


async def eventually(predicate: Callable[[], bool | Awaitable[bool]], within: float = 30.0) -> None:
    """Wait until `predicate()` holds, polling, or fail after `within` seconds (the one wait helper)."""
    await wait_until(predicate, within=within)


class ManualClock:
    """A clock the test moves by hand, so waits of minutes pass without waiting them out."""

    def __init__(self, start: datetime | None = None) -> None:
        """Start at `start` (default: the real current time)."""
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        """Return the current time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += timedelta(seconds=seconds)


def free_port() -> int:
    """Return a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(zendesk_url: str, database: Path, port: int, token: str, **extra: str) -> dict[str, str]:
    """Return the environment of a `bridge serve` process wired to a sandbox."""
    return {
        **os.environ,
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PORT": str(port),
        "TWILIO_AUTH_TOKEN": token,
        "ZENDESK_URL": zendesk_url.rstrip("/"),
        "ZENDESK_EMAIL": "bridge@example.com",
        "ZENDESK_API_TOKEN": "sandbox-token",
        "DATABASE_URL": f"sqlite:///{database}",
        "AGENTS": "client:alice=1001,client:bob=1002,+16505550111=1003",
        # Reading agents' availability in Zendesk would mix its requests with the ones a test faults or counts.
        "ZENDESK_AVAILABILITY_SECONDS": "0",
        **extra,
    }


async def start_serve(env: dict[str, str]) -> asyncio.subprocess.Process:
    """Start `bridge serve` as a real process and wait until /healthz answers."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "serve", "--host", "127.0.0.1", env=env, stderr=asyncio.subprocess.PIPE
    )
    url = env["PUBLIC_URL"]
    async with aiohttp.ClientSession() as session:

        async def healthy() -> bool:
            assert process.returncode is None, "bridge serve exited early"
            try:
                async with session.get(url + "/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await wait_until(healthy, within=30, what="bridge serve answering /healthz")
    return process


POSTGRES = os.environ.get("BRIDGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema in the test PostgreSQL database; skipped locally without one, a failure in CI."""
    schema = f"t_{uuid.uuid4().hex[:16]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(run(f'CREATE SCHEMA "{schema}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {POSTGRES} is required in CI and is not usable: {exc}")
        pytest.skip(f"no PostgreSQL at {POSTGRES}: {exc}")
    yield f"{POSTGRES}?search_path={schema}"
    asyncio.run(run(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for each store: the contract suite runs against both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'contract.db'}"
    return str(request.getfixturevalue("pg_url"))


BridgeFactory = Callable[..., AbstractAsyncContextManager[LocalBridge]]
Rig = Callable[..., AbstractAsyncContextManager[LocalBridge]]


def flow_rig(
    make_bridge: BridgeFactory,
    database_url: str,
    flows: Mapping[str, tuple[Any, dict[str, Any], Any]],
    team: Mapping[str, int],
    *,
    calls: bool = True,
) -> Rig:
    """Return what runs one flow's bridge on a store with the flow's settings (in calls mode, unless `calls` is off)."""

    @asynccontextmanager
    async def running(name: str, **settings: Any) -> AsyncIterator[LocalBridge]:
        _, own, _ = flows[name]
        options = {"agents": dict(team), **(calls_mode() if calls else {}), **own, **settings}
        async with make_bridge(stand_in=True, virtual_time=True, database_url=database_url, **options) as bridge:
            yield bridge

    return running


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the machine's own bridge settings (a developer's PORT, TICKET_ON, `.env`…) out of every test."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    # The bridge reads `.env` from its working directory (so do the `bridge serve` processes tests start):
    # an empty directory of the test's own keeps a developer's `.env` in the checkout out of it.
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def make_bridge(tmp_path: Path) -> BridgeFactory:
    """Build a bridge + sandbox with setting overrides; each call gets its own database file."""
    counter = iter(range(1000))

    def factory(**overrides: Any) -> AbstractAsyncContextManager[LocalBridge]:
        overrides.setdefault("retry", FAST_RETRY)
        return local_bridge(tmp_path / f"bridge-{next(counter)}.db", **overrides)

    return factory


@pytest.fixture
async def bridge(make_bridge: BridgeFactory) -> AsyncIterator[LocalBridge]:
    """A running bridge on the default settings."""
    async with make_bridge() as running:
        yield running


CHROMIUM = Path(os.environ.get("BRIDGE_TEST_CHROMIUM", "/usr/bin/chromium"))
HAVE_CHROMIUM = CHROMIUM.exists()
# Flags for a closed network and a root user (Playwright adds its own headless ones).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"]  # fmt: skip
ARTIFACTS = Path(os.environ.get("BRIDGE_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's chromium driven by Playwright; skipped locally without it, a failure in CI (make test installs it)."""
    if not HAVE_CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail(f"chromium is required in CI and is not at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium to run the browser tests")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()
