"""The live view's benchmark (issue 26): from a change to a supervisor's page showing it.

Processes: the sandbox Zendesk and one bridge (`bench.serve`: `bridge serve` plus a route to the Desk) on
SQLite, then on PostgreSQL (a fresh schema in BENCH_POSTGRES), its `calls` table holding a busy day (3,000
calls across today so far, written once the bridge has migrated its schema). The load generator plays
supervisors' pages: each polls the board every second, as the page does (`GET /live` with LIVE_TOKEN serves
the same board as the page's `GET /live/board`), from a random phase. Every 2.5 s an agent's status changes
through the Desk, as a click in the softphone would; each page notes when its board first shows it.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.procs import TOKEN, free_port, process, sandbox
from bench.routing import postgres_schema, pythonpath
from bridge.core.call_model import Call, Leg, Placed
from bridge.core.events import LegStatus

LIVE_TOKEN = "bench-live-token"
POLL_SECONDS = 1.0  # the page's poll (bridge/live/static/live.js)
TARGETS = {
    "live_view_p99_ms": ("live view: an agent's status change to a polling page showing it, p99: SQLite", "<= 2000 ms"),
    "live_view_postgres_p99_ms": ("the same on PostgreSQL", "<= 2000 ms"),
}
INSERT = "INSERT INTO calls (call_sid, state, finished, created_at, updated_at) VALUES "


def a_day_of_calls(database_url: str, calls: int, now: datetime) -> None:
    """Write `calls` calls into the bridge's store, arrived across today so far: answered, missed, abandoned."""
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    span = max(60.0, (now - start).total_seconds() - 60)
    rng = random.Random(26)
    rows = []
    for n in range(calls):
        at = start + timedelta(seconds=rng.uniform(0, span))
        wait = rng.expovariate(1 / 25)
        sid = f"CA{n:032x}"
        call = Call(sid=sid, direction="inbound", first_seen=at, line="default", placed=Placed(kind="offer", at=at),
                    from_number=f"+1415555{n % 10000:04d}", ended_at=at + timedelta(seconds=wait + 120))  # fmt: skip
        if rng.random() < 0.85:
            leg = Leg(sid=sid + "L", to="client:agent0", status=LegStatus.COMPLETED,
                      answered_at=at + timedelta(seconds=wait))  # fmt: skip
            call = call.model_copy(update={"legs": {leg.sid: leg}, "answered_leg": leg.sid})
        elif rng.random() < 0.5:
            call = call.model_copy(update={"queued_at": at})
        # The columns as the bridge's schema types them (bridge/store/schema.py): the state as JSON text,
        # finished a boolean (SQLite's INTEGER 1), the times epoch seconds (REAL, DOUBLE PRECISION).
        rows.append((sid, call.model_dump_json(), True, at.timestamp(), at.timestamp()))
    if database_url.startswith("sqlite:"):
        db = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)
        with db:
            db.executemany(INSERT + "(?, ?, ?, ?, ?)", rows)
        db.close()
        return

    async def insert() -> None:
        conn = await asyncpg.connect(database_url, timeout=5)  # the schema rides in the URL's search_path
        try:
            await conn.executemany(INSERT + "($1, $2, $3, $4, $5)", rows)
        finally:
            await conn.close()

    asyncio.run(insert())


async def pages_and_changes(url: str, agents: list[str], pages: int, changes: int) -> dict[str, Any]:
    """Poll the board from `pages` pages while `changes` status changes happen; return the times to show each."""
    pending: dict[int, tuple[str, str, float]] = {}  # change -> (agent, status, when it was sent)
    seen: dict[tuple[int, int], float] = {}  # (page, change) -> seconds to show
    polls: list[float] = []
    stop = asyncio.Event()
    headers = {"Authorization": f"Bearer {LIVE_TOKEN}"}

    async def page(number: int, http: aiohttp.ClientSession) -> None:
        await asyncio.sleep(random.uniform(0, POLL_SECONDS))
        while not stop.is_set():
            began = time.monotonic()
            async with http.get(url + "/live", headers=headers) as response:
                made = await response.json()
            polls.append(time.monotonic() - began)
            chosen = {agent["identity"]: agent["chosen"] for agent in made["agents"]}
            arrived = time.monotonic()
            for change, (agent, status, sent) in list(pending.items()):
                if (number, change) not in seen and chosen.get(agent) == status:
                    seen[number, change] = arrived - sent
            await asyncio.sleep(POLL_SECONDS)  # the page waits a second after each answer

    async with aiohttp.ClientSession() as http:
        tasks = [asyncio.create_task(page(n, http)) for n in range(pages)]
        await asyncio.sleep(3)  # every page polling
        state = dict.fromkeys(agents, "available")
        for change in range(changes):
            agent = agents[change % len(agents)]
            state[agent] = "away" if state[agent] == "available" else "available"
            sent = time.monotonic()
            async with http.post(f"{url}/bench/agents/{agent}", data={"status": state[agent]}) as response:
                assert response.status == 204, response.status
            pending[change] = (agent, state[agent], sent)
            await asyncio.sleep(2.5)
        await asyncio.sleep(3)  # the last change reaches every page
        stop.set()
        await asyncio.gather(*tasks)
    took = sorted(seen.values())
    missing = pages * changes - len(took)

    def ms(values: list[float], p: float) -> float:
        return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 1) if values else float("nan")

    polls.sort()
    return {"pages": pages, "changes": changes, "shown": len(took), "never_shown": missing,
            "p50_ms": ms(took, 0.5), "p99_ms": ms(took, 0.99), "max_ms": ms(took, 1.0),
            "poll_p50_ms": ms(polls, 0.5), "poll_p99_ms": ms(polls, 0.99)}  # fmt: skip


