"""`bridge doctor`: check every setting, Zendesk, the agents, the database and Twilio before the first call.

Peers' users most often report "nothing arrives" with no clue why; each failure here names the fix. One
module a group of checks: `basics` (the settings themselves, the database), `zendesk` (credentials, roles,
agents, their availability, the groups and brands), `twilio` (credentials, CALLER_ID, the REST API, the
queue), `lines` (each line's number at Twilio, its agents), `hours` (the lines' Zendesk schedules),
`recordings`, `softphone` (browser agents and ZENDESK_API=calls); `check` holds the table and how it prints.
Nothing here builds the server (bridge.app): the doctor opens only what it checks.
"""

from __future__ import annotations

from bridge.core.clock import system_clock
from bridge.ops.doctor.basics import database_check, static_checks
from bridge.ops.doctor.callbacks import callbacks_check
from bridge.ops.doctor.check import Check, render
from bridge.ops.doctor.hours import schedule_checks
from bridge.ops.doctor.lines import line_checks, line_number_checks
from bridge.ops.doctor.recordings import recordings_check
from bridge.ops.doctor.softphone import calls_checks, softphone_checks
from bridge.ops.doctor.twilio import RestProbe, queueing_check, twilio_checks
from bridge.ops.doctor.zendesk import zendesk_checks
from bridge.ops.settings import ConfigError, Settings, load_settings

__all__ = ["Check", "render", "run_checks"]


async def run_checks() -> tuple[list[Check], Settings | None]:
    """Run every check against the environment; return them and the settings when they loaded."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        checks = [Check("settings", False, part, "correct the variable named") for part in str(exc).split("; ")]
        return checks, None
    checks = [Check("settings", True, "every variable parses")]
    checks += static_checks(settings)
    checks += line_checks(settings)
    if settings.zendesk_base_url and (settings.zendesk_oauth_token or settings.zendesk_api_token):
        checks += await zendesk_checks(settings)
        checks += await schedule_checks(settings, system_clock())
    checks.append(await database_check(settings))
    rest = RestProbe(settings) if settings.twilio_account_sid else None
    if settings.twilio_account_sid:
        checks += await twilio_checks(settings)
        checks += await line_number_checks(settings)
    checks.append(await recordings_check(settings, rest))
    checks.append(await queueing_check(settings, rest))
    checks.append(callbacks_check(settings))
    if settings.wants_softphone:
        checks += await softphone_checks(settings)
    if settings.zendesk_api == "calls" and settings.zendesk_base_url:
        checks += await calls_checks(settings)
    return checks, settings
