"""Operations: /metrics moves as a call goes through; logs carry the CallSid and never a number or token."""

from __future__ import annotations

import logging
import re

import aiohttp
import pytest

from bridge.demo import LocalBridge
from bridge.logs import JsonFormatter
from tests.conftest import BridgeFactory, parent_sid, recording


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
        await session.post(bridge.url + "/twilio/voice/status", data={"CallSid": "CA1"})
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
