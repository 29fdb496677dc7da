"""The controls of a call in progress over HTTP, against Twilio's stand-in: who may use them, once per click."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge.appkeys import STORE
from bridge.core.calls import Call
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge, calls_mode
from bridge.devtools.fake_twilio import TwilioStandIn
from bridge.devtools.fake_twilio.state import Call as TwilioCall
from bridge.devtools.replay import replay_files
from tests.conftest import BridgeFactory, call_records, recording
from tests.softphone_kit import API_KEY_SECRET, API_KEY_SID, softphone_settings
from tests.test_softphone_presence import Phone, signed_in

ROUTE = "/softphone/call"
DANA = "+14155550123"


def recording_can(state: dict[str, Any]) -> dict[str, Any]:
    """Return what the call's state says of the recording's two controls."""
    return {name: state["can"][name] for name in ("pause_recording", "resume_recording")}


def controls_settings(**extra: Any) -> dict[str, Any]:
    """Return a softphone bridge's settings whose Twilio is the stand-in (its account, not the kit's)."""
    settings = softphone_settings(**extra)
    del settings["twilio_account_sid"]
    return settings


@dataclass
class OnCall:
    """Alice on a call she answered, with her phone signed in."""

    bridge: LocalBridge
    fake: TwilioStandIn
    phone: Phone
    call: TwilioCall
    leg: TwilioCall

    async def look(self, phone: Phone | None = None, leg: str | None = None) -> tuple[int, Any]:
        """GET the call as the page does."""
        return await (phone or self.phone).send("GET", ROUTE, params={"call": leg or self.leg.sid})

    async def click(self, action: str, request: str | None = None, **body: Any) -> tuple[int, Any]:
        """POST one click as the page does (a fresh request id unless one is given)."""
        payload = {"call": self.leg.sid, "action": action, "request": request or str(uuid.uuid4()), **body}
        return await self.phone.send("POST", ROUTE, json=payload)

    def recording_requests(self) -> list[tuple[str, str]]:
        """Return the REST requests the bridge sent to change the call's recording."""
        return [entry for entry in self.fake.account.script.rest_log if "/Recordings/" in entry[1]]

    async def state(self) -> Call:
        """Return the call as the bridge's store holds it."""
        call = await self.bridge.app[STORE].get_call(self.call.sid)
        assert call is not None
        return call

    def twilio_recording(self) -> str:
        """Return the status of the call's recording at Twilio."""
        (recording,) = self.call.recordings
        return str(recording.status)


@asynccontextmanager
async def alice_on_a_call(make_bridge: BridgeFactory, database_url: str | None, **extra: Any) -> AsyncIterator[OnCall]:
    """Dana calls, routing rings alice's browser, she answers: yield her on the call (on SQLite without a URL)."""
    settings = {**controls_settings(), **extra, **({"database_url": database_url} if database_url else {})}
    async with make_bridge(stand_in=True, virtual_time=True, **settings) as bridge:
        fake = bridge.stand_in
        assert fake is not None
        fake.media.api_keys[API_KEY_SID] = API_KEY_SECRET  # the bridge asks Twilio with the API key
        call = await fake.incoming(DANA, DEMO_NUMBER)
        leg = await fake.ringing("client:alice")
        await fake.answer(leg)
        await fake.advance(5)
        yield OnCall(bridge, fake, await signed_in(bridge), call, leg)


async def test_the_agent_sees_their_call_and_what_each_control_can_do(
    make_bridge: BridgeFactory, database_url: str
) -> None:
    """GET names the parent call, the recording on, Pause possible and Resume not (with why)."""
    async with alice_on_a_call(make_bridge, database_url) as on:
        status, body = await on.look()
    assert status == 200, body
    state = body["call"]
    assert (state["parent"], state["leg"], state["recording"]) == (on.call.sid, on.leg.sid, "on")
    assert (state["on_hold"], state["consult"], state["room"]) == (False, None, False)
    assert recording_can(state) == {"pause_recording": None, "resume_recording": "The recording is not paused."}


