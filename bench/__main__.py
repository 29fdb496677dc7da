"""`make bench`: run every benchmark against real processes on loopback and write the results.

Processes: the sandbox Zendesk (`bridge sandbox`), the bridge (`bridge serve`, SQLite, durable commits)
or the bare ceiling app, and the load generator (`python -m bench.load`), each its own process.
Writes bench/results/latest.json and bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from bench import live, lookup, routing, wait
from bench.procs import HERE, LATENCY, PYTHON, TOKEN, bridge, free_port, load, process, sandbox, zendesk_api

TARGETS = {
    "ingest_ratio": ("ratio of bridge to bare-aiohttp throughput", ">= 0.35"),
    "latency_p99_ms": ("p99 acknowledgement at half the bridge's own maximum rate", "<= 20 ms"),
    "ring_to_pop_p99_ms": ("p99 from `ringing` sent to display-user at Zendesk", "<= 25 ms"),
    "memory_growth_mb": ("resident memory growth over 100,000 events", "< 20 MB"),
    "drain_over_minimum_pct": ("backlog drain time above the theoretical minimum", "<= 10 %"),
    "drain_429s": ("429s provoked while draining", "0"),
    "burst_p99_ms": ("ring-all burst: p99 ring to display-user answered, empty backlog", "<= 1 round trip + 50 ms"),
    "burst_backlog_p99_ms": ("the same while a 2,000-note backlog drains", "<= 2 round trips"),
    "burst_unlanded": ("ring-all pops not landed (both bursts)", "0"),
    "flood_p50_over_pct": ("signed-webhook p50 during a flood from 100,000 addresses, over one address's", "<= 10 %"),
    **routing.TARGETS,
    **live.TARGETS,
    "lookup_known_pct": ("calls of known callers routed with their Zendesk data, Zendesk at 100-500 ms", "100 %"),
    "wait_median_error_pct": ("expected wait: median error on the replayed day", "<= 25 %"),
}


def rss_mb(pid: int) -> float:
    """Return a process's resident memory in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def settle(url: str, within: float = 120.0) -> None:
    """Wait until the bridge's outbox is empty."""
    deadline = time.monotonic() + within
    while json.loads(urlopen(url + "/healthz").read())["outbox"]["pending"]:
        if time.monotonic() > deadline:
            raise TimeoutError("outbox did not drain")
        time.sleep(0.1)


def ingest(work: Path, calls: int, concurrency: int) -> dict[str, Any]:
    """Closed-loop status callbacks against the bridge and against the ceiling, same generator."""
    zport, bport, cport = free_port(), free_port(), free_port()
    with sandbox(zport), bridge(bport, zport, work / "ingest.db"):
        load("closed", "--url", f"http://127.0.0.1:{bport}", "--calls", "300", "--concurrency", "8", "--salt", "99")
        measured = load("closed", "--url", f"http://127.0.0.1:{bport}", "--calls", str(calls),
                        "--concurrency", str(concurrency), "--salt", "1")  # fmt: skip
    with process(str(HERE / "ceiling.py"), str(cport)):
        wait_http_post(cport)
        ceiling = load("closed", "--url", f"http://127.0.0.1:{cport}", "--calls", str(calls),
                       "--concurrency", str(concurrency), "--salt", "2")  # fmt: skip
    return {"bridge": measured, "ceiling": ceiling, "ratio": round(measured["per_second"] / ceiling["per_second"], 3),
            "concurrency": concurrency}  # fmt: skip


def wait_http_post(port: int) -> None:
    """Wait until the ceiling app listens."""
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def latency(work: Path, rate: float, seconds: float, salt: int) -> dict[str, Any]:
    """Open-loop load at a fixed offered rate: acknowledgement latency from each request's planned time."""
    calls = max(100, int(rate * seconds / 3))
    zport, bport = free_port(), free_port()
    with sandbox(zport), bridge(bport, zport, work / f"latency{salt}.db"):
        result = load("open", "--url", f"http://127.0.0.1:{bport}", "--calls", str(calls), "--rate", str(rate),
                      "--salt", str(salt))  # fmt: skip
    return {"offered_per_second": round(rate, 1), **result}


