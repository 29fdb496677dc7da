"""Hold and resume, end to end: Twilio's stand-in follows the bridge's TwiML and REST requests."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest

from bridge.appkeys import DESK, HELD_WATCH, ROOM_CONTROL
from bridge.core import call_room
from bridge.devtools.demo import LocalBridge, calls_mode
from bridge.devtools.fake_twilio import Call, Recording
from bridge.devtools.queue_demo import TEAM, finished, twilio
from bridge.devtools.sandbox import FaultRule
from bridge.devtools.twilio_media import silent_mp3
from bridge.devtools.waiting import wait_until
from bridge.dispatch.room import ControlFailed
from bridge.ops.recordings import CHUNK
from bridge.resources import LINK_SIGNER
from bridge.store import DEAD
from bridge.zendesk.outbox.worker import RetryPolicy
from tests import room_flows as flows
from tests.conftest import BridgeFactory, call_outcome, call_records, parent_sid, recording, voice_comments

ACCOUNT = "AC455c03f9e322135d9c681cabb529d68e"  # the bundled recordings' account: a bridge that rings knows it
Rig = Callable[..., AbstractAsyncContextManager[LocalBridge]]


@pytest.fixture
def rig(make_bridge: BridgeFactory, database_url: str) -> Rig:
    """Run one flow's bridge on either store, in calls mode."""

    @asynccontextmanager
    async def running(*, calls: bool = True, **settings: Any) -> AsyncIterator[LocalBridge]:
        options = {"agents": dict(TEAM), **(calls_mode() if calls else {}), **settings}
        async with make_bridge(stand_in=True, virtual_time=True, database_url=database_url, **options) as bridge:
            yield bridge

    return running


async def test_a_held_call_is_resumed_and_keeps_one_ticket_with_its_hold_time(rig: Rig) -> None:
    """20 s talk, 30 s on hold, 40 s talk: one ticket, one record, hold_time 30, talk_time 60."""
    async with rig() as bridge:
        (call,) = await flows.held_then_resumed(bridge)
        fake = bridge.stand_in
        assert fake is not None
        heard = [prompt for prompt in fake.heard(call) if prompt.verb == "Play"]
        snapshot = bridge.sandbox.snapshot()
    assert heard, "the customer heard the hold music"
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["via_id"] == 45
    assert ticket["assignee_id"] == 1001
    (record,) = call_records(snapshot, call.sid)
    assert record["completion_status"] == "completed"
    assert record["hold_time"] == 30
    assert record["talk_time"] == 60
    assert record["agent_id"] == 1001


async def test_a_customer_who_hangs_up_on_hold_is_abandoned_on_hold(rig: Rig) -> None:
    """Dana hangs up after 50 s of hold music: the record says abandoned_on_hold, with the hold time."""
    async with rig() as bridge:
        (call,) = await flows.hung_up_on_hold(bridge)
        snapshot = bridge.sandbox.snapshot()
    (record,) = call_records(snapshot, call.sid)
    assert record["completion_status"] == "abandoned_on_hold"
    assert record["hold_time"] == 50


async def test_an_agent_who_hangs_up_with_the_customer_on_hold_ends_the_call_for_them(rig: Rig) -> None:
    """alice holds Dana 20 s and hangs up: Dana's call ends (no hold music until Twilio's limit), completed."""
    async with rig() as bridge:
        call = await flows.answered(bridge)
        control = bridge.app[ROOM_CONTROL]
        with pytest.raises(ControlFailed, match="not on hold"):
            await control.end(await flows.state(bridge, call), flows.ALICE)  # not in a room yet: nothing to end
        await twilio(bridge).advance(15)
        await control.hold(await flows.state(bridge, call), "hold-1", None)
        await twilio(bridge).settle()
        await twilio(bridge).advance(20)
        await control.end(await flows.state(bridge, call), flows.ALICE)
        await finished(bridge, call)
        assert call.status == "completed"
        await control.end(await flows.state(bridge, call), flows.ALICE)  # again: the room has ended, nothing to do
        snapshot = bridge.sandbox.snapshot()
    (record,) = call_records(snapshot, call.sid)
    assert record["completion_status"] == "completed"
    assert record["hold_time"] == 20


