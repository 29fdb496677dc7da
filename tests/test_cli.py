"""The `bridge` command as a user runs it: real processes, real ports, the sandbox as Zendesk."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bridge.cli import main
from bridge.devtools.sandbox import SANDBOX, create_sandbox_app
from bridge.store.schema import MIGRATIONS
from tests.conftest import eventually, free_port, parent_sid, recording, serve_env, start_serve

TOKEN = "cli-test-token"


def test_demo_prints_tickets_and_pops(capsys: pytest.CaptureFixture[str]) -> None:
    """`bridge demo` shows a via 45 ticket with its voice comment and both kinds of screen-pop."""
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "via 45 (inbound call)" in out
    assert "via 44 (voicemail)" in out
    assert "via 46 (outbound call)" in out
    assert "missed_call" in out
    assert "voice comment: +14155550123 -> +16505550100, 95 s" in out
    queue = out.split("The queue, with Twilio played by the stand-in")[1]
    assert "the bridge moves Dana out of the queue to ring her" in queue
    assert "requester Dana Customer (2001), assignee Alice Agent (1001)" in queue
    assert ", 60 s from " in queue  # the voice comment of the call alice answered once she freed up
    lines = out.split("Two lines, with the stand-in again")[1]
    assert "tags: ivr, ivr_2" in lines  # Dana pressed 2 at Support's menu and alice answered
    assert "via 44 (voicemail)  'Voicemail after hours from +14155550199'" in lines  # Sales is closed today
    callback = out.split("A callback, with the stand-in again")[1]
    assert "the bridge calls alice first, Dana's ticket pops" in callback
    assert "'Callback requested by +14155550123'" in callback
    assert "tags: callback_requested" in callback
    assert "voice comment: +16505550100 -> +14155550123, 40 s" in callback  # the conversation, on the request
    assert "transcription:" in out
    assert "Alice Agent (1001): user Dana Customer (2001)" in out
    assert "ticket #1" in out
    played = [line for line in out.splitlines() if "/recordings/RE" in line and " bytes " in line]
    assert len(played) == 3  # the answered inbound, the voicemail and the outbound call
    assert all("HTTP 200, audio/mpeg" in line for line in played), played
    assert "The bridge's token is an agent's (least privilege)" in out  # the strict sandbox, agent token


def test_demo_with_the_calls_api_prints_each_call_record_beside_its_ticket(capsys: pytest.CaptureFixture[str]) -> None:
    """`bridge demo --api calls`: every bundled call has one record, shown on its ticket, and its links play."""
    assert main(["demo", "--api", "calls"]) == 0
    out = capsys.readouterr().out
    assert "ZENDESK_API=calls" in out
    records = [line.strip() for line in out.splitlines() if line.strip().startswith("call record #") and "->" in line]
    assert len(records) == 4
    assert any("inbound +14155550123 -> +16505550100, completed, answered by Alice Agent (1001)" in r for r in records)
    # The missed call: as long as it rang (11 s), or the parent's CallDuration (12 s) if that came first.
    assert any("abandoned_in_queue of 11 s" in r or "abandoned_in_queue of 12 s" in r for r in records)
    assert any("abandoned_in_voicemail" in r and r.endswith("voicemail") for r in records)
    assert out.count("TPE voice comment") == 3  # the voicemail's record is linked: its ticket's own plays it
    assert out.count("linked call record, no comment of its own") == 1
    assert "Call records: 4, of which 0 without a ticket" in out
    assert "voice comment: +14155550123 -> +16505550100, 95 s" not in out  # the record's comment replaces it
    played = [line for line in out.splitlines() if "/recordings/RE" in line and " bytes " in line]
    assert len(played) == 3
    assert all("HTTP 200, audio/mpeg" in line for line in played), played


def test_serve_refuses_to_start_without_auth_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fail closed: no TWILIO_AUTH_TOKEN, no server, and the reason on stderr."""
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("ZENDESK_URL", "http://127.0.0.1:9")
    assert main(["serve"]) == 2
    assert "TWILIO_AUTH_TOKEN is not set" in capsys.readouterr().err


def test_bad_agents_is_a_clear_start_up_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed AGENTS entry is named at start-up."""
    monkeypatch.setenv("AGENTS", "client:alice=1001,bob=12")
    assert main(["serve"]) == 2
    assert "AGENTS entry 'bob=12'" in capsys.readouterr().err


async def test_serve_and_replay_processes(tmp_path: Path) -> None:
    """`bridge serve` + `bridge replay --shuffle --repeat 2` against the sandbox: one ticket, one voice comment."""
    sandbox_app = create_sandbox_app()
    async with TestServer(sandbox_app, host="127.0.0.1") as zendesk:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = serve_env(str(zendesk.make_url("")), tmp_path / "bridge.db", port, TOKEN, AGENTS="client:alice=1001")
        serve = await start_serve(env)
        try:
            path = recording("inbound_answered")
            replay = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bridge",
                "replay",
                str(path),
                "--url",
                url,
                "--auth-token",
                TOKEN,
                "--shuffle",
                "--repeat",
                "2",
                "--seed",
                "3",
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await replay.communicate()
            assert replay.returncode == 0, out
            assert b'"sent": 16' in out
            sandbox = sandbox_app[SANDBOX]
            await eventually(
                lambda: any(c["type"] == "VoiceComment" for t in sandbox.tickets.values() for c in t["comments"])
            )
            tickets = [t for t in sandbox.tickets.values() if t["external_id"] == parent_sid(path)]
            assert len(tickets) == 1
        finally:
            serve.terminate()
            _, err = await serve.communicate()
        assert serve.returncode == 0
        log = err.decode()
        assert "webhook incoming accepted for call CA2f564bde5c5db0df77f46f156be543fc" in log
        assert "+14155550123" not in log  # numbers are masked in logs
        assert TOKEN not in log


def test_outbox_command_lists_and_revives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bridge outbox` shows dead letters with their error and `retry ID` makes one pending again."""
    from bridge.devtools.demo import local_bridge

    database = tmp_path / "bridge.db"

    async def make_dead_letter() -> None:
        async with local_bridge(database, zendesk_brand_id=1) as bridge:  # no such brand: a dead letter
            assert (await bridge.replay([recording("inbound_answered")])).ok
            await bridge.settle()

    asyncio.run(make_dead_letter())
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    assert main(["outbox", "list", "--status", "dead"]) == 0
    out = capsys.readouterr().out
    assert "create_ticket" in out
    assert "RecordInvalid" in out
    action_id = int(next(line for line in out.splitlines() if "create_ticket" in line).split()[0].lstrip("#"))
    assert main(["outbox", "retry", str(action_id)]) == 0
    assert "pending again" in capsys.readouterr().out
    assert main(["outbox", "retry", str(action_id)]) == 1
    assert main(["outbox", "drop", str(action_id)]) == 0
    assert main(["outbox"]) == 0
    assert main(["migrate"]) == 0
    assert f"schema version {len(MIGRATIONS)}" in capsys.readouterr().out