def ring_to_pop(work: Path, calls: int) -> dict[str, Any]:
    """Time from sending a leg's `ringing` to the display-user request reaching the sandbox."""
    zport, bport = free_port(), free_port()
    with sandbox(zport), bridge(bport, zport, work / "pop.db"):
        url = f"http://127.0.0.1:{bport}"
        load("ringpop", "--url", url, "--calls", "3", "--gap", "0.1")  # warm up: the caller look-up is cached
        sent = load("ringpop", "--url", url, "--calls", str(calls), "--gap", "0.05")["ringing_sent_at"]
        settle(url)
        state = json.loads(urlopen(f"http://127.0.0.1:{zport}/sandbox/state").read())
    pops = sorted(r["at"] for r in state["requests"] if r["path"].endswith("/display.json") and "/users/" in r["path"])
    pops = pops[-len(sent) :]
    delays = sorted((pop - ring) * 1000 for pop, ring in zip(pops, sent, strict=True))
    return {"calls": len(delays), "p50_ms": round(delays[len(delays) // 2], 2),
            "p99_ms": round(delays[min(len(delays) - 1, int(0.99 * len(delays)))], 2),
            "max_ms": round(delays[-1], 2)}  # fmt: skip


def memory(work: Path, events: int) -> dict[str, Any]:
    """Resident memory of `bridge serve` after start and after `events` webhooks."""
    zport, bport = free_port(), free_port()
    with sandbox(zport), bridge(bport, zport, work / "memory.db") as proc:
        url = f"http://127.0.0.1:{bport}"
        load("closed", "--url", url, "--calls", "300", "--concurrency", "8", "--salt", "98")
        settle(url)
        start = rss_mb(proc.pid)
        # Legs ring an identity not in AGENTS: pure ingest, so the outbox does not lag behind the count.
        load("closed", "--url", url, "--calls", str(events // 3), "--concurrency", "32", "--salt", "4",
             "--agent", "client:nobody")  # fmt: skip
        settle(url)
        after = rss_mb(proc.pid)
    return {"events": events // 3 * 3, "start_mb": round(start, 1), "after_mb": round(after, 1),
            "growth_mb": round(after - start, 1)}  # fmt: skip


def drain(work: Path, actions: int, limit: int, window: float) -> dict[str, Any]:
    """Drain a backlog of notes (background work) against a sandbox allowing `limit` requests per `window` s."""
    database = work / "drain.db"
    zport, bport = free_port(), free_port()
    per_minute = limit * 60 / window
    # Stay 2 % under the plan: a window can hold one more evenly spaced request than rate x window.
    ours = int(per_minute * 0.98)
    with sandbox(zport, "--rate-limit", str(limit), "--rate-window", str(window)):
        with bridge(bport, zport, database):
            pass  # the schema
        queue_notes(database, backlog_ticket(zport), actions)
        with bridge(bport, zport, database, ZENDESK_RATE_LIMIT=str(ours)):
            settle(f"http://127.0.0.1:{bport}", within=600)
        state = json.loads(urlopen(f"http://127.0.0.1:{zport}/sandbox/state").read())
    # From the first request reaching Zendesk to the last: the drain itself, not the process start-up.
    arrivals = [r["at"] for r in state["requests"] if r["method"] == "PUT"]
    elapsed = max(arrivals) - min(arrivals)
    minimum = (actions - 1) / (limit / window)
    return {"actions": actions, "limit": f"{limit} per {window:g} s ({per_minute:.0f}/min)",
            "bridge_rate_limit_per_min": ours, "seconds": round(elapsed, 2), "minimum_seconds": round(minimum, 2),
            "over_minimum_pct": round((elapsed / minimum - 1) * 100, 1),
            "responses_429": sum(1 for r in state["requests"] if r["status"] == 429)}  # fmt: skip


FLOOD_RATE = float(os.environ.get("BENCH_FLOOD_RATE", "250"))  # recording-link requests a second in the flood


def queue_notes(database: Path, ticket_id: int, notes: int) -> None:
    """Queue a backlog of private notes on one ticket straight into the outbox (background work)."""
    now = time.time()
    with sqlite3.connect(database) as db:
        db.execute(
            "INSERT INTO actions (key, kind, call_sid, payload, needs, status, next_at, created_at, updated_at, result)"
            " VALUES ('CAbacklog:ticket', 'create_ticket', 'CAbacklog', ?, '[]', 'done', ?, ?, ?, ?)",
            (
                json.dumps({"ticket": {"via_id": 45, "subject": "Backlog", "external_id": "CAbacklog"}}),
                now,
                now,
                now,
                json.dumps({"ticket_id": ticket_id}),
            ),
        )
        db.executemany(
            "INSERT INTO actions (key, kind, call_sid, payload, needs, next_at, created_at, updated_at)"
            " VALUES (?, 'add_note', 'CAbacklog', ?, '[\"CAbacklog:ticket\"]', ?, ?, ?)",
            [(f"CAbacklog:note:{n}", json.dumps({"name": str(n), "body": f"backlog note {n}"}), now, now, now)
             for n in range(notes)],
        )  # fmt: skip


def backlog_ticket(zport: int) -> int:
    """Create the ticket a backlog of notes is added to."""
    body = {"ticket": {"via_id": 45, "subject": "Backlog", "external_id": "CAbacklog",
                       "comment": {"body": "bench", "public": False}}}  # fmt: skip
    return int(zendesk_api(zport, "POST", "/api/v2/channels/voice/tickets.json", body)["ticket"]["id"])


def burst(work: Path, calls: int, agents: int, backlog: int) -> dict[str, Any]:
    """Ring-all burst against a Zendesk with real latency and its per-minute limit: ring to display-user landing."""
    zport, bport = free_port(), free_port()
    database = work / f"burst{backlog}-{zport}.db"
    with sandbox(zport, "--latency", str(LATENCY), "--rate-limit", "700"):
        ids = [1001, 1002, 1003]
        ids += [int(zendesk_api(zport, "POST", "/api/v2/users.json",
                                {"user": {"name": f"Agent {n}", "role": "agent", "email": f"agent{n}@example.com"}})
                    ["user"]["id"]) for n in range(agents - 3)]  # fmt: skip
        identities = {f"client:agent{n}": ids[n] for n in range(agents)}
        env = {"AGENTS": ",".join(f"{who}={uid}" for who, uid in identities.items()), "ZENDESK_RATE_LIMIT": "400"}
        if backlog:
            with bridge(bport, zport, database, **env):
                pass  # the schema
            queue_notes(database, backlog_ticket(zport), backlog)
        with bridge(bport, zport, database, **env):
            url = f"http://127.0.0.1:{bport}"
            if backlog:
                time.sleep(1.0)  # the drain is under way when the calls come
            rings = load("burst", "--url", url, "--calls", str(calls), "--within", "2", "--ring-after", "0.5",
                         "--agents", ",".join(identities))["rings"]  # fmt: skip
            time.sleep(max(5.0, 40 * LATENCY))  # every pop lands or is dropped well within this
            state = json.loads(urlopen(f"http://127.0.0.1:{zport}/sandbox/state").read())
    notes = sum(1 for r in state["requests"] if r["method"] == "PUT")
    by_agent: dict[int, list[float]] = {}
    for r in state["requests"]:
        if r["path"].endswith("/display.json") and "/users/" in r["path"] and r["status"] == 200:
            by_agent.setdefault(int(r["path"].split("/")[6]), []).append(r["at"] + LATENCY)  # landed: answered
    delays: list[float] = []
    for identity, uid in identities.items():
        sent = sorted(at for who, at in rings if who == identity)
        landed = sorted(by_agent.get(uid, []))
        delays += [(pop - ring) * 1000 for ring, pop in zip(sent, landed, strict=False)]
    delays.sort()

    def pct(p: float) -> float:
        return round(delays[min(len(delays) - 1, int(p * len(delays)))], 1) if delays else float("nan")

    return {"calls": calls, "agents": agents, "latency_ms": LATENCY * 1000, "legs": len(rings), "landed": len(delays),
            "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(delays[-1], 1) if delays else float("nan"),
            "backlog": backlog, "backlog_sent_meanwhile": notes,
            "responses_429": sum(1 for r in state["requests"] if r["status"] == 429)}  # fmt: skip


def flood(work: Path, requests: int, rate: float, webhooks_per_second: float) -> dict[str, Any]:
    """Signed-webhook latency while recording links are flooded from one address, and from `requests` addresses.

    Each flood (a process of its own) asks for a recording with a forged signature `requests` times at `rate`
    a second, each request naming its client in X-Forwarded-For (FORWARDED_ALLOW_IPS=*): from one address, or
    each from another. The two floods run at once, against two bridges, so whatever else the machine is doing
    weighs on both alike. Once each limiter would be tracking more than 10,000 clients, a process per bridge
    sends signed status callbacks, open loop, and times them. First, for reference, the same without a flood.
    """
    results: dict[str, Any] = {"requests": requests, "rate": rate, "webhooks_per_second": webhooks_per_second}
    warm_up = 15_000 / rate  # past the limiter's 10,000 clients before timing starts
    timed = max(10.0, (requests - 20_000) / rate)  # ends before the floods do

    def webhooks(url: str, seconds: float, salt: int) -> subprocess.Popen[bytes]:
        calls = str(int(webhooks_per_second * seconds / 3))
        return subprocess.Popen([PYTHON, "-m", "bench.load", "open", "--url", url, "--calls", calls, "--rate",
                                 str(webhooks_per_second), "--salt", str(salt), "--agent", "client:nobody",
                                 "--token", TOKEN], stdout=subprocess.PIPE)  # fmt: skip

    def flooder(url: str, addresses: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen([PYTHON, "-m", "bench.load", "flood", "--url", url, "--calls", str(requests),
                                 "--rate", str(rate), "--addresses", str(addresses), "--token", TOKEN],
                                stdout=subprocess.PIPE)  # fmt: skip

    def read(process: subprocess.Popen[bytes]) -> dict[str, Any]:
        return dict(json.loads(process.communicate()[0]))

    zport, one_port, many_port = free_port(), free_port(), free_port()
    with (
        sandbox(zport),
        bridge(one_port, zport, work / "flood-one.db", FORWARDED_ALLOW_IPS="*"),
        bridge(many_port, zport, work / "flood-many.db", FORWARDED_ALLOW_IPS="*"),
    ):
        one, many = f"http://127.0.0.1:{one_port}", f"http://127.0.0.1:{many_port}"
        for url in (one, many):  # warm up: the caller look-up, the first statements
            load("closed", "--url", url, "--calls", "100", "--concurrency", "4", "--salt", "97",
                 "--agent", "client:nobody")  # fmt: skip
        results["none"] = {"webhooks": read(webhooks(one, 10.0, 61))}
        floods = {"one_address": flooder(one, 1), "distinct": flooder(many, requests)}
        time.sleep(warm_up)
        timing = {"one_address": webhooks(one, timed, 62), "distinct": webhooks(many, timed, 63)}
        for name in ("one_address", "distinct"):
            results[name] = {"webhooks": read(timing[name]), "flood": read(floods[name])}
    one_hooks, many_hooks = results["one_address"]["webhooks"], results["distinct"]["webhooks"]
    results["p50_over_pct"] = round((many_hooks["p50_ms"] / one_hooks["p50_ms"] - 1) * 100, 1)
    results["p99_over_pct"] = round((many_hooks["p99_ms"] / one_hooks["p99_ms"] - 1) * 100, 1)
    return results


def disk_commits(work: Path, seconds: float) -> dict[str, Any]:
    """Time bare durable SQLite commits (WAL, synchronous=FULL), one every 5 ms: what any acknowledgement waits for."""
    db = sqlite3.connect(work / "disk.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    took: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        began = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (body) VALUES (?)", ("x" * 2000,))
        db.execute("COMMIT")
        took.append(time.perf_counter() - began)
        time.sleep(max(0.0, 0.005 - took[-1]))
    db.close()
    took.sort()

    def ms(p: float) -> float:
        return round(took[min(len(took) - 1, int(p * len(took)))] * 1000, 2)

    return {"commits": len(took), "seconds": seconds, "p50_ms": ms(0.5), "p99_ms": ms(0.99), "p999_ms": ms(0.999),
            "max_ms": round(took[-1] * 1000, 1)}  # fmt: skip


def machine() -> dict[str, Any]:
    """Describe the machine the figures come from."""
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal"))  # fmt: skip
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gb": round(memory_kb / 1024 / 1024, 1),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform()}  # fmt: skip


def verdicts(results: dict[str, Any]) -> dict[str, tuple[Any, bool]]:
    """Return each figure against its target."""
    r = results
    unlanded = sum(r[k]["legs"] - r[k]["landed"] for k in ("burst", "burst_backlog"))
    return {
        "ingest_ratio": (r["ingest"]["ratio"], r["ingest"]["ratio"] >= 0.35),
        "latency_p99_ms": (r["latency_half_bridge"]["p99_ms"], r["latency_half_bridge"]["p99_ms"] <= 20),
        "ring_to_pop_p99_ms": (r["ring_to_pop"]["p99_ms"], r["ring_to_pop"]["p99_ms"] <= 25),
        "memory_growth_mb": (r["memory"]["growth_mb"], r["memory"]["growth_mb"] < 20),
        "drain_over_minimum_pct": (r["drain"]["over_minimum_pct"], r["drain"]["over_minimum_pct"] <= 10),
        "drain_429s": (r["drain"]["responses_429"], r["drain"]["responses_429"] == 0),
        "burst_p99_ms": (r["burst"]["p99_ms"], r["burst"]["p99_ms"] <= r["burst"]["latency_ms"] + 50),
        "burst_backlog_p99_ms": (
            r["burst_backlog"]["p99_ms"],
            r["burst_backlog"]["p99_ms"] <= 2 * r["burst_backlog"]["latency_ms"],
        ),
        "burst_unlanded": (unlanded, unlanded == 0),
        "flood_p50_over_pct": (r["flood"]["p50_over_pct"], r["flood"]["p50_over_pct"] <= 10),
        **routing.verdicts(r),
        **live.verdicts(r),
        **known_customer_verdicts(r),
    }


def write_results_md(results: dict[str, Any]) -> None:
    """Rewrite the measured table at the top of bench/RESULTS.md, keeping the notes below it."""
    path = HERE / "RESULTS.md"
    notes = ""
    if path.exists():
        text = path.read_text()
        marker = "<!-- notes -->"
        notes = text[text.index(marker) :] if marker in text else ""
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Measured {results['date']} by `make bench{' BENCH_ARGS=--quick' if results.get('quick') else ''}` "
        f"({results['total_seconds']} s) on {m['cpus']} cores "
        f"({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}, SQLite {m['sqlite']}, {m['platform']}.",
        "Every process runs on this machine, and the load comes from a separate process over loopback. The "
        "requests are distinct, validly signed, and generated before timing starts.",
        "",
        "| figure | measured | target | met |",
        "|---|---|---|---|",
    ]
    for key, verdict in results["verdicts"].items():
        label, target = TARGETS[key]
        lines.append(f"| {label} | {verdict['value']} | {target} | {'yes' if verdict['met'] else '**no**'} |")
    i, lat, half, pop, mem, dr, disk = (results[k] for k in ("ingest", "latency", "latency_half_bridge", "ring_to_pop",
                                                            "memory", "drain", "disk"))  # fmt: skip
    lines += [
        "",
        "Details:",
        "",
        f"- **Ingest** (closed loop, concurrency {i['concurrency']}, {i['bridge']['requests']} status callbacks):",
        f"  - bridge: {i['bridge']['per_second']}/s, with acknowledgement p50 {i['bridge']['p50_ms']} ms and p99 "
        f"{i['bridge']['p99_ms']} ms;",
        f"  - bare aiohttp: {i['ceiling']['per_second']}/s, with p50 {i['ceiling']['p50_ms']} ms and p99 "
        f"{i['ceiling']['p99_ms']} ms;",
        f"  - ratio: {i['ratio']}.",
        f"- **Latency at half the bridge's own throughput** ({half['offered_per_second']}/s offered): "
        f"p50 {half['p50_ms']} ms, p99 {half['p99_ms']} ms.",
        f"- **Latency at half the ceiling** (extra information: {lat['offered_per_second']}/s offered, more than the "
        f"bridge sustains): p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, {lat['errors']} errors.",
        f"- **This disk's durable commit** (a bare SQLite WAL commit with synchronous=FULL, {disk['commits']} "
        f"of them over {disk['seconds']:g} s, nothing else of the bench running): p50 {disk['p50_ms']} ms, "
        f"p99 {disk['p99_ms']} ms, p99.9 {disk['p999_ms']} ms, max {disk['max_ms']} ms. Every acknowledgement "
        "waits for one.",
        f"- **Ring to pop** ({pop['calls']} calls): p50 {pop['p50_ms']} ms, p99 {pop['p99_ms']} ms, "
        f"max {pop['max_ms']} ms.",
        f"- **Memory**: {mem['start_mb']} MB after start, {mem['after_mb']} MB after {mem['events']} events.",
        f"- **Backlog drain** of {dr['actions']} notes (background work) against a limit of {dr['limit']}, "
        f"with the bridge at "
        f"{dr['bridge_rate_limit_per_min']}/min: {dr['seconds']} s against a minimum of {dr['minimum_seconds']} s, "
        f"and {dr['responses_429']} responses of 429.",
    ]
    for key, title in (("burst", "Ring-all burst"), ("burst_backlog", "Ring-all burst during a backlog drain")):
        b = results[key]
        lines.append(
            f"- **{title}** ({b['calls']} calls within 2 s, each ringing {b['agents']} agents, Zendesk answering in "
            f"{b['latency_ms']:g} ms and allowing 700/min, ZENDESK_RATE_LIMIT=400, backlog {b['backlog']}): "
            f"{b['landed']} of {b['legs']} pops landed within the window; ring to pop answered p50 {b['p50_ms']} ms, "
            f"p99 {b['p99_ms']} ms, max {b['max_ms']} ms; {b['backlog_sent_meanwhile']} backlog requests "
            f"meanwhile; {b['responses_429']} responses of 429."
        )
    fl = results["flood"]
    lines.append(
        f"- **Flood of recording links** ({fl['requests']} requests with a forged signature at {fl['rate']:g}/s, "
        f"FORWARDED_ALLOW_IPS=*), signed webhooks at {fl['webhooks_per_second']:g}/s meanwhile: p50 / p99 "
        f"{fl['none']['webhooks']['p50_ms']} / {fl['none']['webhooks']['p99_ms']} ms without a flood, "
        f"{fl['one_address']['webhooks']['p50_ms']} / {fl['one_address']['webhooks']['p99_ms']} ms during a flood "
        f"from one address, {fl['distinct']['webhooks']['p50_ms']} / {fl['distinct']['webhooks']['p99_ms']} ms "
        f"during one from {fl['requests']} addresses ({fl['p50_over_pct']:+.1f} % at p50; the two floods run at "
        "once, against two bridges)."
    )
    lines += routing.lines(results)
    lines += live.lines(results)
    lines += known_customer_lines(results)
    lines.append("")
    path.write_text("\n".join(lines) + "\n" + (notes or "<!-- notes -->\n"))


def known_customer_verdicts(r: dict[str, Any]) -> dict[str, tuple[Any, bool]]:
    """Return routing that knows the customer's figures against their targets."""
    known = min(row["known_callers_with_data_pct"] for row in r["lookup"]["by_latency"])
    error = r["expected_wait"]["median_error_pct"]
    return {"lookup_known_pct": (known, known == 100), "wait_median_error_pct": (error, error <= 25)}


def known_customer_lines(r: dict[str, Any]) -> list[str]:
    """Describe routing that knows the customer's figures for bench/RESULTS.md."""
    shares = "; ".join(
        f"{row['latency_ms']} ms: first calls {row['first_calls_with_data_pct']:g} %, known callers "
        f"{row['known_callers_with_data_pct']:g} % ({row['known_callers_fresh_pct']:g} % with fresh data)"
        for row in r["lookup"]["by_latency"]
    )
    w = r["expected_wait"]
    return [
        f"- **Calls routed with the caller's Zendesk data** (LOOKUP_BUDGET_MS={r['lookup']['budget_ms']}, "
        f"{r['lookup']['by_latency'][0]['callers']} callers each calling twice), by Zendesk's latency: {shares}.",
        f"- **The wait to expect, on a replayed day** (seed {w['seed']}: {w['calls']} calls, {w['waited']} waited): "
        f"{w['heard_estimate']} heard an estimate ({w['heard_share_pct']:g} %); of the {w['compared']} of them "
        f"answered, median error {w['median_error_pct']:g} %, p90 {w['p90_error_pct']:g} %, median wait "
        f"{w['median_wait_s']:g} s; over {w['days']} days the median error was "
        f"{', '.join(f'{m:g}' for m in w['median_error_pct_by_day'])} % ({w['days_within_target']} within 25 %).",
    ]


def main(argv: list[str]) -> int:
    """Run everything (about twenty-seven minutes) and write the results; or only the named steps, and print them.

    `--quick` runs each call centre for a minute instead of two and five (the results say so).
    """
    quick = "--quick" in argv
    only = [arg for arg in argv if arg != "--quick"]
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bridge-bench-") as tmp:
        work = Path(tmp)
        results: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
                                   "quick": quick}  # fmt: skip
        steps = [
            ("disk", lambda: disk_commits(work, seconds=10.0)),
            ("ingest", lambda: ingest(work, calls=3000, concurrency=32)),
            ("latency", lambda: latency(work, results["ingest"]["ceiling"]["per_second"] / 2, seconds=4, salt=3)),
            # Informative: the same at half of what the bridge itself sustains.
            ("latency_half_bridge", lambda: latency(work, results["ingest"]["bridge"]["per_second"] / 2, 6, 5)),
            ("ring_to_pop", lambda: ring_to_pop(work, calls=200)),
            ("memory", lambda: memory(work, events=100_000)),
            ("drain", lambda: drain(work, actions=2000, limit=100, window=2.0)),
            ("burst", lambda: burst(work, calls=10, agents=6, backlog=0)),
            ("burst_backlog", lambda: burst(work, calls=10, agents=6, backlog=2000)),
            ("flood", lambda: flood(work, requests=100_000, rate=FLOOD_RATE, webhooks_per_second=60.0)),
            *routing.steps(work, quick),
            *live.steps(work),
            ("lookup", lambda: lookup.measure(callers=20)),
            ("expected_wait", lambda: wait.days()),
        ]
        unknown = set(only) - {name for name, _ in steps}
        if unknown:
            print(f"no such step: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        chosen = {name for arg in only for name in live.GROUPS.get(arg, (arg,))}
        for name, step in steps:
            if only and name not in chosen:
                continue  # a step alone (`python -m bench flood`): printed, not written into the results
            started = time.monotonic()
            results[name] = step()
            print(f"{name}: {json.dumps(results[name])} ({time.monotonic() - started:.0f} s)", flush=True)
    if only:
        return 0
    results["verdicts"] = {k: {"value": v, "met": ok} for k, (v, ok) in verdicts(results).items()}
    results["total_seconds"] = round(time.monotonic() - began, 1)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    write_results_md(results)
    print(f"total {results['total_seconds']} s; wrote {out / 'latest.json'}")
    return 0


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    sys.exit(main(sys.argv[1:]))
