"""Today's bridge driven by the Twilio stand-in: a plain answered call gives Zendesk what its recording gives."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import BridgeFactory, call_outcome, parent_sid, recording, voice_comments

DANA, OURS = "+14155550123", "+16505550100"
SID = re.compile(r"\b(CA|RE)[0-9a-f]{32}\b")
LINK = re.compile(r"http://127\.0\.0\.1:\d+|sig=[^&]+")  # each bridge signs its own recording links


def comparable(ticket: dict[str, Any]) -> dict[str, Any]:
    """Keep what must match between two calls of the same shape: sids and times differ."""
    comments = [
        {key: LINK.sub("…", SID.sub(r"\1…", str(value))) for key, value in data.items() if key not in ("started_at",)}
        for data in voice_comments(ticket)
    ]
    fields = ("via_id", "requester_id", "assignee_id", "tags", "status", "subject")
    return {"ticket": {name: ticket.get(name) for name in fields}, "voice comments": comments}


async def test_an_answered_call_through_the_stand_in_matches_its_recording(make_bridge: BridgeFactory) -> None:
    """Dana calls, alice answers at 8 s and hangs up after 95 s: the same ticket and voice comment as the replay."""
    replayed_file = recording("inbound_answered")
    async with make_bridge() as replayed:
        assert (await replayed.replay([replayed_file])).ok
        await replayed.settle_calls()
        (expected,) = call_outcome(replayed.sandbox.snapshot(), parent_sid(replayed_file))
    async with make_bridge(stand_in=True) as bridge:
        fake = bridge.stand_in
        assert fake is not None
        call = await fake.incoming(DANA, OURS)
        leg = await fake.ringing("client:alice")
        await fake.advance(8)
        await fake.answer(leg)
        await fake.advance(95)
        await fake.hang_up(leg)
        assert call.status == "completed"
        assert all(sent.status in (200, 204) for sent in fake.sent)
        await bridge.settle_calls()
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), call.sid)
    assert comparable(ticket) == comparable(expected)
    (comment,) = voice_comments(ticket)
    assert comment["call_duration"] == 95
    assert comment["answered_by_id"] == 1001
