"""The processes every benchmark runs: the sandbox Zendesk, `bridge serve`, the load generator, on loopback."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

HERE = Path(__file__).parent
PYTHON = sys.executable
TOKEN = "bench-token"
LATENCY = float(os.environ.get("BENCH_ZENDESK_LATENCY", "0.2"))  # seconds a Zendesk request takes (100-500 ms)
SANDBOX_AUTH = "Basic " + base64.b64encode(b"bridge@example.com/token:sandbox-token").decode()


def free_port() -> int:
    """Return a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, within: float = 20.0) -> None:
    """Wait until a URL answers."""
    deadline = time.monotonic() + within
    while True:
        try:
            with urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def process(
    *args: str, env: dict[str, str] | None = None, ready: str | None = None, cwd: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a process for the duration of a block; wait for `ready` URL when given."""
    logs = os.environ.get("BENCH_LOGS")  # a directory: keep each process's log there, for diagnosis
    stderr = open(Path(logs) / f"{args[-1]}-{time.time():.3f}.log", "wb") if logs else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen([PYTHON, *args], env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=stderr, cwd=cwd)  # fmt: skip
    try:
        if ready:
            wait_http(ready)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def sandbox(port: int, *extra: str) -> Any:
    """Run the sandbox Zendesk."""
    return process(
        "-m", "bridge", "sandbox", "--port", str(port), *extra, ready=f"http://127.0.0.1:{port}/sandbox/state"
    )


def bridge(port: int, zendesk_port: int, database: Path, **env: str) -> Any:
    """Run `bridge serve` on SQLite against the sandbox."""
    values = {
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PORT": str(port),
        "TWILIO_AUTH_TOKEN": TOKEN,
        "ZENDESK_URL": f"http://127.0.0.1:{zendesk_port}",
        "ZENDESK_EMAIL": "bridge@example.com",
        "ZENDESK_API_TOKEN": "sandbox-token",
        "DATABASE_URL": f"sqlite:///{database}",
        "AGENTS": "client:alice=1001",
        "ZENDESK_RATE_LIMIT": "1000000",
        "LOG_LEVEL": "info",
        **env,
    }
    args = ["-m", "bridge", "serve", "--host", "127.0.0.1"]
    # BENCH_BRIDGE_SOURCE: another checkout's bridge (e.g. `git archive` of an older commit) against this
    # bench and sandbox, for before/after figures.
    source = os.environ.get("BENCH_BRIDGE_SOURCE")
    if source:
        values["PYTHONPATH"] = source
    # Run it beside its database, never in the checkout, where a developer's `.env` would change what is measured.
    cwd = source or str(database.parent)
    return process(*args, env=values, ready=f"http://127.0.0.1:{port}/healthz", cwd=cwd)


def load(*args: str) -> dict[str, Any]:
    """Run the load generator process and return its JSON."""
    out = subprocess.run([PYTHON, "-m", "bench.load", *args, "--token", TOKEN], check=True, capture_output=True)
    return dict(json.loads(out.stdout))


def zendesk_api(port: int, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Call the sandbox's Zendesk API directly (bench set-up, not timed)."""
    request = Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method=method,
                      headers={"Authorization": SANDBOX_AUTH, "Content-Type": "application/json"})  # fmt: skip
    with urlopen(request) as response:
        return dict(json.loads(response.read()))
