"""kill -9 the real server at the worst moments, restart it on the same database: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bridge.devtools.demo import DEMO_NUMBER
from bridge.devtools.fake_twilio import serve_stand_in
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
    # The caller's two look-ups (by external id, and by phone) go out together: both hang.
    "after the ack, before any delivery": ([FaultRule(None, "/api/v2", "hang", times=1000)], 2),
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


# --- the queue: callers wait while the process dies --------------------------------------------------------

DANA, ERIN, FRED = "+14155550123", "+14155550199", "+14155550177"
ALICE, BOB = "client:alice", "client:bob"


async def bridge_command(env: dict[str, str], *args: str) -> str:
    """Run a `bridge` command beside the server, on its database; return what it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def line(env: dict[str, str]) -> list[str]:
    """Return the waiting callers' CallSids in their order, as `bridge queue` lists them."""
    return re.findall(r" call (CA[0-9a-f]{32})", await bridge_command(env, "queue"))


@pytest.mark.parametrize("moment", ["callers waiting", "a move Twilio keeps failing"])
async def test_kill_9_with_callers_waiting_loses_none_of_them(database_url: str, tmp_path: Path, moment: str) -> None:
    """Three callers wait; the process dies (mid-move, in the second case); a new one knows them all, in order.

    The restarted bridge lists the same line (`bridge queue`), moves the longest-waiting caller to the
    agent who chooses `available` (or sends the move the dead process kept failing), the next one to the
    next agent, and the caller who gave up is a missed call: one ticket each, nothing twice. Twilio is the
    stand-in of bridge.devtools.fake_twilio in this process (its time stands still: nobody's wait runs out),
    the bridge a real `bridge serve` process killed with SIGKILL.
    """
    sandbox_app = create_sandbox_app()
    sandbox: Sandbox = sandbox_app[SANDBOX]
    async with TestServer(sandbox_app, host="127.0.0.1") as zendesk, serve_stand_in(TOKEN, seed=22) as twilio:
        port = free_port()
        env = serve_env(
            str(zendesk.make_url("")), tmp_path / "unused.db", port, TOKEN, DATABASE_URL=database_url,
            AGENTS=f"{ALICE}=1001,{BOB}=1002", TWILIO_ACCOUNT_SID=twilio.account.sid, TWILIO_API_URL=twilio.url,
        )  # fmt: skip
        url = env["PUBLIC_URL"]
        twilio.own(DEMO_NUMBER, f"{url}/twilio/voice/incoming", status_callback=f"{url}/twilio/voice/status")
        first = await start_serve(env)
        for agent in (ALICE, BOB):
            await bridge_command(env, "agents", "set", agent, "away")
        callers = [await twilio.incoming(number, DEMO_NUMBER) for number in (DANA, ERIN, FRED)]
        dana, erin, fred = callers
        assert all(call.queue is not None for call in callers)
        assert await line(env) == [call.sid for call in callers]
        if moment == "a move Twilio keeps failing":
            failures = twilio.account.script.rest_failures
            failures.extend([(503, 20503)] * 1000)  # Twilio docs: error 20503, "Service unavailable"

            async def failed_three_times() -> bool:
                return len(failures) <= 997

            await bridge_command(env, "agents", "set", ALICE, "available")  # a move of Dana, to ring alice
            await eventually(failed_three_times)
        first.kill()
        first_log = (await first.communicate())[1].decode()
        if moment == "a move Twilio keeps failing":
            assert "Twilio answered 503" in first_log
            twilio.account.script.rest_failures.clear()
            assert dana.queue is not None  # no move landed
        second = await start_serve(env)
        try:
            assert await line(env) == [call.sid for call in callers]
            if moment == "callers waiting":
                await bridge_command(env, "agents", "set", ALICE, "available")
            leg = await twilio.ringing(ALICE, within=60)
            assert leg.parent is dana
            await twilio.answer(leg)
            assert await line(env) == [erin.sid, fred.sid]
            await twilio.hang_up(fred)
            await bridge_command(env, "agents", "set", BOB, "available")
            other = await twilio.ringing(BOB, within=60)
            assert other.parent is erin
            await twilio.answer(other)
            await twilio.advance(30)
            for call in (leg, other):
                await twilio.hang_up(call)
            assert all(call.status == "completed" for call in callers)
            assert await line(env) == []
            await outbox_empty(url)
        finally:
            second.terminate()
            second_log = (await second.communicate())[1].decode()
        snapshot = sandbox.snapshot()
    # The restarted bridge sent the very move the first one decided (move 1), not a second decision.
    assert f"call {dana.sid} moved (move 1)" in second_log
    (answered_by_alice,) = call_outcome(snapshot, dana.sid)
    (answered_by_bob,) = call_outcome(snapshot, erin.sid)
    (missed,) = call_outcome(snapshot, fred.sid)
    assert (answered_by_alice["assignee_id"], answered_by_bob["assignee_id"]) == (1001, 1002)
    assert "missed_call" in missed["tags"]
    assert "number 2 in line" in " ".join(comment["body"] for comment in missed["comments"])
