"""Menus end to end: Twilio's stand-in calls a line with a menu, the caller presses keys, Zendesk's sandbox records.

Support (the demo number) has a menu: 1 Sales, 2 Support, 3 a number the call is forwarded to, 9 voicemail,
Sales its default (tests/menu_flows.py plays the flows; tests/recordings/menu_*.jsonl keep them). Each
runs on both stores, in calls mode, so the ticket, its note and tags, and the record's ivr fields are seen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from bridge.appkeys import DESK
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge, calls_mode
from bridge.devtools.queue_demo import ALICE, BOB, DANA, choose, finished, queued, twilio
from tests import menu_flows as flows
from tests.conftest import BridgeFactory, call_outcome, call_records

Rig = Callable[..., AbstractAsyncContextManager[LocalBridge]]
SUPPORT_GROUP, SALES_GROUP = 5001, 5002  # the sandbox names them "Support" and "Phones"
SUPPORT_BRAND, SALES_BRAND = 6001, 6002


@pytest.fixture
def rig(make_bridge: BridgeFactory, database_url: str) -> Rig:
    """Run a bridge whose Support line has the menu, on either store, in calls mode."""

    @asynccontextmanager
    async def running(**settings: Any) -> AsyncIterator[LocalBridge]:
        options = flows.settings(**calls_mode(), **settings)
        async with make_bridge(stand_in=True, virtual_time=True, database_url=database_url, **options) as bridge:
            yield bridge

    return running


def notes(ticket: dict[str, Any]) -> list[str]:
    """Return the bodies of a ticket's private notes."""
    return [c["body"] for c in ticket["comments"] if c["type"] == "Comment" and not c["public"]]


def menu_note(ticket: dict[str, Any]) -> str:
    """Return the ticket's one note of the caller's way through the menu."""
    (note,) = [body for body in notes(ticket) if body.startswith("The caller went through the menu")]
    return note


def ivr(record: dict[str, Any]) -> dict[str, Any]:
    """Return a call record's menu fields."""
    names = ("ivr_time_spent", "ivr_hops", "ivr_action", "ivr_routed_to", "ivr_destination_group_name")
    return {name: record[name] for name in (*names, "customer_requested_voicemail")}


