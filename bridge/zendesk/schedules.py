"""Zendesk schedules, read for the lines whose hours are one (`[line.hours] schedule_id`, docs/lines.md).

Zendesk docs, Schedules: "Show Schedule" (`GET /api/v2/business_hours/schedules/{schedule_id}`) is allowed
for agents and gives the schedule's `time_zone` (a Zendesk name, bridge.zendesk.time_zones) and `intervals`
(minutes since Sunday midnight); "List Holidays for Schedule" (`GET .../{schedule_id}/holidays`) is allowed
for admins only. So with an agent's token (the least the bridge needs) a schedule's weekly hours apply and its
holidays do not; an admin's token reads both.

The reader reads every schedule at start-up and every REFRESH seconds, on the app's one Zendesk client (its
rate limiter, at background priority), and keeps the last good copy of each. A schedule it has never read
leaves its lines open (bridge.core.hours): callers reach agents rather than a guess. Each problem is said
once, as a WARNING, until it changes or goes away.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from bridge.core.clock import Clock, system_clock
from bridge.core.hours import holiday_dates, week_of_intervals
from bridge.core.lines import Hours, Lines
from bridge.ops.repeating import Repeating
from bridge.zendesk.client import AuthFailed, ZendeskClient, ZendeskError
from bridge.zendesk.time_zones import iana_name

log = logging.getLogger("bridge.zendesk")

REFRESH = 600.0  # seconds between two reads of the schedules: an admin's change shows within ten minutes
HOLIDAYS_NEED = (
    "List Holidays for Schedule is allowed for admins only: give the bridge an admin's API token for the "
    "schedule's holidays to close its lines"
)


class ScheduleUnusable(ValueError):
    """Zendesk answered, but with a schedule the bridge cannot evaluate (a time zone it does not know)."""


@dataclass(frozen=True)
class ScheduleRead:
    """One schedule as read: its hours, its name, and why its holidays are left out (None: they are in)."""

    hours: Hours
    name: str
    holidays_missing: str | None = None


def schedule_ids(lines: Lines) -> tuple[int, ...]:
    """Return the ids of the Zendesk schedules the lines' hours name, each once, in the lines' order."""
    ids = (line.hours.schedule_id for line in lines.all if line.hours is not None)
    return tuple(dict.fromkeys(schedule_id for schedule_id in ids if schedule_id is not None))


async def read_schedule(zendesk: ZendeskClient, schedule_id: int, today: date) -> ScheduleRead:
    """Read one schedule and its holidays from `today` (the day before: any zone's today) on.

    Raises ZendeskError when the schedule cannot be read, ScheduleUnusable when its time zone is unknown.
    """
    schedule = await zendesk.schedule(schedule_id)
    zone_name = str(schedule.get("time_zone") or "")
    zone = iana_name(zone_name)
    if zone is None:
        raise ScheduleUnusable(f"its time zone {zone_name!r} is not one the bridge knows")
    missing = None
    holidays: frozenset[date] = frozenset()
    try:
        listed = await zendesk.schedule_holidays(schedule_id, (today - timedelta(days=1)).isoformat())
        holidays = holiday_dates(_holiday_ranges(listed))
    except AuthFailed as exc:
        missing = f"Zendesk refused its holidays (HTTP {exc.status}): {HOLIDAYS_NEED}"
    week = week_of_intervals(_intervals(schedule.get("intervals")))
    hours = Hours(timezone=zone, zone=ZoneInfo(zone), week=week, holidays=holidays)
    return ScheduleRead(hours, str(schedule.get("name") or schedule_id), missing)


def _intervals(raw: Any) -> list[tuple[int, int]]:
    """Return the intervals Zendesk listed, each (start_time, end_time); anything else is left out."""
    out = []
    for item in raw if isinstance(raw, list) else ():
        start, end = (item.get("start_time"), item.get("end_time")) if isinstance(item, dict) else (None, None)
        if isinstance(start, int) and isinstance(end, int) and start < end:
            out.append((start, end))
    return out


def _holiday_ranges(listed: Iterable[Mapping[str, Any]]) -> list[tuple[date, date]]:
    """Return each holiday's first and last day (ISO 8601 dates); a malformed one is left out."""
    out = []
    for holiday in listed:
        try:
            start = date.fromisoformat(str(holiday.get("start_date")))
            end = date.fromisoformat(str(holiday.get("end_date") or holiday.get("start_date")))
        except ValueError:
            continue
        out.append((start, max(start, end)))
    return out


async def read_schedules(
    zendesk: ZendeskClient, ids: Iterable[int], today: date
) -> tuple[dict[int, ScheduleRead], dict[int, str]]:
    """Read each schedule; return those read, and why each other could not be."""
    read: dict[int, ScheduleRead] = {}
    failed: dict[int, str] = {}
    for schedule_id in ids:
        try:
            read[schedule_id] = await read_schedule(zendesk, schedule_id, today)
        except (ZendeskError, ScheduleUnusable) as exc:
            failed[schedule_id] = str(exc)
    return read, failed


class ScheduleReader(Repeating):
    """Keep the last good copy of each schedule the lines name, read at start and every `interval` seconds."""

    def __init__(
        self, zendesk: ZendeskClient, ids: Iterable[int], *, interval: float = REFRESH, clock: Clock = system_clock
    ) -> None:
        """Bind the app's Zendesk client and the schedules to read."""
        super().__init__("zendesk schedules", interval)
        self._zendesk = zendesk
        self._ids = tuple(ids)
        self._clock = clock
        self._read: dict[int, Hours] = {}
        self.problems: dict[int, str] = {}  # why a schedule is not (wholly) applied now, said once each
        self.rounds = 0  # completed reads of every schedule (tests wait on it)

    @property
    def schedules(self) -> Mapping[int, Hours]:
        """Return each schedule as last read, by id (one never read is absent)."""
        return MappingProxyType(self._read)

    async def round(self) -> float:
        """Read every schedule once; return the seconds until the next read."""
        await self.refresh()
        return self.interval

    async def refresh(self) -> None:
        """Read every schedule once; keep the last good copy of one that cannot be read now."""
        done, failed = await read_schedules(self._zendesk, self._ids, self._clock().date())
        for schedule_id, why in failed.items():
            kept = "its last good copy stays in use" if schedule_id in self._read else "its lines count as open"
            self._say(schedule_id, f"could not be read ({why}); {kept}")
        for schedule_id, read in done.items():
            self._read[schedule_id] = read.hours
            if read.holidays_missing is not None:
                self._say(schedule_id, f"{read.holidays_missing}; its weekly hours apply without them")
            elif self.problems.pop(schedule_id, None) is not None:
                log.info("zendesk schedule %d (%s): read again, holidays and all", schedule_id, read.name)
        self.rounds += 1

    def _say(self, schedule_id: int, problem: str) -> None:
        """Warn of a schedule's problem once, until it changes or goes away."""
        if self.problems.get(schedule_id) != problem:
            log.warning("zendesk schedule %d: %s", schedule_id, problem)
        self.problems[schedule_id] = problem
