"""`bridge doctor` and `bridge lines` with lines on Zendesk schedules: read from the sandbox over real HTTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bridge.cli import _read_schedules, describe_lines
from bridge.devtools.sandbox import SandboxConfig, create_sandbox_app
from bridge.devtools.sandbox.seed import SCHEDULE_ID
from bridge.ops.settings import load_settings
from tests.test_doctor import doctor, line, set_env

SUPPORT, SALES = "+16505550100", "+16505550101"
LINES = f"""
[[line]]
number = "{SUPPORT}"
name = "Support"
after_hours = "message"

[line.hours]
schedule_id = {SCHEDULE_ID}

[[line]]
number = "{SALES}"
name = "Sales"

[line.hours]
schedule_id = 4242
"""
Env = Callable[[str], AbstractAsyncContextManager[dict[str, str]]]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    """Serve a sandbox whose token has `role`; return an environment with the two lines."""

    @asynccontextmanager
    async def serving(role: str) -> AsyncIterator[dict[str, str]]:
        async with TestServer(create_sandbox_app(SandboxConfig(token_role=role)), host="127.0.0.1") as zendesk:
            yield {
                "PUBLIC_URL": "https://bridge.example.com",
                "TWILIO_AUTH_TOKEN": "twilio-token",
                "ZENDESK_URL": str(zendesk.make_url("")).rstrip("/"),
                "ZENDESK_EMAIL": "bridge@example.com",
                "ZENDESK_API_TOKEN": "sandbox-token",
                "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
                "AGENTS": "client:alice=1001",
                "LINES": LINES,
            }

    return serving


async def test_doctor_says_each_schedule_is_read_and_what_an_agents_token_misses(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An agent's token: the schedule's weekly hours apply, not its holidays (said); an unknown schedule fails."""
    async with env("agent") as values:
        set_env(monkeypatch, values)
        code, out = await doctor(capsys)
    assert code == 1, out
    assert line(out, f"schedule {SCHEDULE_ID}").startswith(
        f"PASS  schedule {SCHEDULE_ID}  North America, America/Chicago, for Support: its weekly hours apply, its "
        "holidays do not: Zendesk shows them to admins only (an admin's API token would read them);"
    )
    assert line(out, "schedule 4242") == (
        "FAIL  schedule 4242  cannot be read (GET /api/v2/business_hours/schedules/4242.json: HTTP 404): Sales "
        "would stay open at all hours fix: use the id in the schedule's URL (Admin Center > Objects and rules > "
        "Business rules > Schedules), and a token of an agent or admin who may see it"
    )


async def test_doctor_with_an_admins_token_reads_the_holidays_too(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An admin's token reads the schedule's holidays: the check counts the days they close from today on."""
    async with env("admin") as values:
        set_env(monkeypatch, values)
        _, out = await doctor(capsys)
    said = line(out, f"schedule {SCHEDULE_ID}")
    assert re.match(
        rf"PASS  schedule {SCHEDULE_ID}  North America, America/Chicago, for Support: \d+ holiday days", said
    )


async def test_bridge_lines_shows_schedule_lines_open_or_closed(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bridge lines` reads the schedules as the bridge does: Saturday is closed; an unknown one is open? and why."""
    async with env("admin") as values:
        set_env(monkeypatch, values)
        settings = load_settings()
        saturday = datetime(2026, 9, 19, 15, 0, tzinfo=UTC)
        schedules, problems = await _read_schedules(settings, saturday)
    text = "\n".join(describe_lines(settings, saturday, schedules, problems))
    assert f"Support  {SUPPORT}  closed: Zendesk schedule {SCHEDULE_ID}: sat 10:00 America/Chicago" in text
    assert f"Sales  {SALES}  open?: Zendesk schedule 4242: not read, so treated as open" in text
    assert "  Zendesk schedule 4242: GET /api/v2/business_hours/schedules/4242.json: HTTP 404" in text
    assert "  after hours: message" in text
    monday = datetime(2026, 9, 21, 15, 0, tzinfo=UTC)
    assert f"Support  {SUPPORT}  open: Zendesk schedule {SCHEDULE_ID}: mon 10:00" in "\n".join(
        describe_lines(settings, monday, schedules, problems)
    )
