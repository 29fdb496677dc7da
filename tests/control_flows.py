"""The controls of a call in progress, played through Twilio's stand-in: the tests check them, the recordings keep them.

`paused_and_resumed` has alice pause the recording of a call she answered and resume it 15 s later, from her
softphone's route; `capture` writes its webhooks, and the two confirmations the bridge ingested, as
tests/recordings/inbound_recording_paused.jsonl (python -m tests.control_flows).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.appkeys import STORE
from bridge.core.events import CallEvent, EventKind
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge, local_bridge
from bridge.devtools.fake_twilio.state import Call
from tests.queue_flows import DANA, write_recordings
from tests.softphone_kit import API_KEY_SECRET, API_KEY_SID, softphone_settings
from tests.test_softphone_presence import signed_in

PAUSE, RESUME = "5e0d7c1a-0b6f-4d4e-9a57-5d0c3f1f2a01", "5e0d7c1a-0b6f-4d4e-9a57-5d0c3f1f2a02"  # the clicks' ids
FILE = "inbound_recording_paused"
START = datetime(2026, 9, 18, 10, 0, 0, tzinfo=UTC)
SEED = 600  # the controls' recordings keep seeds from 600 (queue 100, menus 200, hours 300, customers 400, room 500)


def settings() -> dict[str, Any]:
    """Return a softphone bridge's settings whose Twilio is the stand-in (its account, not the kit's)."""
    values = softphone_settings()
    del values["twilio_account_sid"]
    return values


async def click(bridge: LocalBridge, leg: Call, action: str, request: str) -> dict[str, Any]:
    """Click one control on alice's page, as the page posts it; return the call as the bridge answers."""
    phone = await signed_in(bridge)
    status, body = await phone.send("POST", "/softphone/call", json={"call": leg.sid, "action": action,
                                                                     "request": request})  # fmt: skip
    assert status == 200, body
    return dict(body["call"])


async def paused_and_resumed(bridge: LocalBridge) -> tuple[Call, Call]:
    """Dana calls, alice answers after 6 s, pauses the recording 20 s in, resumes 15 s later, and hangs up 40 s on."""
    fake = bridge.stand_in
    assert fake is not None
    fake.media.api_keys[API_KEY_SID] = API_KEY_SECRET  # the bridge asks Twilio with the API key
    call = await fake.incoming(DANA, DEMO_NUMBER)
    leg = await fake.ringing("client:alice")
    await fake.advance(6)
    await fake.answer(leg)
    await fake.advance(20)
    assert (await click(bridge, leg, "pause_recording", PAUSE))["recording"] == "paused"
    await fake.advance(15)
    assert (await click(bridge, leg, "resume_recording", RESUME))["recording"] == "on"
    await fake.advance(40)
    await fake.hang_up(leg)
    await bridge.settle_calls()
    return call, leg


async def confirmations(bridge: LocalBridge, call: Call, leg: Call) -> list[str]:
    """Return the recording lines of the confirmations the bridge ingested: each event and its dedupe key."""
    state = await bridge.app[STORE].get_call(call.sid)
    assert state is not None
    lines = []
    for toggle, request in zip(state.recording_toggles, (PAUSE, RESUME), strict=True):
        kind = EventKind.RECORDING_PAUSED if toggle.paused else EventKind.RECORDING_RESUMED
        event = CallEvent(kind=kind, call_sid=call.sid, at=toggle.at, leg_sid=leg.sid, leg_to="client:alice")
        at = round((toggle.at - call.created).total_seconds(), 3)
        confirmed = {"event": event.model_dump(mode="json", exclude_none=True), "key": f"control:{request}:done"}
        lines.append(json.dumps({"at": at, "confirmed": confirmed}))
    return lines


async def capture(folder: Path, work: Path) -> list[Path]:
    """Play the flow once and write its webhooks and confirmations to `folder`, in the order they came."""
    async with local_bridge(work / f"{FILE}.db", stand_in=True, virtual_time=True, stand_in_seed=SEED,
                            stand_in_start=START, **settings()) as bridge:  # fmt: skip
        call, leg = await paused_and_resumed(bridge)
        assert bridge.stand_in is not None
        path = bridge.stand_in.write(folder / f"{FILE}.jsonl", call)
        lines = path.read_text().splitlines() + await confirmations(bridge, call, leg)
    lines.sort(key=lambda line: float(json.loads(line)["at"]))  # stable: a webhook first at the same moment
    path.write_text("\n".join(lines) + "\n")
    return [path]


if __name__ == "__main__":
    write_recordings(capture)
