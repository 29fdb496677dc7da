"""kill -9 the real server with a callback request in line, or with its turn ringing the agent: none lost, none twice.

Twilio is the stand-in of bridge.devtools.fake_twilio in this process, the bridge a real `bridge serve` process
killed with SIGKILL and started again on the same database (docs/callbacks.md).
"""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer

from bridge.devtools.demo import DEMO_NUMBER
from bridge.devtools.fake_twilio import TwilioStandIn, serve_stand_in
from bridge.devtools.fake_twilio.state import Call
from bridge.devtools.sandbox import SANDBOX, Sandbox, create_sandbox_app
from tests.conftest import call_outcome, eventually, free_port, serve_env, start_serve, voice_comments
from tests.test_crash import ALICE, DANA, bridge_command, kill

TOKEN = "callback-crash-token"
OFFER = "Press 1 to be called back"


async def ask_for_callback(twilio: TwilioStandIn, call: Call) -> None:
    """Let the wait music come round until it offers a callback, press 1, confirm the number; the call ends."""

    async def offered() -> bool:
        await twilio.advance(11)  # one turn of the wait music: the waitUrl is asked again
        return any(OFFER in (heard.text or "") for heard in twilio.heard(call))

    await eventually(offered, within=30)
    await twilio.press(call, "1")
    await twilio.press(call, "1#")
    await twilio.advance(10)
    assert call.status == "completed"


def agent_calls(twilio: TwilioStandIn) -> list[Call]:
    """Return the calls placed to alice through the REST API (a callback's turns)."""
    return [call for call in twilio.account.calls.values() if call.to == ALICE and call.parent is None]


@pytest.mark.parametrize("moment", ["request in line", "its turn ringing the agent"])
async def test_kill_9_with_a_callback_loses_none_and_dials_none_twice(
    database_url: str, tmp_path: pytest.TempPathFactory, moment: str
) -> None:
    """The restarted bridge keeps the request in its place and calls back once; a turn under way goes on."""
    sandbox_app = create_sandbox_app()
    sandbox: Sandbox = sandbox_app[SANDBOX]
    async with TestServer(sandbox_app, host="127.0.0.1") as zendesk, serve_stand_in(TOKEN, seed=31) as twilio:
        port = free_port()
        env = serve_env(
            str(zendesk.make_url("")), tmp_path / "unused.db", port, TOKEN, DATABASE_URL=database_url,  # type: ignore[operator]
            AGENTS=f"{ALICE}=1001", TWILIO_ACCOUNT_SID=twilio.account.sid, TWILIO_API_URL=twilio.url,
            CALLBACK_OFFER_SECONDS="1",
        )  # fmt: skip
        url = env["PUBLIC_URL"]
        twilio.own(DEMO_NUMBER, f"{url}/twilio/voice/incoming", status_callback=f"{url}/twilio/voice/status")
        first = await start_serve(env)
        await bridge_command(env, "agents", "set", ALICE, "away")
        dana = await twilio.incoming(DANA, DEMO_NUMBER)
        await ask_for_callback(twilio, dana)
        assert "0 waiting, 1 callback" in await bridge_command(env, "queue")
        if moment == "its turn ringing the agent":
            await bridge_command(env, "agents", "set", ALICE, "available")
            await twilio.ringing(ALICE, within=60)  # the turn's call to alice rings
        await kill(first)
        second = await start_serve(env)
        try:
            listing = await bridge_command(env, "queue")
            assert f"call {dana.sid}" in listing
            assert "callback to …0123" in listing
            if moment == "request in line":
                await bridge_command(env, "agents", "set", ALICE, "available")
            leg = await twilio.ringing(ALICE, within=60)
            await twilio.answer(leg)
            await twilio.advance(8)  # the whisper, then Dana's phone rings
            customer = await twilio.ringing(DANA, within=30)
            await twilio.answer(customer)
            await twilio.press(customer, "1")
            await twilio.advance(30)
            await twilio.hang_up(customer)
            await twilio.advance(5)

            async def out_of_line() -> bool:
                return "0 waiting, 0 callbacks" in await bridge_command(env, "queue")

            await eventually(out_of_line, within=60)

            def logged() -> bool:
                tickets = call_outcome(sandbox.snapshot(), dana.sid)
                return len(tickets) == 1 and len(voice_comments(tickets[0])) == 1

            # Not the whole outbox: on PostgreSQL, a pop the killed process had claimed waits out its lease.
            await eventually(logged, within=60)
        finally:
            second.terminate()
            await second.communicate()
        snapshot = sandbox.snapshot()
    assert len(agent_calls(twilio)) == 1  # one turn, placed once, whichever process decided it
    (ticket,) = call_outcome(snapshot, dana.sid)
    assert "callback_requested" in ticket["tags"]
    (conversation,) = voice_comments(ticket)
    assert conversation["answered_by_id"] == 1001
