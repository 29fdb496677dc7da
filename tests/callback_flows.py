"""Callbacks' real-world flows, played through Twilio's stand-in: the tests check them, the recordings keep them.

A waiting caller asks to be called back (or for voicemail) at the wait music's offer; when an agent frees up the
bridge calls the agent, then the caller (docs/callbacks.md). Each flow returns the callers' calls; `capture`
writes each caller's webhooks, the turns' included, as a file of tests/recordings/.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.appkeys import DESK
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge, local_bridge
from bridge.devtools.fake_twilio import TwilioStandIn
from bridge.devtools.fake_twilio.state import Call
from bridge.devtools.queue_demo import ALICE, BOB, DANA, TEAM, choose, finished, queued, twilio
from bridge.devtools.waiting import wait_until
from tests.queue_flows import Flow, write_recordings

OFFER = 30  # CALLBACK_OFFER_SECONDS in these flows
ANONYMOUS = "+266696687"  # Twilio's From for a withheld number (Twilio docs: "anonymous" caller ids)
OTHER = "+14155550177"  # the number Dana keys instead of her own


async def ask_for_callback(bridge: LocalBridge, call: Call, keyed: str = "1#") -> None:
    """Wait in line past the offer, press 1, then confirm (1#) or key a number; the call ends politely."""
    fake = twilio(bridge)
    await queued(bridge, call)
    await fake.advance(OFFER + 15)  # the offer comes with the wait music's next turn after OFFER seconds
    await fake.press(call, "1")
    await fake.press(call, keyed)
    await fake.advance(10)  # the thanks, then the call ends
    assert call.status == "completed", call.status
    await calls_back_later(bridge, call)


async def calls_back_later(bridge: LocalBridge, call: Call) -> None:
    """Wait until the bridge keeps the request in the caller's place."""

    async def kept() -> bool:
        await twilio(bridge).settle()
        return any(row.call_sid == call.sid and row.callback for row in await bridge.app[DESK].waiting())

    await wait_until(kept, what=f"{call.sid}'s callback request in line")


async def turn(bridge: LocalBridge, customer: str, outcome: str, *, agent: str = ALICE) -> None:
    """One turn: the agent's phone rings and they answer; the customer answers and presses 1, or not."""
    fake = twilio(bridge)
    leg = await fake.ringing(agent)
    await fake.advance(3)
    await fake.answer(leg)
    await fake.advance(8)  # the whisper says whose callback it is, then the customer's phone rings
    dial = await fake.ringing(customer)
    await fake.advance(4)
    if outcome == "answered":
        await fake.answer(dial)
        await fake.press(dial, "1")
        await fake.advance(40)
        await fake.hang_up(dial)
    elif outcome == "machine":
        await fake.answer(dial)  # a voicemail greeting: it never presses 1, so its leg is hung up
        await fake.advance(10)
    else:
        await fake.reject(dial, outcome)  # busy, no-answer
    await fake.advance(2)


async def callback_answered(bridge: LocalBridge) -> list[Call]:
    """Nobody free; Dana asks to be called back at her own number; alice frees up: she calls Dana, who talks."""
    fake = twilio(bridge)
    await choose(bridge, "away", ALICE, BOB)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await ask_for_callback(bridge, call)
    await fake.advance(60)
    await choose(bridge, "available", ALICE)
    await turn(bridge, DANA, "answered")
    await settled(bridge, call)
    return [call]


async def callback_retried(bridge: LocalBridge) -> list[Call]:
    """Dana's first callback rings out at her end; CALLBACK_RETRY_MINUTES later the second reaches her."""
    fake = twilio(bridge)
    await choose(bridge, "away", ALICE, BOB)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await ask_for_callback(bridge, call)
    await choose(bridge, "available", ALICE)
    await turn(bridge, DANA, "no-answer")
    await fake.advance(bridge.settings.callback_retry_minutes * 60 + 5)
    await turn(bridge, DANA, "answered")
    await settled(bridge, call)
    return [call]


async def callback_exhausted(bridge: LocalBridge) -> list[Call]:
    """Busy, then a voicemail picking up, then no answer: after CALLBACK_ATTEMPTS the request is closed."""
    fake = twilio(bridge)
    await choose(bridge, "away", ALICE, BOB)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await ask_for_callback(bridge, call)
    await choose(bridge, "available", ALICE)
    for outcome in ("busy", "machine", "no-answer"):
        await turn(bridge, DANA, outcome)
        await fake.advance(bridge.settings.callback_retry_minutes * 60 + 5)
    await settled(bridge, call)
    return [call]


async def callback_other_number(bridge: LocalBridge) -> list[Call]:
    """Dana keys a premium number (refused), then another number of her country: she is called back there."""
    fake = twilio(bridge)
    await choose(bridge, "away", ALICE, BOB)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await queued(bridge, call)
    await fake.advance(OFFER + 15)
    await fake.press(call, "1")
    await fake.press(call, "9005550123#")  # premium rate: asked again
    await fake.press(call, OTHER.removeprefix("+1") + "#")
    await fake.advance(10)
    assert call.status == "completed", call.status
    await calls_back_later(bridge, call)
    await choose(bridge, "available", ALICE)
    await turn(bridge, OTHER, "answered")
    await settled(bridge, call)
    return [call]


async def callback_anonymous(bridge: LocalBridge) -> list[Call]:
    """A withheld number is asked for one to call back at; it keys it and is called back there."""
    fake = twilio(bridge)
    await choose(bridge, "away", ALICE, BOB)
    call = await fake.incoming(ANONYMOUS, DEMO_NUMBER)
    await ask_for_callback(bridge, call, keyed=OTHER.removeprefix("+1") + "#")
    await choose(bridge, "available", ALICE)
    await turn(bridge, OTHER, "answered")
    await settled(bridge, call)
    return [call]


async def voicemail_by_choice(bridge: LocalBridge) -> list[Call]:
    """Past the offer Dana presses 2: she leaves the queue for voicemail and leaves a 10-second message."""
    fake = twilio(bridge)
    await choose(bridge, "away", ALICE, BOB)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await queued(bridge, call)
    await fake.advance(OFFER + 15)
    await fake.press(call, "2")
    await fake.advance(20)  # the greeting, the beep, the message
    await fake.hang_up(call)
    await finished(bridge, call)
    return [call]


async def settled(bridge: LocalBridge, call: Call) -> None:
    """Wait until the request is out of line and everything Zendesk should hear was delivered."""

    async def out() -> bool:
        await twilio(bridge).settle()
        return all(row.call_sid != call.sid for row in await bridge.app[DESK].waiting())

    await wait_until(out, what=f"{call.sid}'s callback request closed")
    await finished(bridge, call)


SETTINGS: dict[str, Any] = {"callback_offer_seconds": OFFER, "callback_retry_minutes": 10, "callback_attempts": 3}
# name → (the flow, its settings, the recordings it writes)
FLOWS: dict[str, tuple[Flow, dict[str, Any], tuple[str, ...]]] = {
    "callback_answered": (callback_answered, SETTINGS, ("callback_answered",)),
    "callback_retried": (callback_retried, SETTINGS, ("callback_retried",)),
    "callback_exhausted": (callback_exhausted, SETTINGS, ("callback_exhausted",)),
    "callback_other_number": (callback_other_number, SETTINGS, ("callback_other_number",)),
    "callback_anonymous": (callback_anonymous, SETTINGS, ("callback_anonymous",)),
    "voicemail_by_choice": (voicemail_by_choice, SETTINGS, ("voicemail_by_choice",)),
}


def write(fake: TwilioStandIn, path: Path, call: Call) -> Path:
    """Save a caller's webhooks and those of every call placed to call them back, on the caller's time line.

    The calls a callback places are calls of their own at Twilio; our URLs in them name the caller's call, and a
    replay of the file must carry them to it, so they go in its recording, `at` counted from the caller's start.
    """
    roots = {sent.root for sent in fake.sent if f"call={call.sid}" in sent.path} | {call.sid}
    calls = fake.account.calls
    lines = []
    for sent in fake.sent:
        if sent.root in roots:
            offset = (calls[sent.root].created - call.created).total_seconds()
            lines.append((offset + sent.at, replace(sent, at=offset + sent.at).line()))
    lines.sort(key=lambda item: item[0])
    path.write_text("".join(line + "\n" for _, line in lines), encoding="utf-8")
    return path


async def capture(folder: Path, work: Path) -> list[Path]:
    """Play every flow once and write its caller's webhooks (the callbacks' included) to `folder`."""
    written = []
    for number, (name, (flow, settings, files)) in enumerate(FLOWS.items()):
        start = datetime(2026, 9, 19, 9 + number, 0, 0, tzinfo=UTC)
        options = {"agents": dict(TEAM), **settings}
        async with local_bridge(
            work / f"{name}.db",
            stand_in=True,
            virtual_time=True,
            stand_in_seed=700 + number,
            stand_in_start=start,
            **options,
        ) as bridge:
            (call,) = await flow(bridge)
            written.append(write(twilio(bridge), folder / f"{files[0]}.jsonl", call))
    return written


if __name__ == "__main__":
    write_recordings(capture)
