"""Shared fixtures: a real bridge and a real sandbox Zendesk on loopback, and recording helpers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from bridge.demo import LocalBridge, local_bridge
from bridge.outbox import RetryPolicy
from bridge.settings import Settings

RECORDINGS = Path(__file__).parent / "recordings"
FAST_RETRY = RetryPolicy(base=0.01, cap=0.05)


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


async def eventually(predicate: Callable[[], bool], within: float = 30.0) -> None:
    """Wait until `predicate()` holds, polling, or fail after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.02)


BridgeFactory = Callable[..., AbstractAsyncContextManager[LocalBridge]]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the machine's own bridge settings (a developer's PORT, TICKET_ON…) out of every test."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


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
