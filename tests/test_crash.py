"""kill -9 the real server at the worst moments, restart it on the same database: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bridge.devtools.replay import replay_files
from bridge.devtools.sandbox import SANDBOX, FaultRule, Sandbox, SandboxConfig, create_sandbox_app
from tests.conftest import (
    CALLS_APP_ID,
    call_outcome,
    call_records,
    eventually,
    free_port,
    parent_sid,
    recording,
    serve_env,
    start_serve,
    tpe_comments,
    voice_comments,
)

TOKEN = "crash-test-token"
TICKETS = "/api/v2/channels/voice/tickets"
CALLS = "/api/v2/calls"


async def outbox_empty(url: str) -> None:
    """Wait until the server reports no pending actions."""
    async with aiohttp.ClientSession() as session:

        async def empty() -> bool:
            async with session.get(url + "/healthz") as response:
                return bool((await response.json())["outbox"]["pending"] == 0)

        await eventually(empty, within=60)


async def restart_and_drain(env: dict[str, str]) -> int:
    """Start the bridge again on the same database, wait for an empty outbox, stop it; return its exit code."""
    process = await start_serve(env)
    try:
        await outbox_empty(env["PUBLIC_URL"])
    finally:
        process.terminate()
        await process.communicate()
    return int(process.returncode or 0)


async def kill(process: asyncio.subprocess.Process) -> None:
    """SIGKILL: no cleanup, no flush, exactly like a crashed dyno."""
    process.kill()
    await process.communicate()


CRASH_POINTS = {
    # name: (faults while the first process runs, what to wait for before the kill)
    "after the ack, before any delivery": ([FaultRule(None, "/api/v2", "hang", times=1000)], 1),
    "mid ticket create": ([FaultRule("POST", TICKETS, "hang")], 1),
    "ticket created, answer lost, crash during the look-up": (
        # The look-up an agent token may make: the requester's (the new caller 3001's) tickets.
        [FaultRule("POST", TICKETS, "drop_after"), FaultRule("GET", "/api/v2/users/3001/tickets/requested", "hang")],
        1,
    ),
    "between the ticket and its voice comment": ([FaultRule("PUT", "/api/v2/tickets", "hang")], 1),
    "voice comment added, answer lost, crash during the check": (
        [FaultRule("PUT", "/api/v2/tickets", "drop_after"), FaultRule("GET", "/api/v2/tickets/", "hang")],
        1,
    ),
}


# ZENDESK_API=calls adds the call record's moments (the voice comment's two are the record's update there).
CALLS_CRASH_POINTS = {
    "mid call record create": ([FaultRule("POST", CALLS, "hang")], 1),
    "call record created, answer lost, crash during the check": (
        [FaultRule("POST", CALLS, "drop_after"), FaultRule("GET", "/api/v2/tickets/", "hang")],
        1,
    ),
    "between the record and its update": ([FaultRule("PATCH", CALLS, "hang")], 1),
}
CASES = [(point, "tickets") for point in sorted(CRASH_POINTS)] + [
    (point, "calls") for point in sorted(CRASH_POINTS) if "voice comment" not in point  # calls mode has none
] + [(point, "calls") for point in sorted(CALLS_CRASH_POINTS)]  # fmt: skip


@pytest.mark.parametrize(("point", "api"), CASES)
async def test_kill_9_and_restart(tmp_path: Path, point: str, api: str) -> None:
    """Whatever moment the process dies at, the call ends with one ticket and one voice comment (and one record)."""
    faults, hangs = {**CRASH_POINTS, **CALLS_CRASH_POINTS}[point]
    calls = api == "calls"
    sandbox_app = create_sandbox_app(SandboxConfig(app_public_keys=((CALLS_APP_ID, "unused"),)))
    sandbox: Sandbox = sandbox_app[SANDBOX]
    mode = {"ZENDESK_API": "calls", "ZENDESK_APP_ID": str(CALLS_APP_ID)} if calls else {}
    async with TestServer(sandbox_app, host="127.0.0.1") as zendesk:
        port = free_port()
        env = serve_env(
            str(zendesk.make_url("")), tmp_path / "bridge.db", port, TOKEN, ZENDESK_TIMEOUT_SECONDS="30", **mode
        )
        sandbox.add_faults(faults)
        first = await start_serve(env)
        path = recording("inbound_unknown_caller")
        report = await replay_files([path], base_url=env["PUBLIC_URL"], auth_token=TOKEN, repeat=2)
        assert report.ok, report.failures
        async with asyncio.timeout(30):
            await sandbox.wait_for_hangs(hangs)
        await kill(first)
        sandbox.clear_faults()
        sandbox.release_hangs()
        sandbox.set_random_faults(0.2, ["500", "503", "429"], seed=3)  # and Zendesk keeps failing
        assert await restart_and_drain(env) == 0
        snapshot = sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, parent_sid(path))
    if calls:
        (record,) = call_records(snapshot, parent_sid(path))
        (shown,) = tpe_comments(ticket)
        assert shown["call_id"] == record["id"]
        assert record["completion_status"] == "completed"
        assert record["recording_url"]
        assert voice_comments(ticket) == []
    else:
        assert len(voice_comments(ticket)) == 1
    assert len([u for u in snapshot["users"] if u["phone"] == "+14155550142"]) == 1


async def test_sigterm_stops_within_ten_seconds_and_loses_nothing(tmp_path: Path) -> None:
    """SIGTERM with a Zendesk request hanging: the process exits cleanly in time; the action is redone after."""
    sandbox_app = create_sandbox_app()
    sandbox: Sandbox = sandbox_app[SANDBOX]
    async with TestServer(sandbox_app, host="127.0.0.1") as zendesk:
        env = serve_env(str(zendesk.make_url("")), tmp_path / "b.db", free_port(), TOKEN, ZENDESK_TIMEOUT_SECONDS="60")
        sandbox.add_faults([FaultRule("POST", TICKETS, "hang")])
        first = await start_serve(env)
        path = recording("inbound_answered")
        assert (await replay_files([path], base_url=env["PUBLIC_URL"], auth_token=TOKEN)).ok
        async with asyncio.timeout(30):
            await sandbox.wait_for_hangs(1)
        first.terminate()
        async with asyncio.timeout(10):  # Heroku gives 30 s; we promise 10
            await first.communicate()
        assert first.returncode == 0
        sandbox.release_hangs()
        assert await restart_and_drain(env) == 0
        (ticket,) = call_outcome(sandbox.snapshot(), parent_sid(path))
        assert len(voice_comments(ticket)) == 1
