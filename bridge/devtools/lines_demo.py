"""`bridge demo`'s lines: two numbers, one with a menu, the other closed today, played through Twilio's stand-in.

Support (the demo number) answers with a menu: 1 Sales, 2 Support, 9 voicemail. Sales (a second number) is
closed today: a holiday in its hours, so its callers leave a voicemail. Twilio is the stand-in on virtual time.
"""

from __future__ import annotations

import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from bridge.devtools.demo import DEMO_NUMBER, LocalBridge, local_bridge, render
from bridge.devtools.fake_twilio.state import Call
from bridge.devtools.queue_demo import ALICE, BOB, DANA, ERIN, TEAM, finished, say, twilio
from bridge.devtools.waiting import wait_until

SALES_NUMBER = "+16505550101"
PROMPT = "For sales press 1. For support press 2. To leave a message press 9."
ZONE = "America/Chicago"


def lines_toml(today: date) -> str:
    """Return the demo's LINES: Support with a menu, open all week; Sales closed for a holiday today."""
    week = "\n".join(f'{day} = "00:00-24:00"' for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    return f"""
[[line]]
number = "{DEMO_NUMBER}"
name = "Support"
agents = ["{ALICE}", "{BOB}"]
[line.menu]
prompt = "{PROMPT}"
timeout = 6
default = "line:Support"
1 = "line:Sales"
2 = "line:Support"
9 = "voicemail"

[[line]]
number = "{SALES_NUMBER}"
name = "Sales"
agents = ["{BOB}"]
after_hours = "voicemail"
[line.hours]
timezone = "{ZONE}"
{week}
holidays = ["{today.isoformat()}", "{(today + timedelta(days=1)).isoformat()}"]
"""


async def heard(bridge: LocalBridge, call: Call, text: str) -> None:
    """Wait until the caller heard a prompt containing `text`."""
    fake = twilio(bridge)

    async def done() -> bool:
        await fake.settle()
        return any(text in prompt.text for prompt in fake.heard(call))

    await wait_until(done, what=f"{call.sid} hearing {text!r}")


async def run_lines_demo(out: TextIO) -> int:
    """Show a menu leading a caller to an agent, and a closed line taking a voicemail; return an exit code."""
    today = datetime.now(ZoneInfo(ZONE)).date()  # and the next day: the demo may run across midnight
    with tempfile.TemporaryDirectory(prefix="bridge-lines-demo-") as tmp:
        async with local_bridge(
            Path(tmp) / "lines.db", stand_in=True, virtual_time=True, agents=dict(TEAM), lines=lines_toml(today)
        ) as bridge:
            fake = twilio(bridge)
            fake.own(
                SALES_NUMBER, f"{bridge.url}/twilio/voice/incoming", status_callback=f"{bridge.url}/twilio/voice/status"
            )
            dana = await fake.incoming(DANA, DEMO_NUMBER)
            await heard(bridge, dana, "press 1")
            say(out, f"Dana calls Support ({DEMO_NUMBER}) and hears its menu: {PROMPT!r}")
            await fake.advance(3)
            await fake.press(dana, "2")
            leg = await fake.ringing(ALICE)
            say(out, "She presses 2: Support's agents ring; alice answers and they talk 30 s")
            await fake.answer(leg)
            await fake.advance(30)
            await fake.hang_up(leg)
            await finished(bridge, dana)
            erin = await fake.incoming(ERIN, SALES_NUMBER)
            say(out, f"Erin calls Sales ({SALES_NUMBER}), closed today for a holiday: she leaves a voicemail")
            await fake.advance(25)
            await fake.hang_up(erin)
            await finished(bridge, erin)
            say(out, "What Zendesk received:\n")
            snapshot = bridge.sandbox.snapshot()
    ours = {**snapshot, "tickets": [t for t in snapshot["tickets"] if t["external_id"] in (dana.sid, erin.sid)]}
    print(render(ours), file=out)
    return 0