def live_view(
    work: Path, *, store: str, agents: int = 50, calls: int = 3000, pages: int = 10, changes: int = 40
) -> dict[str, Any]:
    """Run the bridge on `store` (sqlite or postgres) with a busy day in it; measure a status change reaching pages."""
    zport, port = free_port(), free_port()
    team = {f"client:agent{n}": 5000 + n for n in range(agents)}
    env = {
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TWILIO_AUTH_TOKEN": TOKEN,
        "ZENDESK_URL": f"http://127.0.0.1:{zport}",
        "ZENDESK_EMAIL": "bridge@example.com",
        "ZENDESK_API_TOKEN": "sandbox-token",
        "AGENTS": ",".join(f"{identity}={user}" for identity, user in team.items()),
        "ZENDESK_AVAILABILITY_SECONDS": "0",
        "LIVE_TOKEN": LIVE_TOKEN,
        "LOG_LEVEL": "warning",
        "PYTHONPATH": pythonpath(),  # it runs beside its database, outside the checkout
    }
    url = f"http://127.0.0.1:{port}"
    with sandbox(zport), ExitStack() as stack:
        if store == "sqlite":
            database_url = f"sqlite:///{work / f'live-{port}.db'}"
        else:
            database_url = stack.enter_context(postgres_schema())
        env["DATABASE_URL"] = database_url
        # The bridge migrates its schema at start-up; the day's calls go in once it is up.
        stack.enter_context(process("-m", "bench.serve", "--port", str(port), env=env, ready=url + "/healthz",
                                    cwd=str(work)))  # fmt: skip
        a_day_of_calls(database_url, calls, datetime.now(UTC))
        measured = asyncio.run(pages_and_changes(url, list(team), pages, changes))
    return {"store": store, "agents": agents, "calls": calls, **measured}


STORES = (("live_view", "sqlite", "SQLite"), ("live_view_postgres", "postgres", "PostgreSQL"))  # result key, store
GROUPS = {"live_view": tuple(key for key, _, _ in STORES)}  # `python -m bench live_view`: both stores


def steps(work: Path) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    """Return the live view's steps of `make bench`: one on each store (`python -m bench live_view` runs both)."""
    return [(key, partial(live_view, work, store=store)) for key, store, _ in STORES]


def verdicts(r: dict[str, Any]) -> dict[str, tuple[Any, bool]]:
    """Return the live view's figure on each store against its target."""
    return {
        f"{key}_p99_ms": (r[key]["p99_ms"], r[key]["p99_ms"] <= 2000 and r[key]["never_shown"] == 0)
        for key, _, _ in STORES
    }


def lines(r: dict[str, Any]) -> list[str]:
    """Describe the live view's figures on each store for bench/RESULTS.md."""
    out = []
    for key, _, name in STORES:
        live = r[key]
        out.append(
            f"- **Live view on {name}** ({live['pages']} pages polling every {POLL_SECONDS:g} s, {live['agents']} "
            f"agents, {live['calls']} calls today in the store, {live['changes']} status changes): from the change "
            f"sent to a page's board showing it p50 {live['p50_ms']} ms, p99 {live['p99_ms']} ms, max "
            f"{live['max_ms']} ms; {live['never_shown']} never shown; one board request p50 {live['poll_p50_ms']} / "
            f"p99 {live['poll_p99_ms']} ms."
        )
    return out