async def test_pausing_and_resuming_is_confirmed_by_twilio_and_counted_on_the_record(
    make_bridge: BridgeFactory, database_url: str
) -> None:
    """Pause: Twilio's recording is paused, the page is told so; resume 15 s later; the record says 2 and 15 s."""
    async with alice_on_a_call(make_bridge, database_url, **calls_mode()) as on:
        status, body = await on.click("pause_recording")
        assert status == 200, body
        assert body["call"]["recording"] == "paused"
        paused = {"pause_recording": "The recording is already paused.", "resume_recording": None}
        assert recording_can(body["call"]) == paused
        assert on.twilio_recording() == "paused"
        assert on.recording_requests() == [
            ("POST", f"/2010-04-01/Accounts/{on.fake.account.sid}/Calls/{on.call.sid}/Recordings/Twilio.CURRENT.json")
        ]
        await on.fake.advance(15)
        status, body = await on.click("resume_recording")
        assert (status, body["call"]["recording"]) == (200, "on")
        assert on.twilio_recording() == "in-progress"
        status, body = await on.click("resume_recording")
        assert (status, body["error"]) == (409, "The recording is not paused.")
        assert len(on.recording_requests()) == 2  # refused before Twilio was asked
        await on.fake.advance(10)
        await on.fake.hang_up(on.leg)
        await on.bridge.settle_calls()
        (record,) = call_records(on.bridge.sandbox.snapshot(), on.call.sid)
    assert (record["recording_control_interactions"], record["not_recording_time"]) == (2, 15)


async def test_a_double_click_pauses_once(make_bridge: BridgeFactory, database_url: str) -> None:
    """The same request id twice, at once and again later: one request to Twilio, one pause in the call's state."""
    async with alice_on_a_call(make_bridge, database_url) as on:
        click = str(uuid.uuid4())
        events = await on.bridge.store.count_events()
        answers = await asyncio.gather(on.click("pause_recording", click), on.click("pause_recording", click))
        again = await on.click("pause_recording", click)
        assert [status for status, _ in answers] == [200, 200]
        assert again[0] == 200
        assert again[1]["repeated"] is True
        assert again[1]["call"]["recording"] == "paused"
        assert len(on.recording_requests()) == 1
        assert [toggle.paused for toggle in (await on.state()).recording_toggles] == [True]
        assert await on.bridge.store.count_events() == events + 2  # the click once, its confirmation once


@pytest.mark.parametrize(
    ("failure", "status", "says"),
    [
        ((429, 20429), 503, "Twilio is busy or out of reach: the recording is unchanged. Try pause again."),
        ((500, 20500), 503, "Twilio did not confirm it, so the phone shows the recording as before. Try pause again."),
        ((404, 20404), 409, "No recording is in progress on this call, so there is nothing to pause."),
        ((400, 21220), 409, "The call has ended: there is no recording to pause."),
        ((401, 20003), 502, "Twilio refused to pause the recording"),
    ],
)
async def test_a_failure_at_twilio_leaves_the_recording_as_it_was(
    make_bridge: BridgeFactory, failure: tuple[int, int], status: int, says: str
) -> None:
    """Twilio refuses or fails: the error says what to do, and neither Twilio's recording nor the call changed."""
    async with alice_on_a_call(make_bridge, None) as on:
        on.fake.account.script.rest_failures.append(failure)
        answer, body = await on.click("pause_recording")
        assert answer == status
        assert body["error"].startswith(says)
        assert on.twilio_recording() == "in-progress"
        assert (await on.state()).recording_toggles == []
        assert (await on.look())[1]["call"]["recording"] == "on"
        answer, body = await on.click("pause_recording")  # the next click works
        assert (answer, body["call"]["recording"]) == (200, "paused")


async def test_only_the_agent_on_the_call_may_use_its_controls(make_bridge: BridgeFactory, database_url: str) -> None:
    """bob, a made-up leg, no session, an ended call: refused with a clear message; nothing reaches Twilio."""
    async with alice_on_a_call(make_bridge, database_url) as on:
        bob = await signed_in(on.bridge, 1002)
        status, body = await on.look(bob)
        assert (status, body["error"]) == (
            403,
            "You are not on this call: only the agent who took a call can use its controls.",
        )
        body = {"call": on.leg.sid, "action": "pause_recording", "request": str(uuid.uuid4())}
        assert (await bob.send("POST", ROUTE, json=body))[0] == 403
        assert (await on.look(leg="CA" + "f" * 32))[0] == 403
        assert (await on.look(leg=on.call.sid))[0] == 403  # the caller's leg is not alice's
        assert (await Phone(on.bridge, None).send("GET", ROUTE, params={"call": on.leg.sid}))[0] == 401
        assert on.recording_requests() == []
        await on.fake.hang_up(on.leg)
        status, body = await on.look()
        assert status == 403
    assert body["error"] in (
        "This call has ended.",
        "You are not on this call: only the agent who took a call can use its controls.",
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            {"action": "dance"},
            "unknown action 'dance': use one of add, cancel, complete, consult, end, hold, pause_recording, resume, "
            "resume_recording, transfer",
        ),
        ({"request": "x"}, "request must be the click's own id"),
        ({"call": "alice"}, "call must be your own call's CallSid"),
        ({"target": "bob"}, "target must be"),
    ],
)
async def test_bad_requests_are_refused_and_change_nothing(
    make_bridge: BridgeFactory, body: dict[str, Any], says: str
) -> None:
    """A body the bridge cannot act on: 400 saying what is wrong, nothing asked of Twilio."""
    async with alice_on_a_call(make_bridge, None) as on:
        payload = {"call": on.leg.sid, "action": "pause_recording", "request": str(uuid.uuid4()), **body}
        status, answer = await on.phone.send("POST", ROUTE, json=payload)
        assert status == 400
        assert answer["error"].startswith(says)
        assert (await on.phone.send("POST", ROUTE, data="not json"))[0] == 400
        assert on.recording_requests() == []