async def test_a_key_for_a_line_rings_only_that_lines_agents_and_its_team_gets_the_ticket(rig: Rig) -> None:
    """1 is Sales: bob rings though alice is free; the ticket and record are Sales', the nickname stays Support's."""
    async with rig() as bridge:
        (call,) = await flows.menu_to_line(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert (ticket["assignee_id"], ticket["brand_id"]) == (1002, SALES_BRAND)
    assert {"ivr", "ivr_1"} <= set(ticket["tags"])
    assert menu_note(ticket).endswith("- pressed 1: the line Sales")
    (record,) = call_records(snapshot, call.sid)
    assert (record["to_line"], record["to_line_nickname"], record["brand_id"]) == (DEMO_NUMBER, "Support", SALES_BRAND)
    assert ivr(record) == {
        "ivr_time_spent": flows.CHOOSING,
        "ivr_hops": 1,
        "ivr_action": "group",
        "ivr_routed_to": "Sales",
        "ivr_destination_group_name": "Phones",  # group 5002's name in the sandbox
        "customer_requested_voicemail": None,
    }


async def test_nobody_is_offered_a_caller_still_in_the_menu(rig: Rig) -> None:
    """alice is free, yet nothing rings while Dana listens; she presses 1 with bob away: she waits in Sales' queue."""
    async with rig() as bridge:
        fake = twilio(bridge)
        await choose(bridge, "away", BOB)
        call = await fake.incoming(DANA, DEMO_NUMBER)
        await flows.in_menu(bridge, call)
        await fake.advance(flows.CHOOSING)
        assert fake.legs(call) == []
        assert await bridge.app[DESK].waiting() == []  # not in any line's queue either
        await fake.press(call, "1")
        await queued(bridge, call)
        assert call.queue is not None
        assert call.queue.queue.name == "bridge-sales"
        assert fake.legs(call) == []  # alice serves Support only
        await fake.hang_up(call)
        await finished(bridge, call)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert "missed_call" in ticket["tags"]
    assert ticket["group_id"] == SALES_GROUP  # nobody assigned: the team of the line the caller chose


async def test_voicemail_at_the_menu_rings_nobody_and_says_the_customer_asked_for_it(rig: Rig) -> None:
    """9: the greeting at once; a voicemail ticket with the note; customer_requested_voicemail on the record."""
    async with rig() as bridge:
        (call,) = await flows.menu_to_voicemail(bridge)
        snapshot = bridge.sandbox.snapshot()
        heard = [prompt.text for prompt in twilio(bridge).heard(call)]
    assert bridge.settings.voicemail_greeting in heard
    (ticket,) = call_outcome(snapshot, call.sid)
    assert (ticket["via_id"], ticket["group_id"], ticket["brand_id"]) == (44, SUPPORT_GROUP, SUPPORT_BRAND)
    assert {"ivr", "ivr_9"} <= set(ticket["tags"])
    assert menu_note(ticket).endswith("- pressed 9: voicemail")
    (record,) = call_records(snapshot, call.sid)
    assert record["completion_status"] == "abandoned_in_voicemail"
    assert record["voicemail"] is True
    assert record["wait_time"] is None  # the caller never waited for an agent
    assert ivr(record) == {
        "ivr_time_spent": flows.CHOOSING,
        "ivr_hops": 1,
        "ivr_action": "voicemail",
        "ivr_routed_to": "voicemail",
        "ivr_destination_group_name": None,
        "customer_requested_voicemail": True,
    }


async def test_a_key_for_a_number_forwards_the_call_there(rig: Rig) -> None:
    """3: the emergency line rings (no agent does) and answers; an unassigned ticket in Support's group."""
    async with rig() as bridge:
        (call,) = await flows.menu_to_number(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert (ticket["via_id"], ticket["assignee_id"], ticket["group_id"]) == (45, None, SUPPORT_GROUP)
    assert {"ivr", "ivr_3"} <= set(ticket["tags"])
    assert any(f"forwarded by the menu to {flows.EMERGENCY}" in body for body in notes(ticket))
    (record,) = call_records(snapshot, call.sid)
    assert (record["completion_status"], record["agent_id"], record["talk_time"]) == ("completed", None, 30)
    assert (record["ivr_action"], record["ivr_routed_to"]) == ("phone_number", flows.EMERGENCY)


async def test_a_forward_nobody_answers_offers_voicemail(rig: Rig) -> None:
    """3, and the emergency line is busy: the caller hears the voicemail greeting, never an agent's ring."""
    async with rig() as bridge:
        fake = twilio(bridge)
        call = await fake.incoming(DANA, DEMO_NUMBER)
        await flows.in_menu(bridge, call)
        await fake.press(call, "3")
        leg = await fake.ringing(flows.EMERGENCY)
        await fake.reject(leg, "busy")
        await fake.advance(20)
        heard = [prompt.text for prompt in fake.heard(call)]
        assert [leg.to for leg in fake.legs(call)] == [flows.EMERGENCY]
        await fake.hang_up(call)
        await finished(bridge, call)
        snapshot = bridge.sandbox.snapshot()
    assert bridge.settings.voicemail_greeting in heard
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["via_id"] == 44
    (record,) = call_records(snapshot, call.sid)
    assert record["ivr_action"] == "phone_number"


async def test_an_unnamed_key_repeats_the_menu_at_most_twice_then_takes_the_default(rig: Rig) -> None:
    """8, 8, 8: the menu twice more, then Sales (its default); bob answers."""
    async with rig() as bridge:
        fake = twilio(bridge)
        call = await fake.incoming(DANA, DEMO_NUMBER)
        for hearing in (1, 2, 3):
            await flows.in_menu(bridge, call, hearing)
            assert fake.legs(call) == []
            await fake.press(call, "8")
            await fake.advance(5)
        leg = await fake.ringing(BOB)
        await fake.answer(leg)
        await fake.advance(10)
        await fake.hang_up(leg)
        await finished(bridge, call)
        snapshot = bridge.sandbox.snapshot()
        prompts = [prompt.text for prompt in fake.heard(call)]
    assert prompts.count(flows.PROMPT) == 3
    assert prompts.count("Sorry, that is not one of the choices.") == 2
    (ticket,) = call_outcome(snapshot, call.sid)
    assert {"ivr", "ivr_invalid"} <= set(ticket["tags"])
    assert "once more: the line Sales (the default)" in menu_note(ticket)


async def test_a_caller_who_hangs_up_in_the_menu_is_abandoned_in_ivr(rig: Rig) -> None:
    """Gone before pressing anything: a missed-call ticket saying so, and a record abandoned_in_ivr."""
    async with rig(recording_wait_seconds=5) as bridge:
        fake = twilio(bridge)
        call = await fake.incoming(DANA, DEMO_NUMBER)
        await flows.in_menu(bridge, call)
        await fake.advance(2)
        await fake.hang_up(call)
        await fake.advance(bridge.settings.recording_wait_seconds)
        await finished(bridge, call)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert {"missed_call", "ivr", "ivr_abandoned"} <= set(ticket["tags"])
    assert menu_note(ticket).endswith("- hung up in the menu")
    (record,) = call_records(snapshot, call.sid)
    assert record["completion_status"] == "abandoned_in_ivr"
    assert (record["ivr_hops"], record["ivr_time_spent"], record["ivr_action"]) == (1, 2, None)


async def test_the_lines_greeting_comes_first_and_an_audio_prompt_is_played(rig: Rig) -> None:
    """A greeting, then the prompt: a URL is <Play>ed inside the <Gather>, and a key still cuts it short."""
    audio = "https://example.com/acme-menu.mp3"
    lines = flows.MENU_LINES.replace(f'prompt = "{flows.PROMPT}"', f'prompt = "{audio}"').replace(
        "[line.menu]", 'greeting = "Thanks for calling Acme."\n\n[line.menu]'
    )
    async with rig(lines=lines) as bridge:
        fake = twilio(bridge)
        call = await fake.incoming(DANA, DEMO_NUMBER)
        await fake.advance(4)  # the greeting, then the prompt starts
        await fake.press(call, "2")
        leg = await fake.ringing(ALICE)
        await fake.answer(leg)
        await fake.advance(5)
        await fake.hang_up(leg)
        await finished(bridge, call)
        heard = [(prompt.verb, prompt.text) for prompt in fake.heard(call)]
    assert heard[:2] == [("Say", "Thanks for calling Acme."), ("Play", audio)]


# --- menus and business hours -----------------------------------------------------------------------------------

CLOSED = 'after_hours = "{}"\n\n[line.hours]\ntimezone = "America/Chicago"\n'  # no weekly hours: closed whenever run
CLOSED_WORDS = "Thank you for calling. We are closed now."


def sales_closed(after_hours: str) -> str:
    """Return the menu's lines with Sales (the last line, key 1 and the default) closed, under this after hours."""
    return flows.MENU_LINES + CLOSED.format(after_hours)


async def test_a_key_for_a_closed_line_leads_to_that_lines_after_hours_voicemail(rig: Rig) -> None:
    """1 is Sales, closed: nobody rings; Dana hears Sales is closed and leaves a message; Sales' team gets it."""
    async with rig(lines=flows.SALES_CLOSED) as bridge:
        (call,) = await flows.menu_to_closed_line(bridge)
        assert twilio(bridge).legs(call) == []  # no agent of either line rang
        assert await bridge.app[DESK].waiting() == []
        heard = [prompt.text for prompt in twilio(bridge).heard(call)]
        snapshot = bridge.sandbox.snapshot()
    assert heard[0] == flows.PROMPT
    assert any(text.startswith(f"{CLOSED_WORDS} Please leave a message") for text in heard[1:])
    (ticket,) = call_outcome(snapshot, call.sid)
    assert (ticket["via_id"], ticket["group_id"], ticket["brand_id"]) == (44, SALES_GROUP, SALES_BRAND)
    assert ticket["subject"] == f"Voicemail after hours from {DANA}"
    assert {"after_hours", "ivr", "ivr_1"} <= set(ticket["tags"])
    assert menu_note(ticket).endswith("- pressed 1: the line Sales")
    (record,) = call_records(snapshot, call.sid)
    assert (record["outside_business_hours"], record["voicemail"]) == (True, True)
    assert record["completion_status"] == "abandoned_in_voicemail"
    assert record["wait_time"] is None  # nobody was offered the call
    assert (record["ivr_action"], record["ivr_routed_to"]) == ("group", "Sales")


async def test_a_key_for_a_closed_line_with_a_message_says_it_and_ends_the_call(rig: Rig) -> None:
    """Sales closed under `message`: its closed words, the call ends; a note on a Sales ticket, the record completed."""
    async with rig(lines=sales_closed("message")) as bridge:
        fake = twilio(bridge)
        call = await fake.incoming(DANA, DEMO_NUMBER)
        await flows.in_menu(bridge, call)
        await fake.press(call, "1")
        await fake.advance(10)
        await finished(bridge, call)
        assert fake.legs(call) == []
        heard = [prompt.text for prompt in fake.heard(call)]
        snapshot = bridge.sandbox.snapshot()
    assert heard[-1] == f"{CLOSED_WORDS} Goodbye."
    assert call.status == "completed"
    (ticket,) = call_outcome(snapshot, call.sid)
    assert (ticket["via_id"], ticket["group_id"]) == (45, SALES_GROUP)
    assert {"after_hours", "ivr", "ivr_1"} <= set(ticket["tags"])
    (record,) = call_records(snapshot, call.sid)
    assert (record["outside_business_hours"], record["completion_status"]) == (True, "completed")


async def test_a_closed_line_with_a_menu_plays_no_menu(rig: Rig) -> None:
    """Support itself closed: after hours wins, so Dana hears no menu, only Support's closed words and the beep."""
    lines = flows.MENU_LINES.replace("[line.menu]", CLOSED.format("voicemail") + "\n[line.menu]")
    async with rig(lines=lines) as bridge:
        fake = twilio(bridge)
        call = await fake.incoming(DANA, DEMO_NUMBER)
        await fake.advance(30)
        await fake.hang_up(call)
        await finished(bridge, call)
        heard = [prompt.text for prompt in fake.heard(call)]
        snapshot = bridge.sandbox.snapshot()
    assert flows.PROMPT not in heard
    assert heard[0].startswith(f"{CLOSED_WORDS} Please leave a message")
    (ticket,) = call_outcome(snapshot, call.sid)
    assert (ticket["via_id"], ticket["group_id"], ticket["tags"]) == (44, SUPPORT_GROUP, ["after_hours"])
    (record,) = call_records(snapshot, call.sid)
    assert (record["outside_business_hours"], record["ivr_hops"]) == (True, None)
