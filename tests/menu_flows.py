"""Menus' real-world flows, played through Twilio's stand-in: the tests check them, the recordings keep them.

Support (the demo number) has a menu: 1 Sales, 2 Support, 3 the emergency line (a number the call is
forwarded to), 9 voicemail, and Sales as its default; in one flow Sales is closed. Each flow drives one
bridge (its Twilio the stand-in, on the stand-in's virtual time) and returns the caller's call; `capture`
writes each as a file of tests/recordings/ (python -m tests.menu_flows).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.devtools.demo import DEMO_NUMBER, LocalBridge
from bridge.devtools.fake_twilio.state import Call
from bridge.devtools.queue_demo import ALICE, BOB, DANA, TEAM, choose, finished, twilio
from bridge.devtools.waiting import wait_until
from tests.queue_flows import SALES_NUMBER, own_sales, record, write_recordings

EMERGENCY = "+13125550199"  # the number key 3 forwards to: nobody's phone the bridge knows
PROMPT = "For sales press 1. For support press 2. For emergencies press 3. To leave a message press 9."
MENU_TIMEOUT = 6
CHOOSING = 3  # how far into the prompt a caller who knows what they want presses the key
PROMPT_SECONDS = 8  # the stand-in's estimate of the prompt: 17 words at 2.5 a second
MENU_LINES = f"""
[[line]]
number = "{DEMO_NUMBER}"
name = "Support"
group_id = 5001
brand_id = 6001
agents = ["{ALICE}", "{BOB}"]

[line.menu]
prompt = "{PROMPT}"
timeout = {MENU_TIMEOUT}
default = "line:Sales"
1 = "line:Sales"
2 = "line:Support"
3 = "{EMERGENCY}"
9 = "voicemail"

[[line]]
number = "{SALES_NUMBER}"
name = "Sales"
group_id = 5002
brand_id = 6002
agents = ["{BOB}"]
"""
# Sales closed whenever a flow or a replay runs (a time zone and no weekly hours), to voicemail after hours.
SALES_CLOSED = MENU_LINES + 'after_hours = "voicemail"\n\n[line.hours]\ntimezone = "America/Chicago"\n'


async def in_menu(bridge: LocalBridge, call: Call, hearing: int = 1) -> None:
    """Wait until the caller hears the menu's prompt for the `hearing`th time (Twilio <Gather>)."""
    fake = twilio(bridge)

    async def heard() -> bool:
        await fake.settle()
        return sum(1 for prompt in fake.heard(call) if prompt.text == PROMPT) >= hearing

    await wait_until(heard, what=f"{call.sid} hearing the menu ({hearing})")


async def menu_to_line(bridge: LocalBridge) -> list[Call]:
    """Dana presses 1 for Sales: bob (Sales' one agent) rings, though alice is free too; he answers, they talk 40 s."""
    fake = twilio(bridge)
    own_sales(bridge)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await in_menu(bridge, call)
    await fake.advance(CHOOSING)
    await fake.press(call, "1")
    leg = await fake.ringing(BOB)
    assert [leg.to for leg in fake.legs(call)] == [BOB]
    await fake.advance(4)
    await fake.answer(leg)
    await fake.advance(40)
    await fake.hang_up(leg)
    await finished(bridge, call)
    return [call]


async def menu_to_voicemail(bridge: LocalBridge) -> list[Call]:
    """Dana presses 9: the voicemail greeting at once, ringing nobody; she leaves a 12 s message."""
    fake = twilio(bridge)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await in_menu(bridge, call)
    await fake.advance(CHOOSING)
    await fake.press(call, "9")
    await fake.advance(20)  # the greeting, the beep, the message
    assert fake.legs(call) == []
    await fake.hang_up(call)
    await finished(bridge, call)
    return [call]


