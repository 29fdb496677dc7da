"""Business hours: each Zendesk schedule a line's hours name exists, and the token may read it and its holidays.

Zendesk docs, Schedules: "Show Schedule" is allowed for agents, "List Holidays for Schedule" for admins only.
The doctor reads each schedule as the bridge will (bridge.zendesk.schedules) and says what its lines will
go by: the schedule's weekly hours and holidays, the weekly hours alone, or nothing (the lines stay open).
"""

from __future__ import annotations

from datetime import datetime

import aiohttp

from bridge.core.hours import opening
from bridge.ops.connections import authorization
from bridge.ops.doctor.check import Check
from bridge.ops.settings import Settings
from bridge.zendesk.client import ZendeskClient
from bridge.zendesk.schedules import read_schedules, schedule_ids


async def schedule_checks(settings: Settings, now: datetime) -> list[Check]:
    """Read each schedule the lines name, and say whether its lines can go by it."""
    ids = schedule_ids(settings.phone_lines)
    if not ids or settings.zendesk_base_url is None:
        return []
    async with aiohttp.ClientSession() as session:
        zendesk = ZendeskClient(session, settings.zendesk_base_url, authorization(settings), timeout=10)
        read, failed = await read_schedules(zendesk, ids, now.date())
    checks = []
    for schedule_id in ids:
        users = ", ".join(
            line.label() for line in settings.phone_lines.all if line.hours and line.hours.schedule_id == schedule_id
        )
        name = f"schedule {schedule_id}"
        if schedule_id in failed:
            checks.append(
                Check(
                    name,
                    False,
                    f"cannot be read ({failed[schedule_id]}): {users} would stay open at all hours",
                    "use the id in the schedule's URL (Admin Center > Objects and rules > Business rules > "
                    "Schedules), and a token of an agent or admin who may see it",
                )
            )
            continue
        schedule = read[schedule_id]
        state = opening(schedule.hours, now)
        now_is = f"{'open' if state.open else 'closed'} now ({state.why})"
        if schedule.holidays_missing is not None:
            checks.append(
                Check(
                    name,
                    True,
                    f"{schedule.name}, {schedule.hours.timezone}, for {users}: its weekly hours apply, its holidays "
                    f"do not: Zendesk shows them to admins only (an admin's API token would read them); {now_is}",
                )
            )
            continue
        days = len(schedule.hours.holidays)
        said = f"{schedule.name}, {schedule.hours.timezone}, for {users}: {days} holiday days ahead; {now_is}"
        checks.append(Check(name, True, said))
    return checks
