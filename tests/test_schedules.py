"""Lines on a Zendesk schedule: the bridge reads it from the sandbox over real HTTP, as the token's role allows.

An agent's token may show a schedule but not list its holidays (Zendesk docs, Schedules): the weekly hours
apply, the holidays do not, and the log says so once. An admin's token reads both. A schedule that cannot be
read leaves its lines open; one read before stays in use.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import date
from typing import Any

import pytest

from bridge.appkeys import SCHEDULES
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge, calls_mode
from bridge.devtools.queue_demo import ALICE, DANA, TEAM, finished, twilio
from bridge.devtools.sandbox import FaultRule
from bridge.devtools.sandbox.seed import SCHEDULE_ID
from bridge.devtools.waiting import wait_until
from bridge.zendesk.schedules import ScheduleReader
from tests import hours_flows as flows
from tests.conftest import BridgeFactory, call_outcome, call_records

Rig = Callable[..., AbstractAsyncContextManager[LocalBridge]]
ON_SCHEDULE = flows.support("voicemail", f"schedule_id = {SCHEDULE_ID}")


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture the bridge's log."""
    caplog.set_level(logging.INFO, logger="bridge")
    return caplog


@pytest.fixture
def rig(make_bridge: BridgeFactory) -> Rig:
    """Run a bridge whose Support line is on the sandbox's schedule, the token of `role`, from `start`."""

    @asynccontextmanager
    async def running(role: str, start: Any = flows.CHRISTMAS, lines: str = ON_SCHEDULE) -> AsyncIterator[LocalBridge]:
        options = {"lines": lines, "agents": dict(TEAM), **calls_mode(token_role=role)}
        async with make_bridge(stand_in=True, virtual_time=True, stand_in_start=start, **options) as bridge:
            await wait_until(lambda: reader(bridge).rounds >= 1, what="the schedules read")
            yield bridge

    return running


def reader(bridge: LocalBridge) -> ScheduleReader:
    """Return the bridge's schedule reader."""
    found = bridge.app[SCHEDULES]
    assert isinstance(found, ScheduleReader)
    return found


def warnings(log: pytest.LogCaptureFixture) -> list[str]:
    """Return the warnings logged about schedules."""
    return [r.getMessage() for r in log.records if r.levelno == logging.WARNING and "schedule" in r.getMessage()]


async def test_with_an_admins_token_the_schedules_holiday_closes_the_line(
    rig: Rig, log: pytest.LogCaptureFixture
) -> None:
    """Christmas, a Friday at 10:00 in Chicago: the schedule's holiday closes Support, so voicemail after hours."""
    async with rig("admin") as bridge:
        hours = reader(bridge).schedules[SCHEDULE_ID]
        assert (hours.timezone, date(2026, 12, 25) in hours.holidays) == ("America/Chicago", True)
        (call,) = await flows.holiday(bridge)
        assert twilio(bridge).legs(call) == []
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert (ticket["via_id"], ticket["tags"]) == (44, ["after_hours"])
    (record,) = call_records(snapshot, call.sid)
    assert record["outside_business_hours"] is True
    assert warnings(log) == []


async def test_with_an_agents_token_the_weekly_hours_apply_without_the_holidays(
    rig: Rig, log: pytest.LogCaptureFixture
) -> None:
    """Zendesk refuses the holidays to an agent: Christmas counts as a plain Friday, open; the log says why, once."""
    async with rig("agent") as bridge:
        assert reader(bridge).schedules[SCHEDULE_ID].holidays == frozenset()
        await reader(bridge).refresh()  # a second read: the same problem, not said again
        fake = twilio(bridge)
        call = await fake.incoming(DANA, DEMO_NUMBER)
        leg = await fake.ringing(ALICE)
        await fake.answer(leg)
        await fake.advance(10)
        await fake.hang_up(leg)
        await finished(bridge, call)
        snapshot = bridge.sandbox.snapshot()
    (record,) = call_records(snapshot, call.sid)
    assert (record["outside_business_hours"], record["agent_id"]) == (None, 1001)
    (said,) = warnings(log)
    assert said == (
        f"zendesk schedule {SCHEDULE_ID}: Zendesk refused its holidays (HTTP 403): List Holidays for Schedule is "
        "allowed for admins only: give the bridge an admin's API token for the schedule's holidays to close its "
        "lines; its weekly hours apply without them"
    )


async def test_the_weekly_hours_of_the_schedule_close_the_line_on_saturday(rig: Rig) -> None:
    """Saturday 10:00 in Chicago is outside the schedule's Monday-to-Friday hours, whatever the token."""
    async with rig("agent", start=flows.SATURDAY) as bridge:
        (call,) = await flows.voicemail(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["via_id"] == 44
    assert ticket["subject"].startswith("Voicemail after hours")


async def test_a_schedule_that_cannot_be_read_leaves_the_line_open(rig: Rig, log: pytest.LogCaptureFixture) -> None:
    """An unknown schedule id (404): nothing to go by, so Support stays open and alice rings; one warning."""
    async with rig("admin", start=flows.SATURDAY, lines=flows.support("message", "schedule_id = 4242")) as bridge:
        assert reader(bridge).schedules == {}
        fake = twilio(bridge)
        call = await fake.incoming(DANA, DEMO_NUMBER)
        await fake.ringing(ALICE)
        await fake.hang_up(call)
        await finished(bridge, call)
    (said,) = warnings(log)
    assert said.startswith("zendesk schedule 4242: could not be read (GET /api/v2/business_hours/schedules/4242")
    assert said.endswith("HTTP 404); its lines count as open")


async def test_the_last_good_copy_stays_in_use_while_zendesk_fails(rig: Rig, log: pytest.LogCaptureFixture) -> None:
    """Read once, then Zendesk answers 503: the copy read before still decides; the failure is said once."""
    async with rig("admin") as bridge:
        before = reader(bridge).schedules[SCHEDULE_ID]
        bridge.sandbox.add_faults([FaultRule("GET", "/api/v2/business_hours", "503", times=20)])
        await reader(bridge).refresh()
        assert reader(bridge).schedules[SCHEDULE_ID] is before
        bridge.sandbox.clear_faults()
        await reader(bridge).refresh()
        assert SCHEDULE_ID not in reader(bridge).problems
    (said,) = warnings(log)
    assert "HTTP 503); its last good copy stays in use" in said
    assert any("read again, holidays and all" in record.getMessage() for record in log.records)
