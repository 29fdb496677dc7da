"""Calls whose callbacks were lost are reconciled through a local fake of Twilio's REST API."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridge.appkeys import INGEST
from bridge.core.calls import MAX_CALL_SECONDS
from bridge.core.events import CallEvent, EventKind
from bridge.devtools.demo import LocalBridge
from bridge.ops.reconcile import RECORDING_MEANING
from bridge.twilio.rest import TwilioApi
from tests.conftest import BridgeFactory, ManualClock, call_outcome, parent_sid, recording, voice_comments

ACCOUNT = "AC455c03f9e322135d9c681cabb529d68e"
PARENT, CHILD, REC = (
    "CA2f564bde5c5db0df77f46f156be543fc",
    "CA65761ccfba8ccde090453b5f8ebc7436",
    "RE5eab47b37ef27c0e5986cfffd23c1ff1",
)
STALE_MINUTES = 30
FETCHED = web.AppKey("fetched", list)
RECORDING_STATUS = web.AppKey("recording_status", list)


def fake_twilio(parent_status: str) -> web.Application:
    """Serve the three REST resources reconciliation reads, in Twilio's JSON shapes."""
    live = parent_status == "in-progress"  # a long call: the agent is still talking, nothing recorded yet
    parent = {
        "sid": PARENT,
        "status": parent_status,
        "duration": "104",
        "from": "+14155550123",
        "to": "+16505550100",
        "direction": "inbound",
        "parent_call_sid": None,
        "start_time": "Tue, 15 Sep 2026 14:02:07 +0000",
        "end_time": "Tue, 15 Sep 2026 14:03:51 +0000",
    }
    child = {
        "sid": CHILD,
        "status": "in-progress" if live else "completed",
        "duration": None if live else "95",
        "from": "+14155550123",
        "to": "client:alice",
        "direction": "outbound-dial",
        "parent_call_sid": PARENT,
        "start_time": "Tue, 15 Sep 2026 14:02:15 +0000",
        "end_time": None if live else "Tue, 15 Sep 2026 14:03:50 +0000",
    }
    calls = {PARENT: parent, CHILD: child}
    recording = {
        "sid": REC,
        "call_sid": PARENT,
        "status": "completed",
        "duration": "95",
        "source": "DialVerb",
        "start_time": "Tue, 15 Sep 2026 14:02:15 +0000",
    }
    recordings = [] if live else [recording]
    status = ["completed"]  # a test may say the recording is still processing
    base = f"/2010-04-01/Accounts/{ACCOUNT}"
    fetched: list[str] = []

    async def fetch(request: web.Request) -> web.Response:
        fetched.append(request.match_info["sid"])
        call = calls.get(request.match_info["sid"])
        return web.json_response(call) if call else web.json_response({"code": 20404}, status=404)

    async def listing(request: web.Request) -> web.Response:
        parent = request.query.get("ParentCallSid")
        return web.json_response({"calls": [c for c in calls.values() if c["parent_call_sid"] == parent],
                                  "next_page_uri": None, "page": 0, "page_size": 50})  # fmt: skip

    async def recording_list(request: web.Request) -> web.Response:
        sid = request.query.get("CallSid")
        found = [{**r, "status": status[0]} for r in recordings if r["call_sid"] == sid]
        return web.json_response({"recordings": found, "next_page_uri": None, "page": 0, "page_size": 50})

    app = web.Application()
    app[FETCHED] = fetched
    app[RECORDING_STATUS] = status
    app.router.add_get(base + "/Calls/{sid}.json", fetch)
    app.router.add_get(base + "/Calls.json", listing)
    app.router.add_get(base + "/Recordings.json", recording_list)
    return app


@pytest.fixture
async def twilio_api() -> AsyncIterator[Any]:
    """Start a fake Twilio REST API whose parent call has completed."""
    async with TestServer(fake_twilio("completed"), host="127.0.0.1") as server:
        yield server


def partial(tmp_path: Path) -> Path:
    """Scenario A up to the answer: every later callback was lost."""
    lines = recording("inbound_answered").read_text().splitlines()[:4]
    path = tmp_path / "partial.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


async def go_quiet(bridge: LocalBridge, clock: ManualClock) -> None:
    """Let the delivered part settle, then move time past CALL_STALE_MINUTES and run a reconciliation round."""
    await bridge.settle()
    clock.advance(STALE_MINUTES * 60 + 1)
    await bridge.reconciler.run_once()