async def test_a_cold_transfer_gives_the_ticket_to_the_agent_who_took_the_call(rig: Rig) -> None:
    """alice hands Dana to bob: one ticket, reassigned to bob with a note, popped to him; the record names bob."""
    async with rig() as bridge:
        (call,) = await flows.transferred_cold(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["assignee_id"] == 1002
    notes = [c["body"] for c in ticket["comments"] if c["type"] == "Comment"]
    assert any("transferred by client:alice to client:bob" in note for note in notes), notes
    (record,) = call_records(snapshot, call.sid)
    assert record["agent_id"] == 1002
    assert record["hold_time"] == 6
    assert record["completion_status"] == "completed"


async def test_a_customer_left_on_hold_by_an_agent_who_went_away_goes_back_to_the_line(rig: Rig) -> None:
    """alice closes her softphone with Dana on hold: a minute on, Dana's line has her back and bob takes her."""
    async with rig() as bridge:
        (call,) = await flows.left_on_hold(bridge)
        assert await bridge.app[HELD_WATCH].give_back() == 0  # over: nothing to give back, now or again
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["assignee_id"] == 1002
    notes = [c["body"] for c in ticket["comments"] if c["type"] == "Comment"]
    returned = [note for note in notes if note.startswith("Call returned to the queue")]
    assert len(returned) == 1, notes
    assert "client:alice went offline with the customer on hold; client:bob took it" in returned[0]
    (record,) = call_records(snapshot, call.sid)
    assert record["agent_id"] == 1002
    assert record["hold_time"] == 65  # the minute alone, then bob's ring
    assert record["completion_status"] == "completed"


async def test_a_held_customer_stays_with_an_agent_who_is_gone_for_less_than_the_timeout(rig: Rig) -> None:
    """alice's softphone reloads (a goodbye, then back within the minute): Dana stays hers, on hold."""
    async with rig() as bridge:
        call = await flows.answered(bridge)
        await bridge.app[ROOM_CONTROL].hold(await flows.state(bridge, call), "hold-1", None)
        await twilio(bridge).settle()
        await bridge.app[DESK].goodbye(flows.ALICE)
        await twilio(bridge).advance(bridge.settings.presence_timeout_seconds - 1)
        assert await bridge.app[HELD_WATCH].give_back() == 0
        await bridge.app[DESK].seen(flows.ALICE)
        await twilio(bridge).advance(bridge.settings.presence_timeout_seconds / 2)
        assert await bridge.app[HELD_WATCH].give_back() == 0
        held = await flows.state(bridge, call)
    assert held.room is not None
    seen = call_room.spans(held.room)
    assert seen.on_hold
    assert seen.in_line is None


async def test_a_transfer_to_an_agent_zendesk_refuses_as_assignee_still_notes_it(rig: Rig) -> None:
    """bob's Zendesk user is suspended: Zendesk refuses him as assignee, so the note goes without; nothing dead."""
    async with rig(agents={flows.ALICE: 1001, flows.BOB: 1004}) as bridge:
        (call,) = await flows.transferred_cold(bridge)
        snapshot = bridge.sandbox.snapshot()
        dead = (await bridge.store.stats(bridge.clock())).dead
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["assignee_id"] == 1001  # still alice's: Zendesk would not give it to bob
    notes = [c["body"] for c in ticket["comments"] if c["type"] == "Comment"]
    assert any("transferred by client:alice to client:bob" in note for note in notes), notes
    assert dead == 0


@pytest.mark.parametrize("complete", [True, False], ids=["complete", "cancel"])
async def test_a_consultation_completes_as_a_transfer_or_is_called_off(rig: Rig, complete: bool) -> None:
    """Consult bob, then complete (bob keeps Dana) or cancel (alice keeps her); consultation_time is 15 s."""
    async with rig() as bridge:
        (call,) = await flows.consulted(bridge, complete=complete)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    (record,) = call_records(snapshot, call.sid)
    assert ticket["assignee_id"] == (1002 if complete else 1001)
    assert record["agent_id"] == (1002 if complete else 1001)
    assert record["consultation_time"] == 15
    assert record["completion_status"] == "completed"


async def test_a_third_party_joins_and_the_call_stays_one_ticket(rig: Rig) -> None:
    """An outside number added: one ticket, one record, still alice's."""
    async with rig() as bridge:
        (call,) = await flows.three_way(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["assignee_id"] == 1001
    (record,) = call_records(snapshot, call.sid)
    assert record["agent_id"] == 1001
    assert record["completion_status"] == "completed"


async def test_a_transfer_to_a_number_keeps_the_ticket_and_notes_where_the_call_went(rig: Rig) -> None:
    """Dana handed to an outside number: the ticket stays alice's, with a note naming the number."""
    async with rig() as bridge:
        (call,) = await flows.transferred_to_number(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["assignee_id"] == 1001
    notes = [c["body"] for c in ticket["comments"] if c["type"] == "Comment"]
    assert any("transferred by client:alice to +14155550177" in note for note in notes), notes
    (record,) = call_records(snapshot, call.sid)
    assert record["agent_id"] == 1001
    assert record["hold_time"] == 5
    assert record["completion_status"] == "completed"


@pytest.mark.parametrize("ring_out", [False, True], ids=["answered", "rang_out"])
async def test_a_transfer_to_a_line_waits_for_its_agent_and_gives_him_the_ticket(rig: Rig, ring_out: bool) -> None:
    """alice sends Dana to Sales; bob frees up, is rung into her room (once ringing out) and takes her."""
    async with rig(lines=flows.TWO_LINES) as bridge:
        (call,) = await flows.transferred_to_line(bridge, ring_out=ring_out)
        (bob,) = [agent for agent in await bridge.app[DESK].agents() if agent.identity == flows.BOB]
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["group_id"] == 5002
    assert ticket["assignee_id"] == 1002
    notes = [c["body"] for c in ticket["comments"] if c["type"] == "Comment"]
    assert any("transferred by client:alice to the line Sales" in note for note in notes), notes
    (record,) = call_records(snapshot, call.sid)
    assert record["agent_id"] == 1002
    assert record["completion_status"] == "completed"
    assert bob.calls == 1  # answering starts the count of missed offers over: the pure tests count the ring-out


async def test_a_customer_who_hangs_up_waiting_in_a_line_abandoned_it_in_the_queue(rig: Rig) -> None:
    """Nobody of Sales was free: the record says abandoned_in_queue; the ticket stays alice's, nobody took it."""
    async with rig(lines=flows.TWO_LINES) as bridge:
        (call,) = await flows.hung_up_in_line(bridge)
        waiting = await bridge.app[DESK].waiting()
        snapshot = bridge.sandbox.snapshot()
    assert waiting == []
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["assignee_id"] == 1001
    (record,) = call_records(snapshot, call.sid)
    assert record["completion_status"] == "abandoned_in_queue"


async def test_a_transfer_to_a_line_names_a_known_line_and_a_second_click_changes_nothing(rig: Rig) -> None:
    """An unknown line is refused (404), nothing done; Sales twice is one transfer; another line meanwhile: 409."""
    async with rig(lines=flows.TWO_LINES) as bridge:
        control = bridge.app[ROOM_CONTROL]
        call = await flows.sent_to_sales(bridge)
        with pytest.raises(ControlFailed) as unknown:
            await control.transfer_to_line(await flows.state(bridge, call), "Nowhere", "line-2")
        again = await control.transfer_to_line(await flows.state(bridge, call), flows.SALES, "line-3")
        with pytest.raises(ControlFailed) as elsewhere:
            await control.transfer_to_line(await flows.state(bridge, call), "Support", "line-4")
        with pytest.raises(ControlFailed, match="waits in the line Sales"):
            await control.end(await flows.state(bridge, call), flows.ALICE)  # the line's call now, not alice's
        waiting = await bridge.app[DESK].waiting()
        stand_in = bridge.stand_in
        assert stand_in is not None
        await stand_in.hang_up(call)
    assert (unknown.value.status, elsewhere.value.status) == (404, 409)
    assert again is not None
    assert [(row.call_sid, row.line, row.room) for row in waiting] == [(call.sid, "Sales", True)]


Flow = Callable[[LocalBridge], Awaitable[list[Call]]]
RECORDED_FLOWS: dict[str, Flow] = {
    "held": flows.held_then_resumed,
    "transferred": flows.transferred_cold,
    "consulted": functools.partial(flows.consulted, complete=True),
    "three_way": flows.three_way,
}


def parts_of(bridge: LocalBridge, call: Call) -> list[Recording]:
    """Return the recordings Twilio's stand-in made of a call, in the order they began: its own, then its rooms'."""
    fake = bridge.stand_in
    assert fake is not None
    made = fake.account.recordings.values()
    return sorted((r for r in made if r.call_sid == call.sid or r.conference_sid), key=lambda r: (r.started, r.sid))


async def played(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """GET a recording link as the agent's browser does: no credentials."""
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


@pytest.mark.parametrize("api", ["tickets", "calls"])
@pytest.mark.parametrize("mode", ["proxy", "zendesk", "twilio"])
@pytest.mark.parametrize("flow", list(RECORDED_FLOWS), ids=list(RECORDED_FLOWS))
async def test_the_voice_comment_plays_the_whole_conversation_in_one_recording(
    rig: Rig, flow: str, mode: str, api: str
) -> None:
    """Before the room and in it: two recordings, one voice comment whose one link plays part 1 then part 2.

    Held and consulted calls get their ticket at the answer (the voice comment, or the record's update, comes at the
    end); transferred and three-way ones at the end (the ticket, or the record, made with it): each way a recording is
    linked.
    """
    ticket_on = "answer" if flow in ("held", "consulted") else "end"
    async with rig(calls=api == "calls", recordings=mode, ticket_on=ticket_on) as bridge:
        bridge.twilio.tagged = True  # each recording's bytes carry its sid: the order played shows
        (call,) = await RECORDED_FLOWS[flow](bridge)
        first, second = parts_of(bridge, call)
        assert (first.source, second.source) == ("DialVerb", "Conference")
        whole = bridge.twilio.audio_of(first.sid, 2) + bridge.twilio.audio_of(second.sid, 2)
        snapshot = bridge.sandbox.snapshot()
        (ticket,) = call_outcome(snapshot, call.sid)
        if api == "calls":
            (record,) = call_records(snapshot, call.sid)
            link = record["recording_url"]
            assert record["recording_time"] == first.duration + second.duration
        else:
            (comment,) = voice_comments(ticket)
            link = comment["recording_url"]
        notes = [c["body"] for c in ticket["comments"] if c["type"] == "Comment"]
        if mode == "proxy":
            assert link.startswith(f"{bridge.url}/recordings/{first.sid}.mp3?then={second.sid}&sig=")
            status, headers, body = await played(link)
            assert (status, body) == (200, whole)
            assert headers["Content-Type"] == "audio/mpeg"
            # A seek in a recording in parts gets the whole body: its length is known only at its end.
            status, headers, body = await played(link, Range="bytes=100-")
            assert (status, headers["Accept-Ranges"], body) == (200, "none", whole)
            tampered = link.replace(f"then={second.sid}", f"then={first.sid}")
            assert (await played(tampered))[0] == 403
        elif mode == "zendesk":
            assert link.startswith(f"{bridge.zendesk_url}/attachments/token/")
            status, _, body = await played(link)
            assert (status, body) == (200, whole)
            attached = [a["content_url"] for c in ticket["comments"] for a in c.get("attachments", [])]
            assert attached == [link]
        else:
            assert bridge.stand_in is not None
            twilio_url = f"https://api.twilio.com/2010-04-01/Accounts/{bridge.stand_in.account.sid}/Recordings"
            assert link == f"{twilio_url}/{first.sid}.mp3"
            (note,) = [note for note in notes if "recording is in 2 parts" in note]
            assert f"1. {twilio_url}/{first.sid}.mp3" in note
            assert f"2. {twilio_url}/{second.sid}.mp3" in note
        if mode != "twilio":
            assert not any("recording is in" in note for note in notes)


class RoomRecordingsGone(set[str]):
    """The recordings deleted at Twilio: every conference recording, whenever it is made."""

    def __init__(self, made: dict[str, Recording]) -> None:
        """Watch the stand-in's recordings."""
        super().__init__()
        self._made = made

    def __contains__(self, sid: object) -> bool:
        """Tell whether a recording is a conference's."""
        found = self._made.get(str(sid))
        return found is not None and found.source == "Conference"


async def proxied_held_call(bridge: LocalBridge) -> tuple[str, Recording, Recording]:
    """Play the held flow in tickets mode; return its voice comment's link and its two parts."""
    bridge.twilio.tagged = True
    (call,) = await flows.held_then_resumed(bridge)
    first, second = parts_of(bridge, call)
    (ticket,) = call_outcome(bridge.sandbox.snapshot(), call.sid)
    (comment,) = voice_comments(ticket)
    return str(comment["recording_url"]), first, second


async def test_a_link_in_parts_refuses_what_it_does_not_name_and_ends_early_when_a_part_is_gone(rig: Rig) -> None:
    """Signed parts only, each filed; a first part gone at Twilio is a 404; a later one ends the stream after part 1."""
    async with rig(calls=False) as bridge:
        link, first, second = await proxied_held_call(bridge)
        signer = bridge.app[LINK_SIGNER]
        unfiled = "RE" + "7" * 32
        assert (await played(signer.link(first.sid, [unfiled])))[0] == 404  # signed, but never linked
        assert (await played(signer.link(second.sid)))[0] == 200  # each part was filed as a recording of the call
        assert (await played(link.replace(f"then={second.sid}", f"then={second.sid},{second.sid}")))[0] == 403
        async with aiohttp.ClientSession() as session, session.head(link) as response:
            assert (response.status, await response.read()) == (200, b"")
        bridge.twilio.missing.add(second.sid)
        status, _, body = await played(link)
        assert (status, body) == (200, bridge.twilio.audio_of(first.sid, 2))
        bridge.twilio.missing.add(first.sid)
        assert (await played(link))[0] == 404


async def test_an_upload_in_parts_is_retried_and_attached_once(rig: Rig) -> None:
    """RECORDINGS=zendesk: uploads that fail or lose their answer are retried; one attachment plays both parts."""
    # Virtual time stands still while the test waits: retries are due at once.
    async with rig(calls=False, recordings="zendesk", retry=RetryPolicy(base=0.0, cap=0.0, settle=0.0)) as bridge:
        bridge.sandbox.add_faults(
            [
                FaultRule(method="POST", path_prefix="/api/v2/uploads", kind="503", times=1),
                FaultRule(method="POST", path_prefix="/api/v2/uploads", kind="drop_after", times=1),
                FaultRule(method="PUT", path_prefix="/api/v2/tickets", kind="drop_after", times=1),
            ]
        )
        link, first, second = await proxied_held_call(bridge)
        (ticket,) = [t for t in bridge.sandbox.snapshot()["tickets"] if voice_comments(t)]
        attached = [a for c in ticket["comments"] for a in c.get("attachments", [])]
        assert [a["content_url"] for a in attached] == [link]
        assert attached[0]["file_name"] == f"{first.sid}.mp3"
        whole = bridge.twilio.audio_of(first.sid, 2) + bridge.twilio.audio_of(second.sid, 2)
        status, _, body = await played(link)
        assert (status, body) == (200, whole)


async def test_an_upload_whose_later_part_is_gone_is_a_dead_letter(rig: Rig) -> None:
    """RECORDINGS=zendesk: a part Twilio no longer has cannot be uploaded, and the voice comment says so."""
    async with rig(calls=False, recordings="zendesk") as bridge:
        fake = bridge.stand_in
        assert fake is not None
        bridge.twilio.missing = RoomRecordingsGone(fake.account.recordings)
        await flows.held_then_resumed(bridge)
        await bridge.settle()
        (dead,) = await bridge.store.list_actions([DEAD])
        assert dead.kind == "add_voice_comment"
        assert "no longer at Twilio" in (dead.last_error or "")


def recorded_parts(name: str) -> list[str]:
    """Return the recordings a bundled room call reported complete, in the order they began."""
    found: dict[str, str] = {}
    for line in recording(name).read_text().splitlines():
        params = json.loads(line)["params"]
        if params.get("RecordingStatus") == "completed":
            found[params["RecordingSid"]] = params["RecordingStartTime"]
    return sorted(found, key=lambda sid: (parsedate_to_datetime(found[sid]), sid))


ROOM_REPLAYS = ["room_held_then_resumed", "room_transferred_cold", "room_consult_completed", "room_three_way"]


@pytest.mark.parametrize(("seed", "api"), [(11, "tickets"), (12, "tickets"), (13, "calls"), (14, "calls")])
@pytest.mark.parametrize("name", ROOM_REPLAYS)
async def test_a_replayed_room_call_links_its_recording_in_parts_whatever_the_order(
    make_bridge: BridgeFactory, name: str, seed: int, api: str
) -> None:
    """The bundled room calls, every webhook twice and shuffled: one voice comment, one link playing both parts.

    A short RECORDING_WAIT: the comment must not go before both parts are in, nor need the wait to get them.
    """
    first, second = recorded_parts(name)
    settings = {**(calls_mode() if api == "calls" else {}), "recording_wait_seconds": 5}
    async with make_bridge(twilio_account_sid=ACCOUNT, **settings) as bridge:
        bridge.twilio.tagged = True
        report = await bridge.replay([recording(name)], repeat=2, shuffle=True, seed=seed)
        assert report.ok, report.failures
        await bridge.settle_calls()
        snapshot = bridge.sandbox.snapshot()
        (ticket,) = call_outcome(snapshot, parent_sid(recording(name)))
        if api == "calls":
            (record,) = call_records(snapshot, parent_sid(recording(name)))
            link = str(record["recording_url"])
        else:
            (comment,) = voice_comments(ticket)
            link = str(comment["recording_url"])
        assert link.startswith(f"{bridge.url}/recordings/{first}.mp3?then={second}&sig=")
        status, _, body = await played(link)
        assert (status, body) == (200, bridge.twilio.audio_of(first, 2) + bridge.twilio.audio_of(second, 2))


async def test_a_player_that_goes_away_mid_stream_ends_a_link_in_parts_quietly(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """The player closes after the first bytes (it often does, to seek): the stream ends, logged, nothing else."""
    caplog.set_level(logging.INFO, "bridge.recordings")
    async with rig(calls=False) as bridge:
        link, _, _ = await proxied_held_call(bridge)
        bridge.twilio.audio[2] = silent_mp3(60, 2)  # several chunks
        bridge.twilio.gate = asyncio.Event()
        async with aiohttp.ClientSession() as session, session.get(link) as response:
            assert response.status == 200
            await asyncio.wait_for(response.content.readexactly(CHUNK), timeout=20)
        bridge.twilio.gate.set()
        await wait_until(lambda: "stream ended early" in caplog.text, what="the proxy noticing")


async def test_a_voice_comment_in_parts_whose_ticket_went_plays_from_the_bridge_on_the_follow_up(rig: Rig) -> None:
    """RECORDINGS=zendesk: the ticket is deleted before the file can be attached; the comment goes where the
    conversation lives, with the bridge's link to every part (Twilio's URL would play only the first)."""
    async with rig(calls=False, recordings="zendesk") as bridge:
        bridge.twilio.tagged = True
        fake = twilio(bridge)
        call = await flows.answered(bridge)
        await bridge.settle()
        (made,) = call_outcome(bridge.sandbox.snapshot(), call.sid)
        bridge.sandbox.delete_ticket(made["id"])
        control = bridge.app[ROOM_CONTROL]
        await fake.advance(20)
        await control.hold(await flows.state(bridge, call), "hold-1", None)
        await fake.settle()
        await fake.advance(30)
        await control.resume(await flows.state(bridge, call), "resume-1")
        alice = await flows.rejoin(bridge, call)
        await fake.advance(40)
        await fake.hang_up(alice)
        await finished(bridge, call)
        first, second = parts_of(bridge, call)
        (comment,) = [c for t in bridge.sandbox.snapshot()["tickets"] for c in voice_comments(t)]
        link = str(comment["recording_url"])
        assert link.startswith(f"{bridge.url}/recordings/{first.sid}.mp3?then={second.sid}&sig=")
        status, _, body = await played(link)
        assert (status, body) == (200, bridge.twilio.audio_of(first.sid, 2) + bridge.twilio.audio_of(second.sid, 2))
