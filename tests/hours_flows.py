"""Calls after hours, played through Twilio's stand-in: the tests check them, the recordings keep them.

Support (the demo number) is open Monday to Friday, 9 to 5 in Chicago, closed on Christmas. Each flow calls
it while it is closed, under one of its `after_hours` actions, on the stand-in's virtual time; `capture`
writes each caller's webhooks as a file of tests/recordings/ (python -m tests.hours_flows).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bridge.devtools.demo import DEMO_NUMBER, LocalBridge
from bridge.devtools.fake_twilio.state import Call
from bridge.devtools.queue_demo import DANA, ERIN, TEAM, finished, twilio
from tests.queue_flows import record, write_recordings

CHICAGO = ZoneInfo("America/Chicago")
FORWARD_TO = "+16505550177"  # the after-hours number Support forwards to (no agent's)
WEEKDAYS = "\n".join(f'{day} = "09:00-17:00"' for day in ("mon", "tue", "wed", "thu", "fri"))
SATURDAY = datetime(2026, 9, 19, 15, 0, tzinfo=UTC)  # 10:00 in Chicago, a Saturday: closed
CHRISTMAS = datetime(2026, 12, 25, 16, 0, tzinfo=UTC)  # 10:00 in Chicago, a Friday: a holiday


def support(after_hours: str, hours: str = f'timezone = "America/Chicago"\n{WEEKDAYS}\nholidays = ["2026-12-25"]',
            **extra: str) -> str:  # fmt: skip
    """Return the lines' TOML: Support with these hours and after-hours action (and any other keys)."""
    keys = "".join(f"{key} = {value}\n" for key, value in extra.items())
    return (
        f'[[line]]\nnumber = "{DEMO_NUMBER}"\nname = "Support"\ngroup_id = 5001\nbrand_id = 6001\n'
        f'after_hours = "{after_hours}"\n{keys}\n[line.hours]\n{hours}\n'
    )


def closed_now(after_hours: str) -> str:
    """Return Support closed whenever a replay runs: a time zone and no weekly hours."""
    return support(after_hours, 'timezone = "America/Chicago"')


def holiday_now() -> str:
    """Return Support open all week but on a holiday whenever a replay runs (yesterday to tomorrow in Chicago)."""
    today = datetime.now(UTC).astimezone(CHICAGO).date()
    days = ", ".join(f'"{today + timedelta(days=offset)}"' for offset in (-1, 0, 1))
    week = "\n".join(f'{day} = "00:00-24:00"' for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    return support("voicemail", f'timezone = "America/Chicago"\n{week}\nholidays = [{days}]')


async def voicemail(bridge: LocalBridge) -> list[Call]:
    """Dana calls on Saturday: she hears Support is closed and its hours, the beep, and leaves a 21-second message."""
    fake = twilio(bridge)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await fake.advance(35)  # the closed greeting with the hours (14 s), the beep, the message
    await fake.hang_up(call)
    await finished(bridge, call)
    return [call]


async def message(bridge: LocalBridge) -> list[Call]:
    """Erin calls on Saturday: she hears that Support is closed and its hours, and the call ends."""
    fake = twilio(bridge)
    call = await fake.incoming(ERIN, DEMO_NUMBER)
    await fake.advance(30)
    await finished(bridge, call)
    return [call]


async def forward(bridge: LocalBridge) -> list[Call]:
    """Dana calls on Saturday: Support forwards her to its after-hours number, which answers; they talk 40 s."""
    fake = twilio(bridge)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    leg = await fake.ringing(FORWARD_TO)
    await fake.advance(6)
    await fake.answer(leg)
    await fake.advance(40)
    await fake.hang_up(leg)
    await finished(bridge, call)
    return [call]


async def holiday(bridge: LocalBridge) -> list[Call]:
    """Dana calls at 10:00 on Christmas, a Friday: a holiday, so voicemail; a 21-second message."""
    return await voicemail(bridge)


Flow = Callable[[LocalBridge], Awaitable[list[Call]]]
# name → (the flow, its lines, its start, the recording it writes)
FLOWS: dict[str, tuple[Flow, str, datetime, str]] = {
    "voicemail": (voicemail, support("voicemail"), SATURDAY, "after_hours_voicemail"),
    "message": (message, support("message"), SATURDAY + timedelta(hours=1), "after_hours_message"),
    "forward": (forward, support(FORWARD_TO), SATURDAY + timedelta(hours=2), "after_hours_forward"),
    "holiday": (holiday, support("voicemail"), CHRISTMAS, "after_hours_holiday"),
}


def settings_of(name: str) -> dict[str, Any]:
    """Return a flow's settings: its lines, and the team."""
    return {"lines": FLOWS[name][1], "agents": dict(TEAM)}


async def capture(folder: Path, work: Path) -> list[Path]:
    """Play every flow once and write its caller's webhooks to `folder`, each on its own sids and start."""
    written = []
    for number, (name, (flow, _, start, file)) in enumerate(FLOWS.items()):
        # Seeds of their own: the menu flows' start at 200, and two recordings must never share a sid.
        written += await record(
            folder, work, name, flow, settings_of(name), seed=300 + number, start=start, files=(file,)
        )
    return written


if __name__ == "__main__":
    write_recordings(capture)