async def menu_to_number(bridge: LocalBridge) -> list[Call]:
    """Dana presses 3: the call is forwarded to the emergency line, which answers after 5 s; they talk 30 s."""
    fake = twilio(bridge)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await in_menu(bridge, call)
    await fake.advance(CHOOSING)
    await fake.press(call, "3")
    leg = await fake.ringing(EMERGENCY)
    assert [leg.to for leg in fake.legs(call)] == [EMERGENCY]
    await fake.advance(5)
    await fake.answer(leg)
    await fake.advance(30)
    await fake.hang_up(call)
    await finished(bridge, call)
    return [call]


async def menu_invalid_key(bridge: LocalBridge) -> list[Call]:
    """Dana presses 7, which the menu does not name: she hears it again, presses 2 (Support); alice answers."""
    fake = twilio(bridge)
    await choose(bridge, "away", BOB)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await in_menu(bridge, call)
    await fake.advance(CHOOSING)
    await fake.press(call, "7")
    await fake.advance(5)  # "Sorry, that is not one of the choices.", then the prompt again
    await in_menu(bridge, call, hearing=2)
    assert fake.legs(call) == []
    await fake.press(call, "2")
    leg = await fake.ringing(ALICE)
    await fake.advance(3)
    await fake.answer(leg)
    await fake.advance(25)
    await fake.hang_up(leg)
    await finished(bridge, call)
    return [call]


async def menu_timeout(bridge: LocalBridge) -> list[Call]:
    """Dana presses nothing: after the menu's timeout she goes to its default, Sales; bob answers."""
    fake = twilio(bridge)
    own_sales(bridge)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await in_menu(bridge, call)
    await fake.advance(PROMPT_SECONDS + MENU_TIMEOUT)  # the prompt plays out, then the timeout passes
    leg = await fake.ringing(BOB)
    assert [leg.to for leg in fake.legs(call)] == [BOB]
    await fake.advance(6)
    await fake.answer(leg)
    await fake.advance(20)
    await fake.hang_up(call)
    await finished(bridge, call)
    return [call]


async def menu_to_closed_line(bridge: LocalBridge) -> list[Call]:
    """Dana presses 1 for Sales, which is closed: nobody rings; she hears Sales is closed and leaves a message."""
    fake = twilio(bridge)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await in_menu(bridge, call)
    await fake.advance(CHOOSING)
    await fake.press(call, "1")
    await fake.advance(30)  # Sales' closed words, the beep, the message
    assert fake.legs(call) == []
    await fake.hang_up(call)
    await finished(bridge, call)
    return [call]


Flow = Callable[[LocalBridge], Awaitable[list[Call]]]
# name → (the flow, its settings, the recordings it writes: of the callers the flow returns, in order)
FLOWS: dict[str, tuple[Flow, dict[str, Any], tuple[str, ...]]] = {
    "menu_to_line": (menu_to_line, {}, ("menu_to_line",)),
    "menu_to_voicemail": (menu_to_voicemail, {}, ("menu_to_voicemail",)),
    "menu_to_number": (menu_to_number, {}, ("menu_to_number",)),
    "menu_invalid_key": (menu_invalid_key, {}, ("menu_invalid_key",)),
    "menu_timeout": (menu_timeout, {}, ("menu_timeout",)),
    "menu_to_closed_line": (menu_to_closed_line, {"lines": SALES_CLOSED}, ("menu_to_closed_line",)),
}


def settings(**more: Any) -> dict[str, Any]:
    """Return the settings every menu flow runs with: the team, the two lines with Support's menu."""
    return {"agents": dict(TEAM), "lines": MENU_LINES, **more}


async def capture(folder: Path, work: Path) -> list[Path]:
    """Play every flow once and write its caller's webhooks to `folder`, each file on its own day and sids."""
    written = []
    for number, (name, (flow, extra, files)) in enumerate(FLOWS.items()):
        start = datetime(2026, 9, 18, 9 + number, 0, 0, tzinfo=UTC)
        written += await record(
            folder, work, name, flow, settings(**extra), seed=200 + number, start=start, files=files
        )
    return written


if __name__ == "__main__":
    write_recordings(capture)
