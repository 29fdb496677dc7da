"""Operations: /metrics moves as a call goes through; logs carry the CallSid and never a number or token."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from bridge.appkeys import DESK
from bridge.devtools.capture import Capture
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge
from bridge.devtools.sandbox import SandboxConfig
from bridge.devtools.waiting import wait_until
from bridge.ops.logs import JsonFormatter
from bridge.resources import AVAILABILITY
from tests.conftest import BridgeFactory, call_outcome, parent_sid, recording, voice_comments
from webhooks.names import Route, route_path, route_url

STATUSES = ("available", "away", "offline", "ringing", "on_call", "wrap_up")


async def scrape(bridge: LocalBridge) -> dict[str, float]:
    """Read /metrics into {'name{labels}': value}."""
    async with aiohttp.ClientSession() as session, session.get(bridge.url + "/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


async def test_metrics_move_as_a_call_goes_through(bridge: LocalBridge) -> None:
    """Webhooks by route and outcome, actions by kind and outcome, Zendesk statuses, latency, outbox depth."""
    before = await scrape(bridge)
    assert before["bridge_outbox_pending"] == 0
    path = recording("inbound_answered")
    assert (await bridge.replay([path], repeat=2)).ok
    await bridge.settle()
    after = await scrape(bridge)
    assert after['bridge_webhooks_total{outcome="accepted",route="status"}'] == 5
    assert after['bridge_webhooks_total{outcome="duplicate",route="status"}'] == 5
    assert after['bridge_webhooks_total{outcome="accepted",route="incoming"}'] == 1
    assert after['bridge_actions_total{kind="create_ticket",outcome="delivered"}'] == 1
    assert after['bridge_actions_total{kind="add_voice_comment",outcome="delivered"}'] == 1
    assert after['bridge_zendesk_responses_total{status="201"}'] == 1
    assert after['bridge_delivery_seconds_count{kind="create_ticket"}'] == 1
    assert after["bridge_outbox_pending"] == 0
    async with aiohttp.ClientSession() as session:
        await session.post(route_url(bridge.url, Route.STATUS), data={"CallSid": "CA1"})
    rejected = await scrape(bridge)
    assert rejected['bridge_webhooks_total{outcome="rejected_403",route="status"}'] == 1


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_logs_of_a_call_carry_its_sid_and_no_number_or_token(
    make_bridge: BridgeFactory, caplog: pytest.LogCaptureFixture, fmt: str
) -> None:
    """Every line about a replayed call names its CallSid; no full phone number or token ever appears."""
    caplog.set_level(logging.INFO, logger="bridge")
    async with make_bridge() as bridge:
        path = recording("inbound_unmapped_agent")
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        token = bridge.auth_token
    formatter = JsonFormatter() if fmt == "json" else logging.Formatter("%(message)s")
    lines = [formatter.format(record) for record in caplog.records if record.name.startswith("bridge")]
    assert lines
    sid = parent_sid(path)
    for line in lines:
        assert sid in line, line
        if fmt == "json":
            assert f'"call_sid": "{sid}"' in line
        assert token not in line
        assert "sandbox-token" not in line
        assert not re.search(r"\+\d{8,}", line), line
    assert any("not in AGENTS" in line for line in lines)
    assert any("is ringing but not in AGENTS: no pop" in line for line in lines)


async def test_capture_then_replay_gives_the_same_outcome(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    """RECORD_DIR captures a call with numbers scrubbed consistently; replaying the capture rebuilds the call."""
    record_dir = tmp_path / "captured"
    source = recording("inbound_phone_agent")
    async with make_bridge(record_dir=str(record_dir)) as bridge:
        assert (await bridge.replay([source])).ok
        await bridge.settle()
        (original,) = call_outcome(bridge.sandbox.snapshot(), parent_sid(source))
    (captured,) = record_dir.glob("CA*.jsonl")
    text = captured.read_text()
    assert "+14155550123" not in text  # the customer's number is gone…
    assert "+16505550111" in text  # …our own agent's number is kept, or the replay could not map the agent
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == len(source.read_text().splitlines())
    fakes = {line["params"]["From"] for line in lines if line["path"] != route_path(Route.RECORDING_STATUS)}
    assert len(fakes) == 1  # the same number became the same fake everywhere
    assert [line["at"] for line in lines] == sorted(line["at"] for line in lines)
    async with make_bridge() as replayed:
        assert (await replayed.replay([captured])).ok
        await replayed.settle()
        (again,) = call_outcome(replayed.sandbox.snapshot(), parent_sid(source))
    assert again["via_id"] == original["via_id"] == 45
    assert again["assignee_id"] == original["assignee_id"] == 1003
    assert voice_comments(again)[0]["call_duration"] == voice_comments(original)[0]["call_duration"]
    # Two bridges, two signing secrets: the links differ, the recording they name does not.
    assert (
        urlsplit(voice_comments(again)[0]["recording_url"]).path
        == urlsplit(voice_comments(original)[0]["recording_url"]).path
    )
    assert voice_comments(again)[0]["from"] == fakes.pop()


def test_capture_keeps_withheld_numbers_anonymous(tmp_path: Path) -> None:
    """Twilio's stand-ins for withheld numbers are not turned into numbers a replay would look up."""
    capture = Capture(tmp_path, keep=["+16505550111"])
    assert capture.fake("+266696687") == "+266696687"
    assert capture.fake("+16505550111") == "+16505550111"
    fake = capture.fake("+14155550123")
    assert fake.startswith("+1555")
    assert capture.fake("+14155550123") == fake
    assert Capture(tmp_path).fake("+14155550123") == fake  # the key persists in the directory