async def test_lost_callbacks_are_recovered_from_twilio(
    make_bridge: BridgeFactory, twilio_api: Any, tmp_path: Path
) -> None:
    """Twilio's REST API supplies the end, the talk time and the recording; the ticket gets all three."""
    url = str(twilio_api.make_url("")).rstrip("/")
    clock = ManualClock()
    async with make_bridge(twilio_account_sid=ACCOUNT, twilio_api_url=url, clock=clock) as bridge:
        assert (await bridge.replay([partial(tmp_path)])).ok
        await go_quiet(bridge, clock)
        await bridge.settle_calls()
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), PARENT)
        (comment,) = voice_comments(ticket)
        assert comment["call_duration"] == 95
        assert comment["recording_url"].startswith(f"{bridge.url}/recordings/{REC}.mp3?sig=")
        assert comment["answered_by_id"] == 1001


async def test_without_twilio_credentials_calls_close_with_what_is_known(
    make_bridge: BridgeFactory, tmp_path: Path
) -> None:
    """No TWILIO_ACCOUNT_SID: past Twilio's 4-hour limit the call gets its one voice comment, without a recording."""
    clock = ManualClock()
    async with make_bridge(clock=clock) as bridge:
        assert (await bridge.replay([partial(tmp_path)])).ok
        await go_quiet(bridge, clock)
        assert not (await bridge.store.get_call(PARENT)).finished  # type: ignore[union-attr]
        clock.advance(MAX_CALL_SECONDS)  # no call lasts this long: it has ended, whatever was lost
        await bridge.reconciler.run_once()
        clock.advance(121)  # then the recording gets its usual wait
        await bridge.settle_calls()
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), PARENT)
        (comment,) = voice_comments(ticket)
        assert "recording_url" not in comment


async def test_a_call_still_in_progress_at_twilio_is_left_alone(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    """A long call is not closed out while Twilio says it is still going."""
    app = fake_twilio("in-progress")
    clock = ManualClock()
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("")).rstrip("/")
        async with make_bridge(twilio_account_sid=ACCOUNT, twilio_api_url=url, clock=clock) as bridge:
            assert (await bridge.replay([partial(tmp_path)])).ok
            await go_quiet(bridge, clock)
            assert await bridge.reconciler.run_once() == 0  # looked at just now: not stale again yet
            await go_quiet(bridge, clock)
            assert app[FETCHED] == [PARENT, PARENT]  # looked up, found live, looked up again a period later
            await bridge.settle()
            (ticket,) = call_outcome(bridge.sandbox.snapshot(), PARENT)
            assert voice_comments(ticket) == []
            call = await bridge.store.get_call(PARENT)
            assert call is not None
            assert not call.finished


