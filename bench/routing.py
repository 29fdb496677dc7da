"""The routing benchmarks (issue 22): offers and the queue against the real bridge, Twilio and Zendesk on loopback.

Processes: the sandbox Zendesk (answering in BENCH_ZENDESK_LATENCY, 200 ms, and enforcing a per-minute
limit), one or two bridges (`bench.serve`: `bridge serve` plus a route to the Desk, on one shared port) on
SQLite or PostgreSQL, and Twilio (`bench.twilio`: the stand-in on the wall clock, its REST API answering in
100-300 ms under a concurrency limit) with the people on the calls (`bench.floor`).

- `call_centre`: 300 agents, 500 callers kept waiting, agents freeing up at random (calls ending, breaks
  taken and ended). Measures offer latency (an agent becoming offerable to Twilio receiving the Calls
  update), double offers as Twilio sees them, and, from the bridge's own log of moves, whether every move
  took the oldest caller waiting.
- `incoming`: `/incoming` acknowledgement latency at a fixed rate, with 2 agents and with 300.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.floor import agent_identity
from bench.procs import HERE, LATENCY, PYTHON, TOKEN, bridge, free_port, load, process, sandbox, zendesk_api
from bridge.devtools.fake_twilio.account import DEFAULT_ACCOUNT

POSTGRES = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ZENDESK_LIMIT = 2500  # requests a minute: Zendesk's Enterprise Plus plan, what a 300-agent centre would have
ROOT = HERE.parent


def agent_users(zport: int, agents: int) -> dict[str, int]:
    """Create the agents as Zendesk users in the sandbox; return AGENTS (identity -> user id)."""

    def create(n: int) -> int:
        body = {"user": {"name": f"Agent {n}", "role": "agent", "email": f"agent{n}@example.com"}}
        return int(zendesk_api(zport, "POST", "/api/v2/users.json", body)["user"]["id"])

    with ThreadPoolExecutor(max_workers=32) as pool:
        ids = list(pool.map(create, range(agents)))
    return {agent_identity(n): user_id for n, user_id in enumerate(ids)}


def bridge_env(port: int, zport: int, tport: int, database_url: str, agents: dict[str, int]) -> dict[str, str]:
    """Return the settings of a bridge with the queue on, against the sandbox and the bench's Twilio."""
    env = {
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT,
        "TWILIO_API_URL": f"http://127.0.0.1:{tport}",
        "ZENDESK_URL": f"http://127.0.0.1:{zport}",
        "ZENDESK_EMAIL": "bridge@example.com",
        "ZENDESK_API_TOKEN": "sandbox-token",
        "ZENDESK_RATE_LIMIT": str(ZENDESK_LIMIT - 50),
        "DATABASE_URL": database_url,
        "AGENTS": ",".join(f"{identity}={user_id}" for identity, user_id in agents.items()),
        # 500 callers wait a few minutes each: a queue that holds them, and no caller sent to voicemail for waiting.
        "QUEUE_MAX_SIZE": "1000",
        "QUEUE_MAX_WAIT_SECONDS": "3600",
        "LOG_LEVEL": "info",
    }
    env["PYTHONPATH"] = pythonpath()
    return env


def pythonpath() -> str:
    """Return the PYTHONPATH of a `bench.serve` run outside the checkout: this bench, and the bridge to measure."""
    source = os.environ.get("BENCH_BRIDGE_SOURCE")  # another checkout's bridge, this checkout's bench
    return f"{source}:{ROOT}" if source else str(ROOT)


