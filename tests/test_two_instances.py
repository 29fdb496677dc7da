"""Two `bridge serve` processes sharing one PostgreSQL database, each call's webhooks spread over both."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from bridge.devtools.replay import load, schedule, sign
from bridge.devtools.sandbox import SANDBOX, Sandbox, create_sandbox_app
from tests.callgen import write_calls
from tests.conftest import eventually, free_port, recording, serve_env, start_serve, voice_comments

TOKEN = "two-instances-token"
UNKNOWN = [f"+1415555{n:04d}" for n in range(400, 410)]


async def pending(url: str, session: aiohttp.ClientSession) -> int:
    """Return the outbox depth an instance reports (the database is shared, so both agree)."""
    async with session.get(url + "/healthz") as response:
        return int((await response.json())["outbox"]["pending"])


async def test_100_calls_across_two_instances(pg_url: str, tmp_path: Path) -> None:
    """Exactly one ticket per call, one voice comment per ticket, one user per new number, no double delivery."""
    sources = [
        (recording("inbound_answered"), None),
        (recording("inbound_unknown_caller"), "+14155550142"),
        (recording("voicemail_unknown_caller"), "+14155550166"),
        (recording("missed_caller_hung_up"), None),
        (recording("outbound_answered"), None),
    ]
    calls = write_calls(sources, 100, tmp_path, UNKNOWN)
    sandbox_app = create_sandbox_app()
    sandbox: Sandbox = sandbox_app[SANDBOX]
    async with TestServer(sandbox_app, host="127.0.0.1") as zendesk:
        zendesk_url = str(zendesk.make_url(""))
        envs = [
            serve_env(zendesk_url, tmp_path / "unused.db", free_port(), TOKEN, DATABASE_URL=pg_url,
                      ZENDESK_TIMEOUT_SECONDS="1", ZENDESK_RATE_LIMIT="100000")
            for _ in range(2)
        ]  # fmt: skip
        processes = [await start_serve(env) for env in envs]
        try:
            sandbox.set_random_faults(0.15, ["500", "503", "429", "drop", "drop_after"], seed=4)
            requests = schedule([load(path) for path in calls], repeat=2, shuffle=True, seed=9)
            spread = random.Random(2)
            gate = asyncio.Semaphore(16)
            async with aiohttp.ClientSession() as session:

                async def send(index: int) -> int:
                    request = requests[index]
                    base = envs[spread.randrange(2)]["PUBLIC_URL"]  # one call's events hit both instances
                    url = base + request.path
                    headers = {**request.headers, "X-Twilio-Signature": sign(TOKEN, url, request.params)}
                    async with gate, session.post(url, data=request.params, headers=headers) as response:
                        await response.read()
                        return response.status

                statuses = await asyncio.gather(*(send(i) for i in range(len(requests))))
                assert set(statuses) <= {200, 204}, Counter(statuses)

                async def drained() -> bool:
                    return not await pending(envs[0]["PUBLIC_URL"], session)

                await eventually(drained, within=120)
            sandbox.clear_faults()
            snapshot = sandbox.snapshot()
        finally:
            logs = []
            for process in processes:
                process.terminate()
                logs.append((await process.communicate())[1].decode())
    assert all(" delivered" in log for log in logs)  # both instances took part in delivering
    sids = {load(path)[0].params["CallSid"] for path in calls}
    tickets = Counter(str(ticket["external_id"]) for ticket in snapshot["tickets"])
    assert set(tickets) == sids
    assert set(tickets.values()) == {1}
    for ticket in snapshot["tickets"]:
        expected = 0 if "missed_call" in ticket["tags"] else 1
        assert len(voice_comments(ticket)) == expected
    for number in UNKNOWN:
        assert len([u for u in snapshot["users"] if u["phone"] == number]) == 1, number
    creates = Counter(
        request["body"]["ticket"]["external_id"]
        for request in snapshot["requests"]
        if request["path"].startswith("/api/v2/channels/voice/tickets") and request["status"] == 201
    )
    assert max(creates.values()) == 1  # no ticket create ever succeeded twice for one call
    assert all(process.returncode == 0 for process in processes)
