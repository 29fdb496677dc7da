"""Schedules: business hours and holidays, as the Business Hours API shows them to each role.

Zendesk docs, Schedules: "Show Schedule" (`GET /api/v2/business_hours/schedules/{schedule_id}`) is allowed for
agents; "List Schedules" and "List Holidays for Schedule" (`GET .../schedules/{schedule_id}/holidays`) for
admins only. A schedule is `id`, `name`, `time_zone` (a Zendesk time zone name, like "Pacific Time (US &
Canada)"), `intervals` (`start_time` and `end_time` in minutes since Sunday midnight) and timestamps; a
holiday is `id`, `name`, `start_date`, `end_date` (ISO 8601 dates). The holidays' `start_date` filter returns
those beginning on or after it, and one in progress on it; `end_date`, those beginning on or before it.
"""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from bridge.devtools.sandbox.errors import SandboxError, forbidden, not_found
from bridge.devtools.sandbox.seed import INTEGRATION_USER_ID, SEED_TIMESTAMP
from bridge.devtools.sandbox.state import State

STAFF = frozenset({"agent", "admin"})


class Schedules:
    """Show the account's schedules and their holidays to the token's user, as its role allows."""

    def __init__(self, state: State) -> None:
        self._state = state
        self._ids = itertools.count(9001)

    def show(self, schedule_id: int) -> dict[str, Any]:
        """Return a schedule (403 to an end-user, 404 for one the account has not)."""
        if self._role() not in STAFF:
            raise forbidden()
        return dict(self._schedule(schedule_id))

    def every(self) -> list[dict[str, Any]]:
        """Return every schedule (admins only)."""
        self._admin_only()
        return [dict(self._state.schedules[key]) for key in sorted(self._state.schedules)]

    def holidays(self, schedule_id: int, start: str | None, end: str | None) -> list[dict[str, Any]]:
        """Return a schedule's holidays, filtered by the dates as Zendesk filters them (admins only)."""
        self._admin_only()
        self._schedule(schedule_id)
        since, until = _date(start, "start_date"), _date(end, "end_date")
        out = []
        for holiday in self._state.holidays.get(schedule_id, []):
            begins, ends = date.fromisoformat(holiday["start_date"]), date.fromisoformat(holiday["end_date"])
            if since is not None and begins < since and ends < since:
                continue  # over before the start date (one in progress on it is included)
            if until is not None and begins > until:
                continue
            out.append(dict(holiday))
        return out

    def put(self, schedule_id: int, name: str, time_zone: str, intervals: list[tuple[int, int]]) -> None:
        """Create or replace a schedule (as an admin would in Admin Center)."""
        self._state.schedules[schedule_id] = {
            "id": schedule_id,
            "name": name,
            "time_zone": time_zone,
            "intervals": [{"start_time": start, "end_time": end} for start, end in intervals],
            "created_at": SEED_TIMESTAMP,
            "updated_at": SEED_TIMESTAMP,
        }

    def add_holiday(self, schedule_id: int, name: str, start: date, end: date) -> None:
        """Add a holiday to a schedule (as an admin would)."""
        holiday = {"id": next(self._ids), "name": name, "start_date": start.isoformat(), "end_date": end.isoformat()}
        self._state.holidays.setdefault(schedule_id, []).append(holiday)

    def _schedule(self, schedule_id: int) -> dict[str, Any]:
        schedule = self._state.schedules.get(schedule_id)
        if schedule is None:
            raise not_found()
        return schedule

    def _role(self) -> str:
        return str(self._state.users[INTEGRATION_USER_ID]["role"])

    def _admin_only(self) -> None:
        if self._role() != "admin":
            raise forbidden()


def _date(raw: str | None, name: str) -> date | None:
    """Read a date filter ("Must be in ISO 8601 date format"); a malformed one is 400, as Zendesk refuses it."""
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise SandboxError(400, {"error": "InvalidParameter", "description": f"{name} must be a date"}) from None
