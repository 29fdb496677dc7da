"""Two bridges sharing one PostgreSQL database: each call's webhooks spread over both, the agents and line shared."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridge.app import create_app
from bridge.appkeys import CLOCK, DESK, STORE
from bridge.core.routing import order
from bridge.devtools.fake_twilio import TwilioStandIn, serve_stand_in
from bridge.devtools.replay import load, schedule, sign
from bridge.devtools.sandbox import SANDBOX, Sandbox, create_sandbox_app
from bridge.dispatch import Desk
from bridge.ops.settings import Settings
from tests import queue_flows as flows
from tests.callgen import write_calls
from tests.conftest import (
    FAST_RETRY,
    call_outcome,
    eventually,
    free_port,
    recording,
    serve_env,
    start_serve,
    voice_comments,
)

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


# --- the queue: two instances share the agents and the line ------------------------------------------------

AGENTS = {"client:alice": 1001, "client:bob": 1002, "client:carol": 1003}
NUMBERS = ("+16505550100", "+16505550101")  # one number per instance: its calls arrive there


@dataclass
class Instance:
    """One running bridge of several sharing a database."""

    url: str
    app: web.Application

    @property
    def desk(self) -> Desk:
        """Return the instance's presence desk."""
        return self.app[DESK]


@asynccontextmanager
async def instances(
    database_url: str, **overrides: Any
) -> AsyncIterator[tuple[TwilioStandIn, Sandbox, list[Instance]]]:
    """Run two bridges on one database, one sandbox Zendesk, and Twilio's stand-in on virtual time for both.

    Each instance's number rings it; a caller's later webhooks go where the bridge that moved or rang it
    said (its own PUBLIC_URL), so one call's webhooks reach both.
    """
    sandbox_app = create_sandbox_app()
    token = secrets.token_hex(16)
    async with TestServer(sandbox_app, host="127.0.0.1") as zendesk, serve_stand_in(token, seed=7) as twilio:
        runners, running = [], []
        try:
            for number in NUMBERS:
                port = free_port()
                url = f"http://127.0.0.1:{port}"
                settings = Settings(
                    public_url=url, twilio_auth_token=token, twilio_account_sid=twilio.account.sid,
                    twilio_api_url=twilio.url, zendesk_url=str(zendesk.make_url("")).rstrip("/"),
                    zendesk_email="bridge@example.com", zendesk_api_token="sandbox-token", database_url=database_url,
                    agents=dict(AGENTS), caller_id=number, **overrides,
                )  # fmt: skip
                app = create_app(settings, clock=twilio.clock, retry=FAST_RETRY)
                runner = web.AppRunner(app, shutdown_timeout=5.0)
                await runner.setup()
                runners.append(runner)
                await web.TCPSite(runner, "127.0.0.1", port).start()
                twilio.own(number, f"{url}/twilio/voice/incoming", status_callback=f"{url}/twilio/voice/status")
                running.append(Instance(url, app))
            yield twilio, sandbox_app[SANDBOX], running
        finally:
            await twilio.close()
            for runner in runners:
                await runner.cleanup()


@pytest.mark.parametrize("routing", ["ring_all", "longest_idle"])
async def test_callers_queued_across_two_instances_ring_one_agent_at_a_time_oldest_first(
    pg_url: str, routing: str
) -> None:
    """24 callers wait, half arriving at each instance; three agents free up on both, again and again.

    Every time Twilio is at rest: no agent has two legs ringing or answered, the shared agents rows say
    what Twilio does, and the callers being offered are the longest waiting (the head of the line). No
    agent's legs ever overlap; each caller is answered once, by the agent its one ticket names.
    """
    async with instances(pg_url, routing=routing) as (twilio, sandbox, (one, two)):
        await asyncio.gather(*(one.desk.choose(agent, "away", by="test") for agent in AGENTS))
        callers = []
        for index in range(24):
            callers.append(await twilio.incoming(f"+1415555{index:04d}", NUMBERS[index % 2]))
            await twilio.advance(1)  # arrivals a second apart: their order is the line's
        assert all(call.queue is not None for call in callers)
        line = [call.sid for call in callers]
        assert [row.call_sid for row in sorted(await one.desk.waiting(), key=order)] == line
        assert [row.call_sid for row in sorted(await two.desk.waiting(), key=order)] == line
        # The agents come back on both instances at once, carol on both.
        await asyncio.gather(
            one.desk.choose("client:alice", "available", by="test"),
            two.desk.choose("client:bob", "available", by="test"),
            one.desk.choose("client:carol", "available", by="test"),
            two.desk.choose("client:carol", "available", by="test"),
            one.desk.sweep(),
            two.desk.sweep(),
        )
        answered: dict[str, str] = {}  # caller -> the agent who took the call
        while len(answered) < len(callers):
            await flows.quiet(twilio, one.app[STORE], twilio.clock)
            legs = flows.live_legs(twilio)
            assert all(len(now) == 1 for now in legs.values()), legs
            await flows.agents_match_the_legs(twilio, one.desk, one.app[STORE])
            ringing = [leg for now in legs.values() for leg in now if leg.status != "in-progress"]
            offered = {leg.parent.sid for leg in ringing if leg.parent is not None}
            waiting = [call.sid for call in callers if call.sid not in answered]
            assert offered == set(waiting[: len(offered)])  # the head of the line, nobody skipped
            if ringing:
                firsts = {leg.parent.sid: leg for leg in reversed(ringing) if leg.parent is not None}
                await asyncio.gather(*(twilio.answer(leg) for leg in firsts.values()))
                answered.update({caller: leg.to for caller, leg in firsts.items()})
                continue
            talking = [leg for now in legs.values() for leg in now]
            assert talking, "nobody rings or talks, yet callers wait"
            await twilio.advance(10)
            # The calls end (each frees its agent on the instance its webhooks reach); one agent chose away
            # on one instance meanwhile, and comes back on the other as the calls end.
            rested, back = (one, two) if len(answered) % 2 else (two, one)
            await rested.desk.choose(talking[0].to, "away", by="test")
            await asyncio.gather(
                *(twilio.hang_up(leg) for leg in talking), back.desk.choose(talking[0].to, "available", by="test")
            )
        await asyncio.gather(*(twilio.hang_up(leg) for now in flows.live_legs(twilio).values() for leg in now))
        assert all(call.status in flows.ENDED for call in callers)
        flows.no_agent_offered_two_calls(twilio)
        await eventually(lambda: _settled(one), within=60)
        snapshot = sandbox.snapshot()
    for call in callers:
        (ticket,) = call_outcome(snapshot, call.sid)
        assert ticket["assignee_id"] == AGENTS[answered[call.sid]]


async def _settled(instance: Instance) -> bool:
    """Tell whether every call reached its outcome and the shared outbox is empty."""
    store = instance.app[STORE]
    now = instance.app[CLOCK]()
    calls_open = await store.stale_calls(now + timedelta(hours=1), limit=1)
    return not calls_open and (await store.stats(now)).pending == 0