async def test_a_call_twilio_does_not_know_is_closed_out(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    """Twilio answers 404 for the call (another account, deleted): close it out instead of asking forever."""
    clock = ManualClock()
    async with TestServer(web.Application(), host="127.0.0.1") as server:  # knows no call at all
        url = str(server.make_url("")).rstrip("/")
        async with make_bridge(twilio_account_sid=ACCOUNT, twilio_api_url=url, clock=clock) as bridge:
            assert (await bridge.replay([partial(tmp_path)])).ok
            await go_quiet(bridge, clock)
            clock.advance(121)  # closed out: the recording gets its usual wait, then goes without
            await bridge.settle_calls()
            (ticket,) = call_outcome(bridge.sandbox.snapshot(), PARENT)
            (comment,) = voice_comments(ticket)
            assert "recording_url" not in comment


async def test_notices_raised_by_reconciliation_and_timers_are_logged(
    make_bridge: BridgeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A notice raised while a reconciliation or a timer is applied reaches the log, like a webhook's."""
    caplog.set_level(logging.INFO, logger="bridge")
    clock = ManualClock()
    async with make_bridge(clock=clock, missed_call_tickets=False, recording_wait_seconds=0) as bridge:
        ingest = bridge.app[INGEST]
        # Only a leg's callback arrived: the bridge never learns who called whom.
        leg = CallEvent(kind=EventKind.LEG_STATUS, call_sid=PARENT, at=clock(), leg_sid=CHILD, status="ringing")
        await ingest(["leg"], leg)
        # Another call hung up before any <Dial>: its recording wait fires as a durable timer.
        other = "CA" + "7" * 32
        parent = {"direction": "inbound", "from_number": "+14155550123", "to_number": "+16505550100"}
        await ingest(["start"], CallEvent(kind=EventKind.CALL_STARTED, call_sid=other, at=clock(), **parent))
        ended = CallEvent(kind=EventKind.CALL_STATUS, call_sid=other, at=clock(), status="completed", **parent)
        await ingest(["end"], ended)
        await go_quiet(bridge, clock)
        await bridge.settle_calls()
    messages = [record.getMessage() for record in caplog.records if record.name == "bridge.ingest"]
    assert any(PARENT in text and "without ever learning who called whom" in text for text in messages)
    assert any(other in text and "MISSED_CALL_TICKETS is off" in text for text in messages)


async def test_a_silent_long_call_keeps_its_recording(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    """A 45-minute call sends nothing while it lasts: it is not closed out, and ends with its real voice comment."""
    path = recording("inbound_long_call")
    lines = path.read_text().splitlines()
    head, tail = tmp_path / "head.jsonl", tmp_path / "tail.jsonl"
    head.write_text("\n".join(lines[:4]) + "\n")  # up to the answer
    tail.write_text("\n".join(lines[4:]) + "\n")
    clock = ManualClock()
    async with make_bridge(clock=clock) as bridge:
        assert (await bridge.replay([head])).ok
        await go_quiet(bridge, clock)  # 30 minutes of silence
        await go_quiet(bridge, clock)  # and 30 more
        call = await bridge.store.get_call(parent_sid(path))
        assert call is not None
        assert not call.finished
        assert (await bridge.replay([tail])).ok
        await bridge.settle_calls()
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), parent_sid(path))
        (comment,) = voice_comments(ticket)
        assert comment["call_duration"] == 2700
        # RECORDINGS=proxy (the default since recordings links): the bridge's signed link to the recording.
        assert re.search(r"/recordings/RE[0-9a-f]{32}\.mp3\?sig=", comment["recording_url"])


async def test_callbacks_after_a_close_out_still_make_the_voice_comment(
    make_bridge: BridgeFactory, twilio_api: Any, tmp_path: Path
) -> None:
    """Twilio says the call ended but its recording is still processing: wait for it, never call it absent."""
    url = str(twilio_api.make_url("")).rstrip("/")
    twilio_api.app[RECORDING_STATUS][0] = "processing"
    late = tmp_path / "late.jsonl"
    late.write_text("".join(line + "\n" for line in recording("inbound_answered").read_text().splitlines()
                            if "/recording-status" in line))  # fmt: skip
    clock = ManualClock()
    async with make_bridge(twilio_account_sid=ACCOUNT, twilio_api_url=url, clock=clock) as bridge:
        assert (await bridge.replay([partial(tmp_path)])).ok
        await go_quiet(bridge, clock)  # Twilio: the call is over, its recording is processing
        call = await bridge.store.get_call(PARENT)
        assert call is not None
        assert call.over
        assert not call.finished
        assert voice_comments(call_outcome(bridge.sandbox.snapshot(), PARENT)[0]) == []
        assert (await bridge.replay([late])).ok  # the real callback, late
        await bridge.settle_calls()
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), PARENT)
        (comment,) = voice_comments(ticket)
        assert f"/recordings/{REC}.mp3?sig=" in comment["recording_url"]  # RECORDINGS=proxy: the bridge's link
        assert comment["call_duration"] == 95


@pytest.mark.parametrize(
    ("status", "meaning"),
    [("completed", "completed"), ("absent", "absent"), ("failed", "absent"), ("deleted", "absent"),
     ("processing", None), ("in-progress", None), ("paused", None), ("stopped", None)],
)  # fmt: skip
def test_every_rest_recording_status_has_a_meaning(status: str, meaning: str | None) -> None:
    """Each Recording status of Twilio's REST API means ready, never, or wait (None)."""
    assert RECORDING_MEANING[status] == meaning


async def test_twilio_lists_are_read_to_their_last_page() -> None:
    """A list longer than a page is followed through next_page_uri, which carries the query on."""
    base = f"/2010-04-01/Accounts/{ACCOUNT}"
    legs = [{"sid": f"CA{n:032x}", "status": "completed"} for n in range(3)]
    asked: list[str] = []

    async def listing(request: web.Request) -> web.Response:
        asked.append(request.path_qs)
        if request.query.get("ParentCallSid") != PARENT:
            return web.json_response({"calls": []})
        number = int(request.query.get("Page", "0"))
        following = f"{base}/Calls.json?ParentCallSid={PARENT}&PageSize=2&Page=1" if number == 0 else None
        return web.json_response({"calls": legs[number * 2 : number * 2 + 2], "next_page_uri": following})

    app = web.Application()
    app.router.add_get(base + "/Calls.json", listing)
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as session:
        api = TwilioApi(session, ACCOUNT, (ACCOUNT, "token"), str(server.make_url("")))
        assert await api.legs(PARENT) == legs
    first = f"{base}/Calls.json?ParentCallSid={PARENT}"
    assert asked == [first, first + "&PageSize=2&Page=1"]
