"""Calls after hours, end to end: Twilio's stand-in calls a closed line, the bridge answers as the line says.

Voicemail, the closed message, a forward, and a holiday, on either store and in calls mode
(tests/hours_flows.py plays each; tests/recordings/after_hours_*.jsonl keep them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from bridge.appkeys import DESK
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge, calls_mode
from bridge.devtools.queue_demo import ALICE, DANA, ERIN, finished, twilio
from tests import hours_flows as flows
from tests.conftest import BridgeFactory, call_outcome, call_records, voice_comments

Rig = Callable[..., AbstractAsyncContextManager[LocalBridge]]
HOURS = "Our hours are Monday to Friday, 9 AM to 5 PM, Chicago time."


@pytest.fixture
def rig(make_bridge: BridgeFactory, database_url: str) -> Rig:
    """Run one flow's bridge on either store, in calls mode, from the flow's start (or another)."""

    @asynccontextmanager
    async def running(name: str, **settings: Any) -> AsyncIterator[LocalBridge]:
        _, _, start, _ = flows.FLOWS[name]
        options = {**flows.settings_of(name), **calls_mode(), "stand_in_start": start, **settings}
        async with make_bridge(stand_in=True, virtual_time=True, database_url=database_url, **options) as bridge:
            yield bridge

    return running


def said(bridge: LocalBridge, call: Any) -> str:
    """Return everything the caller heard said (Twilio <Say>)."""
    return " ".join(prompt.text for prompt in twilio(bridge).heard(call) if prompt.verb == "Say")


def notes(ticket: dict[str, Any]) -> str:
    """Return a ticket's plain comments."""
    return " ".join(comment["body"] for comment in ticket["comments"] if comment["type"] == "Comment")


async def test_after_hours_voicemail_says_the_hours_and_makes_a_voicemail_in_the_lines_group(rig: Rig) -> None:
    """Saturday: nobody is rung, the caller hears Support's hours and leaves a message: a via 44 ticket."""
    async with rig("voicemail") as bridge:
        (call,) = await flows.voicemail(bridge)
        assert twilio(bridge).legs(call) == []  # no agent rang
        assert await bridge.app[DESK].waiting() == []
        heard = said(bridge, call)
        snapshot = bridge.sandbox.snapshot()
    assert f"We are closed now. {HOURS} Please leave a message" in heard
    (ticket,) = call_outcome(snapshot, call.sid)
    assert (ticket["via_id"], ticket["group_id"], ticket["brand_id"]) == (44, 5001, 6001)
    assert ticket["subject"] == f"Voicemail after hours from {DANA}"
    assert "after_hours" in ticket["tags"]
    assert len(voice_comments(ticket)) == 1
    (record,) = call_records(snapshot, call.sid)
    assert record["outside_business_hours"] is True
    assert record["voicemail"] is True
    assert record["completion_status"] == "abandoned_in_voicemail"
    assert record["wait_time"] is None  # nobody was waited for


async def test_after_hours_message_says_closed_and_the_hours_then_hangs_up(rig: Rig) -> None:
    """The line's `message`: the caller hears it is closed and its hours; the call ends; nobody is offered it."""
    async with rig("message") as bridge:
        (call,) = await flows.message(bridge)
        assert twilio(bridge).legs(call) == []
        heard = said(bridge, call)
        snapshot = bridge.sandbox.snapshot()
    assert heard == f"Thank you for calling. We are closed now. {HOURS} Please call again then. Goodbye."
    assert call.status == "completed"
    (ticket,) = call_outcome(snapshot, call.sid)
    assert (ticket["via_id"], ticket["group_id"]) == (45, 5001)
    assert ticket["subject"] == f"Call after hours from {ERIN}"
    assert ticket["tags"] == ["after_hours"]
    assert "after hours: the line was closed. The caller heard the closed message" in notes(ticket)
    (record,) = call_records(snapshot, call.sid)
    assert (record["outside_business_hours"], record["completion_status"]) == (True, "completed")
    assert record["agent_id"] is None


