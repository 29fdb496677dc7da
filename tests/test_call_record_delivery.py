"""ZENDESK_API=calls against the sandbox: recording links on records, and tickets that close under them."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bridge.devtools.demo import LocalBridge, calls_mode
from bridge.devtools.sandbox import FaultRule
from bridge.store import DEAD
from tests.conftest import (
    BridgeFactory,
    call_outcome,
    call_records,
    parent_sid,
    recording,
    tpe_comments,
)

ANSWERED = "inbound_answered"
ANSWERED_REC = "RE5eab47b37ef27c0e5986cfffd23c1ff1"


async def status_of(url: str) -> int:
    """GET a URL with no credentials and return the status."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        await response.read()
        return response.status


async def close_the_ticket_while_hanging(bridge: LocalBridge, path_prefix: str) -> str:
    """Replay an answered call, close its ticket while a POST to `path_prefix` hangs, settle; return its CallSid."""
    bridge.sandbox.add_faults([FaultRule("POST", path_prefix, "hang")])
    path = recording(ANSWERED)
    assert (await bridge.replay([path])).ok
    async with asyncio.timeout(30):
        await bridge.sandbox.wait_for_hangs(1)
    (ticket,) = call_outcome(bridge.sandbox.snapshot(), parent_sid(path))
    bridge.sandbox.close_ticket(ticket["id"])
    bridge.sandbox.release_hangs()
    await bridge.settle()
    return parent_sid(path)


@pytest.mark.parametrize("mode", ["proxy", "zendesk", "twilio"])
async def test_the_records_recording_is_linked_as_recordings_says(make_bridge: BridgeFactory, mode: str) -> None:
    """RECORDINGS applies to call records too: a signed link, a Zendesk attachment (attached once), or Twilio's URL."""
    async with make_bridge(recordings=mode, **calls_mode()) as bridge:
        path = recording(ANSWERED)
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        snapshot = bridge.sandbox.snapshot()
        (record,) = call_records(snapshot, parent_sid(path))
        (ticket,) = call_outcome(snapshot, parent_sid(path))
        link = record["recording_url"]
        attached = [a["content_url"] for c in ticket["comments"] for a in c.get("attachments", [])]
        if mode == "proxy":
            assert link.startswith(f"{bridge.url}/recordings/{ANSWERED_REC}.mp3?sig=")
            assert await status_of(link) == 200
        elif mode == "zendesk":
            assert link.startswith(f"{bridge.zendesk_url}/attachments/token/")
            assert attached == [link]
            assert await status_of(link) == 200
        else:
            assert link.endswith(f"/Recordings/{ANSWERED_REC}.mp3")
            assert "api.twilio.com" in link
        assert tpe_comments(ticket)[0]["recording_url"] == link  # the comment reads the record


async def test_a_ticket_closed_before_its_record_moves_the_record_to_a_follow_up(make_bridge: BridgeFactory) -> None:
    """An agent closes the call's ticket while its record's create hangs: the record shows on a follow-up, once."""
    async with make_bridge(**calls_mode()) as bridge:
        sid = await close_the_ticket_while_hanging(bridge, "/api/v2/calls")
        snapshot = bridge.sandbox.snapshot()
        (record,) = call_records(snapshot, sid)
        closed, follow_up = call_outcome(snapshot, sid)
        assert follow_up["via_followup_source_id"] == closed["id"]
        assert record["ticket_id"] == follow_up["id"]
        assert [c["call_id"] for c in tpe_comments(follow_up)] == [record["id"]]
        assert tpe_comments(closed) == []
        assert record["completion_status"] == "completed"  # the update found the record all the same
        assert await bridge.store.list_actions([DEAD]) == []


async def test_a_closed_ticket_under_recordings_zendesk_still_gets_the_records_end(make_bridge: BridgeFactory) -> None:
    """RECORDINGS=zendesk: the ticket closes while the upload hangs; the record still ends, linked via the bridge."""
    async with make_bridge(recordings="zendesk", **calls_mode()) as bridge:
        sid = await close_the_ticket_while_hanging(bridge, "/api/v2/uploads")
        (record,) = call_records(bridge.sandbox.snapshot(), sid)
        assert record["completion_status"] == "completed"
        assert record["recording_url"].startswith(f"{bridge.url}/recordings/{ANSWERED_REC}.mp3?sig=")
        assert await status_of(record["recording_url"]) == 200
        assert await bridge.store.list_actions([DEAD]) == []


async def test_an_uncertain_create_on_a_ticket_is_found_again_not_repeated(make_bridge: BridgeFactory) -> None:
    """The record's create commits but its answer is lost: the retry finds it through the ticket's comment."""
    async with make_bridge(**calls_mode()) as bridge:
        bridge.sandbox.add_faults([FaultRule("POST", "/api/v2/calls", "drop_after")])
        path = recording(ANSWERED)
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        snapshot = bridge.sandbox.snapshot()
        (record,) = call_records(snapshot, parent_sid(path))
        (ticket,) = call_outcome(snapshot, parent_sid(path))
        assert [c["call_id"] for c in tpe_comments(ticket)] == [record["id"]]
        creates = [r for r in snapshot["requests"] if r["method"] == "POST" and r["path"].startswith("/api/v2/calls")]
        assert len(creates) == 1  # found, not sent again
        assert record["recording_url"]  # and the update reached the record the look-up found


async def test_calls_mode_without_the_app_is_a_dead_letter_naming_it(make_bridge: BridgeFactory) -> None:
    """An app id the account does not have: Zendesk refuses the record (422), which becomes a dead letter."""
    async with make_bridge(**{**calls_mode(), "zendesk_app_id": 424242}) as bridge:
        assert (await bridge.replay([recording(ANSWERED)])).ok
        await bridge.settle()
        dead = {row.kind: row for row in await bridge.store.list_actions([DEAD])}
        assert sorted(dead) == ["create_call_record", "update_call_record"]  # the update needs the record
        assert "App id: 424242 is not an app installed" in (dead["create_call_record"].last_error or "")
        # The ticket, which does not depend on the record, is there as in tickets mode.
        assert len(bridge.sandbox.snapshot()["tickets"]) == 1


async def test_a_voicemail_ticket_deleted_before_its_record_leaves_the_record_unlinked(
    make_bridge: BridgeFactory,
) -> None:
    """An agent deletes the voicemail ticket while its record's create hangs: the record is made, without the link."""
    async with make_bridge(**calls_mode()) as bridge:
        bridge.sandbox.add_faults([FaultRule("POST", "/api/v2/calls", "hang")])
        path = recording("voicemail_transcribed")
        assert (await bridge.replay([path])).ok
        async with asyncio.timeout(30):
            await bridge.sandbox.wait_for_hangs(1)
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), parent_sid(path))
        bridge.sandbox.delete_ticket(ticket["id"])
        bridge.sandbox.release_hangs()
        await bridge.settle()
        (record,) = call_records(bridge.sandbox.snapshot(), parent_sid(path))
        assert record["ticket_id"] is None
        assert record["voicemail"] is True
        assert await bridge.store.list_actions([DEAD]) == []
