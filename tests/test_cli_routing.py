"""`bridge agents` and `bridge queue`: presence and the line, read and set on the database the settings name."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.devtools.demo import DEMO_NUMBER
from bridge.devtools.queue_demo import ALICE, BOB, DANA, TEAM, choose, queued, twilio
from tests.conftest import BridgeFactory


def configure(monkeypatch: pytest.MonkeyPatch, database: Path) -> None:
    """Point the command line at one SQLite database with alice and bob as agents."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("AGENTS", "client:alice=1001,client:bob=1002")


def test_agents_set_by_identity_or_zendesk_id_and_listed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Set alice away by identity and bob offline by Zendesk id; the list shows both; strangers are refused."""
    configure(monkeypatch, tmp_path / "bridge.db")
    assert main(["agents", "set", "client:alice", "away"]) == 0
    assert main(["agents", "set", "1002", "offline"]) == 0
    out = capsys.readouterr().out
    assert "client:alice is away" in out
    assert "client:bob is offline" in out
    assert main(["agents"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0] == "2 agents (ring_all); calls today are UTC days"
    (alice,) = [line for line in listing if line.startswith("client:alice")]
    assert alice.split()[1:3] == ["1001", "away"]
    assert "calls today 0" in alice
    assert main(["agents", "set", "client:carol", "away"]) == 2
    assert "'client:carol' is not in AGENTS" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["agents", "set", "client:alice", "asleep"])  # argparse names the three statuses


async def test_queue_lists_who_waits_masked_with_place_and_wait(
    make_bridge: BridgeFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A caller waiting in a running bridge shows in `bridge queue`: place, masked number, line, wait."""
    database = tmp_path / "queue.db"
    async with make_bridge(
        stand_in=True, virtual_time=True, agents=dict(TEAM), database_url=f"sqlite:///{database}"
    ) as bridge:
        await choose(bridge, "away", ALICE, BOB)
        call = await twilio(bridge).incoming(DANA, DEMO_NUMBER)
        await queued(bridge, call)
        configure(monkeypatch, database)
        assert await asyncio.to_thread(main, ["queue"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "1 waiting, 0 callbacks (the queue is off: bridge doctor says why)"  # no Twilio account here
    assert out[1].startswith("  1. …0123")
    assert f"call {call.sid}" in out[1]
    assert DANA not in "\n".join(out)  # numbers are masked to their last four digits