async def test_a_configured_after_hours_message_is_said_instead_of_the_bridges_words(rig: Rig) -> None:
    """`after_hours_message` replaces the bridge's words (here before a message and the hang-up)."""
    lines = flows.support("message", after_hours_message='"Acme is closed for the weekend."')
    async with rig("message", lines=lines) as bridge:
        (call,) = await flows.message(bridge)
        assert said(bridge, call) == "Acme is closed for the weekend."


async def test_after_hours_forward_dials_the_number_and_notes_it_on_a_call_ticket(rig: Rig) -> None:
    """The line forwards after hours: the caller is put through to the number, nobody the bridge knows rings."""
    async with rig("forward") as bridge:
        (call,) = await flows.forward(bridge)
        (leg,) = twilio(bridge).legs(call)
        assert leg.to == flows.FORWARD_TO
        heard = said(bridge, call)
        snapshot = bridge.sandbox.snapshot()
    assert heard == ""  # no message configured: straight to the forward
    (ticket,) = call_outcome(snapshot, call.sid)
    assert (ticket["via_id"], ticket["assignee_id"], ticket["group_id"]) == (45, None, 5001)
    assert ticket["tags"] == ["after_hours"]
    assert f"after hours: the line was closed, so it was forwarded to {flows.FORWARD_TO}, which answered." in notes(
        ticket
    )
    (record,) = call_records(snapshot, call.sid)
    assert (record["outside_business_hours"], record["completion_status"]) == (True, "completed")
    assert record["talk_time"] == 40
    assert record["agent_id"] is None


async def test_a_forward_nobody_answers_goes_to_the_lines_voicemail(rig: Rig) -> None:
    """The after-hours number rings out: the caller hears the voicemail greeting, as after a menu's forward."""
    async with rig("forward") as bridge:
        fake = twilio(bridge)
        call = await fake.incoming(DANA, DEMO_NUMBER)
        await fake.ringing(flows.FORWARD_TO)
        await fake.advance(40)  # Twilio's <Dial> timeout: 30 s
        heard = said(bridge, call)
        await fake.hang_up(call)
        await finished(bridge, call)
        snapshot = bridge.sandbox.snapshot()
    assert bridge.settings.voicemail_greeting in heard
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["subject"] == f"Missed call after hours from {DANA}"
    assert {"missed_call", "after_hours"} <= set(ticket["tags"])
    assert "It was forwarded, and nobody answered (no-answer)." in notes(ticket)
    (record,) = call_records(snapshot, call.sid)
    assert (record["outside_business_hours"], record["completion_status"]) == (True, "abandoned_in_voicemail")


async def test_a_holiday_closes_an_open_weekday(rig: Rig) -> None:
    """Christmas, a Friday at 10:00 in Chicago, is a holiday: voicemail, as after hours."""
    async with rig("holiday") as bridge:
        (call,) = await flows.holiday(bridge)
        assert twilio(bridge).legs(call) == []
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert (ticket["via_id"], ticket["tags"]) == (44, ["after_hours"])
    (record,) = call_records(snapshot, call.sid)
    assert record["outside_business_hours"] is True


async def test_within_hours_the_call_rings_the_lines_agents(rig: Rig) -> None:
    """The next Monday at 10:00 in Chicago the same line is open: alice rings and answers; no after-hours mark."""
    monday = flows.SATURDAY + timedelta(days=2)
    async with rig("voicemail", stand_in_start=monday) as bridge:
        fake = twilio(bridge)
        call = await fake.incoming(DANA, DEMO_NUMBER)
        leg = await fake.ringing(ALICE)
        await fake.answer(leg)
        await fake.advance(20)
        await fake.hang_up(leg)
        await finished(bridge, call)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert "after_hours" not in (ticket["tags"] or [])
    (record,) = call_records(snapshot, call.sid)
    assert record["outside_business_hours"] is None