@contextmanager
def bridges(count: int, port: int, env: dict[str, str], cwd: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Run `count` bridge instances sharing `port`; the first migrates the schema before the others start."""
    with ExitStack() as stack:
        yield [stack.enter_context(process("-m", "bench.serve", "--port", str(port), env=env, cwd=str(cwd),
                                           ready=f"http://127.0.0.1:{port}/healthz"))
               for _ in range(count)]  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """Return the CPU time a process has used (user and system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def postgres_schema() -> Iterator[str]:
    """Make a fresh schema in the bench's PostgreSQL database; yield its DATABASE_URL; drop it after."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"

    async def run(statement: str) -> None:
        conn = await asyncpg.connect(POSTGRES, timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES}?search_path={schema}"
    finally:
        asyncio.run(run(f'DROP SCHEMA "{schema}" CASCADE'))


def call_centre(work: Path, *, store: str, instances: int, agents: int, callers: int, seconds: float) -> dict[str, Any]:
    """Run the call centre against `instances` bridges on `store` (sqlite or postgres); return what was measured."""
    zport, bport, tport = free_port(), free_port(), free_port()
    with sandbox(zport, "--latency", str(LATENCY), "--rate-limit", str(ZENDESK_LIMIT)), ExitStack() as stack:
        users = agent_users(zport, agents)
        if store == "sqlite":
            url = f"sqlite:///{work / f'centre-{bport}.db'}"
        else:
            url = stack.enter_context(postgres_schema())
        env = bridge_env(bport, zport, tport, url, users)
        twilio = subprocess.Popen(
            [PYTHON, "-m", "bench.twilio", "--port", str(tport), "--bridge", f"http://127.0.0.1:{bport}",
             "--token", TOKEN, "--agents", str(agents), "--callers", str(callers), "--seconds", str(seconds)],
            stdout=subprocess.PIPE, cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        try:
            with bridges(instances, bport, env, work) as running:
                began = [cpu_seconds(proc.pid) for proc in running]
                out, _ = twilio.communicate(timeout=seconds + 900)
                used = [round(cpu_seconds(proc.pid) - before, 1) for proc, before in zip(running, began, strict=True)]
        finally:
            if twilio.poll() is None:
                twilio.kill()
        if twilio.returncode != 0:
            raise RuntimeError(f"bench.twilio failed ({twilio.returncode})")
        report: dict[str, Any] = json.loads(out)
        report["order"] = move_order(url)
    report.update(store=store, instances=instances, bridge_cpu_seconds=used)
    return report


def move_order(database_url: str) -> dict[str, Any]:
    """Check every move took the oldest caller waiting, from the bridge's own log of moves (actions) and calls.

    Moves are numbered in the order they were decided: each is decided under the routing lock, and its row
    is inserted there. A move of caller C is an inversion when a caller who arrived before C was already in
    the queue at that decision and had not been moved yet.
    """
    moves, calls = _read(database_url)
    first_move: dict[str, int] = {}
    for move_id, call_sid, _ in moves:
        first_move.setdefault(call_sid, move_id)
    queued = [(arrived, at, sid) for sid, (arrived, at) in calls.items() if at is not None and arrived is not None]
    inversions: list[str] = []
    for move_id, call_sid, decided in moves:
        arrived = calls.get(call_sid, (None, None))[0]
        if arrived is None:
            continue
        passed = [sid for earlier, at, sid in queued
                  if earlier < arrived and at < decided and first_move.get(sid, move_id + 1) > move_id]  # fmt: skip
        if passed:
            inversions.append(f"move {move_id} of {call_sid} passed over {len(passed)} older, e.g. {passed[0]}")
    return {"moves_decided": len(moves), "callers_queued": len(queued), "inversions": len(inversions),
            "examples": inversions[:10]}  # fmt: skip


def _read(database_url: str) -> tuple[list[tuple[int, str, float]], dict[str, tuple[float | None, float | None]]]:
    """Read the moves (id, call, decided at) and each call's arrival and entry into the queue (epoch seconds)."""
    moves_sql = "SELECT id, call_sid, created_at FROM actions WHERE kind = 'move_call' ORDER BY id"
    calls_sql = "SELECT call_sid, state FROM calls"
    if database_url.startswith("sqlite:"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            moves = [(int(a), str(b), float(c)) for a, b, c in db.execute(moves_sql)]
            rows = list(db.execute(calls_sql))
    else:

        async def fetch() -> tuple[list[Any], list[Any]]:
            conn = await asyncpg.connect(database_url, timeout=5)
            try:
                return await conn.fetch(moves_sql), await conn.fetch(calls_sql)
            finally:
                await conn.close()

        fetched, rows = asyncio.run(fetch())
        moves = [(int(r[0]), str(r[1]), float(r[2])) for r in fetched]

    def epoch(value: str | None) -> float | None:
        return datetime.fromisoformat(value).timestamp() if value else None

    calls = {}
    for sid, text in rows:
        state = json.loads(text)
        calls[str(sid)] = (epoch(state.get("first_seen")), epoch(state.get("queued_at")))
    return moves, calls


def incoming(work: Path, agents: int, rate: float, seconds: float) -> dict[str, Any]:
    """`/incoming` acknowledgement latency at `rate` calls a second against `bridge serve` with `agents` agents.

    SQLite, the queue on (default size and wait), Zendesk answering in BENCH_ZENDESK_LATENCY. Nobody answers:
    the first calls ring every agent (ten at a time), the next wait in the queue until it is full, the rest
    go to voicemail; every arrival is routed, reading every agent and the queue.
    """
    zport, bport = free_port(), free_port()
    with sandbox(zport, "--latency", str(LATENCY), "--rate-limit", str(ZENDESK_LIMIT)):
        users = agent_users(zport, agents)
        env = {
            "AGENTS": ",".join(f"{identity}={user_id}" for identity, user_id in users.items()),
            "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT,
            "TWILIO_API_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens: no move is due within the run
            "ZENDESK_RATE_LIMIT": str(ZENDESK_LIMIT - 50),
        }
        with bridge(bport, zport, work / f"incoming-{agents}-{bport}.db", **env):
            url = f"http://127.0.0.1:{bport}"
            load("incoming", "--url", url, "--calls", "50", "--rate", "25", "--salt", "90")  # warm up
            measured = load("incoming", "--url", url, "--calls", str(int(rate * seconds)), "--rate", str(rate),
                            "--salt", str(91 + agents))  # fmt: skip
    return {"agents": agents, "offered_per_second": rate, **measured}


TARGETS = {
    "offer_sqlite_p99_ms": ("agent offerable to Twilio receiving the move, p99: SQLite, one instance", "<= 50 ms"),
    "offer_postgres_p99_ms": ("the same on PostgreSQL, two instances (the call centre)", "<= 100 ms"),
    "double_offers": ("agents offered two calls at once (both call centres)", "0"),
    "order_inversions": ("moves that passed over an older waiting caller (both call centres)", "0"),
    "incoming_300_p99_ms": ("`/incoming` p99 at 50 calls/s with 300 agents (median of 3)", "<= 2 agents' (worst of 3)"),
}


def steps(work: Path, quick: bool) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    """Return the routing steps of `make bench`; `quick` shortens both call centres to a minute."""
    centre: dict[str, Any] = {"agents": 300, "callers": 500}
    short, soak = (60.0, 60.0) if quick else (120.0, 300.0)
    return [
        ("offers_sqlite", lambda: call_centre(work, store="sqlite", instances=1, seconds=short, **centre)),
        ("call_centre", lambda: call_centre(work, store="postgres", instances=2, seconds=soak, **centre)),
        ("incoming", lambda: incoming_rounds(work, rounds=3)),
    ]


def incoming_rounds(work: Path, rounds: int) -> dict[str, Any]:
    """`/incoming` at 50 calls/s with 2 agents, then with 300, `rounds` times over (this machine's noise shows)."""
    runs: dict[str, list[dict[str, Any]]] = {"agents_2": [], "agents_300": []}
    for _ in range(rounds):
        for agents in (2, 300):
            runs[f"agents_{agents}"].append(incoming(work, agents=agents, rate=50.0, seconds=20.0))
    return {key: {"runs": values, "p50_ms": [run["p50_ms"] for run in values],
                  "p99_ms": [run["p99_ms"] for run in values],
                  "median_p99_ms": statistics.median(run["p99_ms"] for run in values)}
            for key, values in runs.items()}  # fmt: skip


def verdicts(r: dict[str, Any]) -> dict[str, tuple[Any, bool]]:
    """Return each routing figure against its target."""
    centres = (r["offers_sqlite"], r["call_centre"])
    doubles = sum(c["double_offers"] for c in centres)
    inversions = sum(c["order"]["inversions"] for c in centres)
    sqlite_p99, pg_p99 = (c["latency"]["p99_ms"] for c in centres)
    two, many = r["incoming"]["agents_2"], r["incoming"]["agents_300"]
    return {
        "offer_sqlite_p99_ms": (sqlite_p99, sqlite_p99 <= 50),
        "offer_postgres_p99_ms": (pg_p99, pg_p99 <= 100),
        "double_offers": (doubles, doubles == 0),
        "order_inversions": (inversions, inversions == 0),
        # "No worse than 2 agents" within this machine's noise: inside the spread of the 2-agent runs.
        "incoming_300_p99_ms": (many["median_p99_ms"], many["median_p99_ms"] <= max(two["p99_ms"])),
    }


def lines(r: dict[str, Any]) -> list[str]:
    """Describe the routing figures for bench/RESULTS.md."""
    out = []
    for key, title in (("offers_sqlite", "Offers on SQLite, one instance"),
                       ("call_centre", "The call centre on PostgreSQL, two instances")):  # fmt: skip
        c = r[key]
        lat, st, end, order = c["latency"], c["latency_status"], c["latency_call_end"], c["order"]
        out.append(
            f"- **{title}** ({c['agents']} agents, {c['waiting_min']}-{c['waiting_max']} callers waiting, agents "
            f"freeing up at random for {c['seconds']:g} s): {lat['count']} offers timed from the agent becoming "
            f"offerable to Twilio receiving the move: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max "
            f"{lat['max_ms']} ms (after a status change: {st['count']}, p50 {st['p50_ms']} / p99 {st['p99_ms']} ms; "
            f"after a call ended: {end['count']}, p50 {end['p50_ms']} / p99 {end['p99_ms']} ms); "
            f"{c['double_offers']} double offers in {c['offers']} rings; {order['inversions']} of "
            f"{order['moves_decided']} moves passed over an older caller; {c['direct_offers']} offers without a "
            f"move; {c['twilio']['refused_429']} moves refused with 20429; bridge CPU {c['bridge_cpu_seconds']} s; "
            f"Twilio's loop late by p99 {c['twilio_loop_lag']['p99_ms']} ms."
        )
    two, many = r["incoming"]["agents_2"], r["incoming"]["agents_300"]
    first = two["runs"][0]
    errors = sum(run["errors"] for run in two["runs"] + many["runs"])
    out.append(
        f"- **`/incoming` at {first['offered_per_second']:g} calls/s** ({first['requests']} calls a run, SQLite, the "
        f"queue on, Zendesk at {LATENCY * 1000:g} ms; 2 agents then 300, {len(two['runs'])} times): with 2 agents "
        f"p50 {two['p50_ms']} / p99 {two['p99_ms']} ms; with 300 agents p50 {many['p50_ms']} / p99 {many['p99_ms']} "
        f"ms; {errors} errors."
    )
    return out
