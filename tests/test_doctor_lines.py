"""`bridge doctor` with lines: each number at Twilio (its stand-in), each group and brand in the sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bridge.devtools.fake_twilio import TwilioStandIn
from bridge.devtools.fake_twilio.standin import serve_stand_in
from bridge.devtools.sandbox import create_sandbox_app
from tests.test_doctor import doctor, line, set_env
from webhooks.names import Route, route_url

PUBLIC_URL = "https://bridge.example.com"
TOKEN = "twilio-token"
SUPPORT, SALES, OTHER = "+16505550100", "+16505550101", "+16505550102"
LINES = f"""
[[line]]
number = "{SUPPORT}"
name = "Support"
group_id = 5001
brand_id = 6001

[[line]]
number = "{SALES}"
name = "Sales"
group_id = 5002
brand_id = 1

[[line]]
number = "{OTHER}"
name = "Other"
agents = []
"""


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioStandIn]:
    """Twilio's stand-in, its REST API served: Support calls this bridge, Sales an old URL, Other is not owned."""
    async with serve_stand_in(TOKEN) as fake:
        fake.own(SUPPORT, route_url(PUBLIC_URL, Route.INCOMING), status_callback=route_url(PUBLIC_URL, Route.STATUS))
        fake.own(SALES, "https://old.example.com/voice")
        yield fake


@pytest.fixture
async def env(twilio: TwilioStandIn, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """A sandbox Zendesk; return an environment with the three lines."""
    async with TestServer(create_sandbox_app(), host="127.0.0.1") as zendesk:
        yield {
            "PUBLIC_URL": PUBLIC_URL,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_ACCOUNT_SID": twilio.account.sid,
            "TWILIO_API_URL": twilio.url,
            "ZENDESK_URL": str(zendesk.make_url("")).rstrip("/"),
            "ZENDESK_EMAIL": "bridge@example.com",
            "ZENDESK_API_TOKEN": "sandbox-token",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
            "AGENTS": "client:alice=1001,client:bob=1002",
            "CALLER_ID": SUPPORT,
            "LINES": LINES,
        }


async def test_doctor_checks_each_lines_number_group_brand_and_agents(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A number of the account calling this bridge passes; another URL, a number not the account's, an
    unknown brand and a line without agents each fail with their fix."""
    set_env(monkeypatch, env)
    code, out = await doctor(capsys)
    assert code == 1, out
    assert line(out, "Twilio credentials") == "PASS  Twilio credentials  account Twilio stand-in"
    assert line(out, "lines").startswith(
        "PASS  lines  3 from LINES: Support (+16505550100), Sales (+16505550101), Other (+16505550102)"
    )
    assert line(out, "line Support number") == (
        "PASS  line Support number  +16505550100 is the account's and its calls come to this bridge"
    )
    incoming = route_url(PUBLIC_URL, Route.INCOMING)
    assert line(out, "line Sales number") == (
        "FAIL  line Sales number  +16505550101's calls go to https://old.example.com/voice (POST), not to this "
        f"bridge fix: Twilio console > Phone Numbers > +16505550101 > Voice: A call comes in: Webhook {incoming}, "
        "HTTP POST"
    )
    assert line(out, "line Other number").startswith(
        "FAIL  line Other number  +16505550102 is not a number of this Twilio account"
    )
    assert line(out, "line Other agents").startswith("FAIL  line Other agents  none:")
    assert line(out, "line Support group_id") == "PASS  line Support group_id  Support (5001)"
    assert line(out, "line Support brand_id") == "PASS  line Support brand_id  Acme (6001)"
    assert line(out, "line Sales group_id") == "PASS  line Sales group_id  Phones (5002)"
    assert line(out, "line Sales brand_id").startswith("FAIL  line Sales brand_id  1:")


async def test_a_good_set_of_lines_passes(
    env: dict[str, str], twilio: TwilioStandIn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every number the account's and calling this bridge, every group and brand known: the doctor passes."""
    twilio.own(SALES, route_url(PUBLIC_URL, Route.INCOMING))
    twilio.own(OTHER, route_url(PUBLIC_URL, Route.INCOMING))
    good = LINES.replace("brand_id = 1\n", "brand_id = 6002\n").replace("agents = []", 'agents = ["client:bob"]')
    set_env(monkeypatch, {**env, "LINES": good})
    code, out = await doctor(capsys)
    assert code == 0, out
    assert "(Call status changes is not" in line(out, "line Sales number")  # optional: said, not failed
