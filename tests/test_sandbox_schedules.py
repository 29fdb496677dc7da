"""The sandbox's schedules: shown to agents, listed and their holidays to admins only, as Zendesk does."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pytest_aiohttp.plugin import AiohttpClient

from bridge.devtools.sandbox import SandboxConfig, create_sandbox_app
from bridge.devtools.sandbox.errors import FORBIDDEN
from bridge.devtools.sandbox.seed import SCHEDULE_ID
from tests.sandbox_kit import Client, call, sandbox_of

SHOW = f"/api/v2/business_hours/schedules/{SCHEDULE_ID}.json"
HOLIDAYS = f"/api/v2/business_hours/schedules/{SCHEDULE_ID}/holidays.json"


async def sandbox_client(aiohttp_client: AiohttpClient, **config: Any) -> Client:
    """Return a test client of a sandbox made with these settings."""
    return await aiohttp_client(create_sandbox_app(SandboxConfig(**config)))


@pytest.mark.parametrize("role", ["agent", "admin"])
async def test_agents_and_admins_may_show_a_schedule(aiohttp_client: AiohttpClient, role: str) -> None:
    """Schedules, "Show Schedule": allowed for agents; a Zendesk time zone name and intervals from Sunday midnight."""
    client = await sandbox_client(aiohttp_client, token_role=role)
    status, body, _ = await call(client, "GET", SHOW)
    assert status == 200
    schedule = body["schedule"]
    assert (schedule["id"], schedule["name"], schedule["time_zone"]) == (
        SCHEDULE_ID,
        "North America",
        "Central Time (US & Canada)",
    )
    assert schedule["intervals"][0] == {"start_time": 1980, "end_time": 2460}  # Monday 9:00 to 17:00
    assert set(schedule) == {"id", "name", "time_zone", "intervals", "created_at", "updated_at"}


async def test_only_admins_may_list_schedules_and_a_schedules_holidays(aiohttp_client: AiohttpClient) -> None:
    """Schedules, "List Schedules" and "List Holidays for Schedule": allowed for admins; an agent gets 403."""
    agent = await sandbox_client(aiohttp_client)
    for path in ("/api/v2/business_hours/schedules.json", HOLIDAYS):
        status, body, _ = await call(agent, "GET", path)
        assert (status, body) == (403, FORBIDDEN)
    admin = await sandbox_client(aiohttp_client, token_role="admin")
    status, body, _ = await call(admin, "GET", "/api/v2/business_hours/schedules")
    assert (status, [schedule["id"] for schedule in body["schedules"]]) == (200, [SCHEDULE_ID])
    status, body, _ = await call(admin, "GET", HOLIDAYS)
    assert status == 200
    assert body["holidays"][0] == {
        "id": 8001,
        "name": "Christmas",
        "start_date": "2026-12-25",
        "end_date": "2026-12-25",
    }


async def test_holidays_filter_by_start_date_keeping_one_in_progress(aiohttp_client: AiohttpClient) -> None:
    """start_date: holidays beginning on or after it, and one it falls in; end_date: beginning on or before it."""
    admin = await sandbox_client(aiohttp_client, token_role="admin")
    sandbox_of(admin).add_holiday(SCHEDULE_ID, "Summer", date(2026, 7, 1), date(2026, 7, 14))
    status, body, _ = await call(admin, "GET", HOLIDAYS, params={"start_date": "2026-07-10"})
    assert (status, [holiday["name"] for holiday in body["holidays"]]) == (200, ["Christmas", "New Year", "Summer"])
    status, body, _ = await call(admin, "GET", HOLIDAYS, params={"start_date": "2026-07-15"})
    assert [holiday["name"] for holiday in body["holidays"]] == ["Christmas", "New Year"]
    status, body, _ = await call(admin, "GET", HOLIDAYS, params={"start_date": "2026-07-01", "end_date": "2026-12-30"})
    assert [holiday["name"] for holiday in body["holidays"]] == ["Christmas", "Summer"]
    status, body, _ = await call(admin, "GET", HOLIDAYS, params={"start_date": "soon"})
    assert status == 400


async def test_an_unknown_schedule_is_not_found_and_an_end_user_may_see_none(aiohttp_client: AiohttpClient) -> None:
    """404 RecordNotFound for a schedule the account has not; 403 to a token that is not staff's."""
    admin = await sandbox_client(aiohttp_client, token_role="admin")
    for path in ("/api/v2/business_hours/schedules/1.json", "/api/v2/business_hours/schedules/1/holidays"):
        status, body, _ = await call(admin, "GET", path)
        assert (status, body["error"]) == (404, "RecordNotFound")
    end_user = await sandbox_client(aiohttp_client, token_role="end-user")
    status, body, _ = await call(end_user, "GET", SHOW)
    assert (status, body) == (403, FORBIDDEN)