async def test_metrics_show_agents_by_status_the_queue_and_how_fast_a_caller_is_moved(
    make_bridge: BridgeFactory,
) -> None:
    """Agents on a call, away, offline in Zendesk, ringing; a caller waiting, then moved to the agent who frees up."""
    async with make_bridge(
        stand_in=True, screen_phone_agents=False, sandbox_config=SandboxConfig(token_role="admin"),
        zendesk_availability_seconds=600,  # read once at start; the test reads again when it wants
    ) as bridge:  # fmt: skip
        fake, desk = bridge.stand_in, bridge.app[DESK]
        assert fake is not None
        assert bridge.settings.queueing
        first = await fake.incoming("+14155550123", DEMO_NUMBER)
        await fake.answer(await fake.ringing("+16505550111"))  # carol takes the first call
        await desk.choose("client:alice", "away", by="test")
        bridge.sandbox.set_agent_status(1002, "offline")  # bob: offline in Zendesk, available by his own choice
        await bridge.app[AVAILABILITY].round()
        second = await fake.incoming("+14155550124", DEMO_NUMBER)  # nobody may take it: it waits

        async def waiting() -> bool:
            return bool(await desk.waiting())

        await wait_until(waiting, within=10, what="the second caller waiting")
        seen = await scrape(bridge)
        assert {status: seen[f'bridge_agents{{status="{status}"}}'] for status in STATUSES} == {
            "available": 0, "away": 1, "offline": 1, "ringing": 0, "on_call": 1, "wrap_up": 0,
        }  # fmt: skip
        assert seen['bridge_queue_waiting{line="default"}'] == 1
        assert seen['bridge_queue_longest_wait_seconds{line="default"}'] > 0
        assert seen["bridge_offer_move_seconds_count"] == 0
        await desk.choose("client:alice", "available", by="test")  # the caller is moved to her at once
        leg = await fake.ringing("client:alice")
        moved = await scrape(bridge)
        assert moved["bridge_offer_move_seconds_count"] == 1
        assert moved["bridge_offer_move_seconds_sum"] >= 0
        assert moved['bridge_agents{status="ringing"}'] == 1
        await fake.answer(leg)

        async def alice_on_call() -> bool:
            return (await desk.agent("client:alice")).busy == "on_call"

        await wait_until(alice_on_call, within=10, what="alice on the call")
        answered = await scrape(bridge)
        assert answered['bridge_agents{status="on_call"}'] == 2
        assert answered['bridge_queue_waiting{line="default"}'] == 0
        assert answered['bridge_queue_longest_wait_seconds{line="default"}'] == 0
        for call in (first, second):
            await fake.hang_up(call)