async def test_without_recording_the_controls_are_disabled_with_the_reason(make_bridge: BridgeFactory) -> None:
    """RECORD_CALLS=false: both controls say why they cannot work, and a click is refused."""
    async with alice_on_a_call(make_bridge, None, record_calls=False) as on:
        status, body = await on.look()
        assert body["call"]["recording"] == "off"
        why = "Calls are not recorded (RECORD_CALLS is off): there is nothing to pause."
        assert recording_can(body["call"]) == {"pause_recording": why, "resume_recording": why}
        status, body = await on.click("pause_recording")
        assert (status, body["error"]) == (409, why)


async def test_the_agent_pauses_the_recording_of_their_own_call_out(make_bridge: BridgeFactory) -> None:
    """alice calls Dana from her browser: her leg is the call itself; once Dana answers, Pause works on it."""
    async with make_bridge(stand_in=True, virtual_time=True, **controls_settings()) as bridge:
        fake = bridge.stand_in
        assert fake is not None
        fake.media.api_keys[API_KEY_SID] = API_KEY_SECRET
        app = fake.application(f"{bridge.url}/twilio/voice/outgoing", f"{bridge.url}/twilio/voice/status")
        call = await fake.call_out("client:alice", DANA, app)
        phone = await signed_in(bridge)
        status, body = await phone.send("GET", ROUTE, params={"call": call.sid})
        assert (status, body["error"]) == (403, "The customer has not answered yet.")
        customer = await fake.ringing(DANA)
        await fake.answer(customer)
        await fake.advance(5)
        request = {"call": call.sid, "action": "pause_recording", "request": str(uuid.uuid4())}
        status, body = await phone.send("POST", ROUTE, json=request)
        assert (status, body["call"]["parent"], body["call"]["recording"]) == (200, call.sid, "paused")
        bob = await signed_in(bridge, 1002)
        assert (await bob.send("GET", ROUTE, params={"call": call.sid}))[0] == 403
        await fake.hang_up(customer)
        status, body = await phone.send("GET", ROUTE, params={"call": call.sid})
        assert (status, body["error"]) == (403, "This call has ended.")


async def test_a_bridge_in_another_process_cannot_take_a_controls_confirmation(make_bridge: BridgeFactory) -> None:
    """`bridge replay` posts webhooks only: a `confirmed` line is reported, the webhooks still go."""
    async with make_bridge() as bridge:
        path = recording("inbound_recording_paused")
        report = await replay_files([path], base_url=bridge.url, auth_token=bridge.auth_token)
        confirmed = [number for number, line in enumerate(path.read_text().splitlines(), 1) if '"confirmed"' in line]
        assert report.failures == [
            f"inbound_recording_paused.jsonl:{number} a control's confirmation needs the bridge in this process "
            "(bridge demo FILE)"
            for number in confirmed
        ]
        assert report.sent == len(path.read_text().splitlines()) - 2


async def test_a_capture_keeps_the_confirmed_pause(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    """RECORD_DIR: the call's file gets the pause as the bridge ingested it, ready to replay with the webhooks."""
    async with alice_on_a_call(make_bridge, None, record_dir=str(tmp_path / "captured")) as on:
        request = str(uuid.uuid4())
        assert (await on.click("pause_recording", request))[0] == 200
        lines = [json.loads(line) for line in (tmp_path / "captured" / f"{on.call.sid}.jsonl").read_text().splitlines()]
    (confirmed,) = [line["confirmed"] for line in lines if "confirmed" in line]
    assert confirmed["key"] == f"control:{request}:done"
    assert (confirmed["event"]["kind"], confirmed["event"]["call_sid"]) == ("recording_paused", on.call.sid)
    assert lines[-1]["at"] >= lines[0]["at"]
