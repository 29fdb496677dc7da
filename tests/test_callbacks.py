"""Callbacks end to end: the stand-in follows the bridge's TwiML and the calls it places; the sandbox records."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bridge.appkeys import DESK, INGEST
from bridge.cli import main
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge
from bridge.devtools.fake_twilio import Call, Delivery
from bridge.devtools.queue_demo import ALICE, BOB, DANA, TEAM, choose, twilio
from bridge.devtools.waiting import wait_until
from bridge.live.callbacks import QueuedCallbacks
from tests import callback_flows as flows
from tests.conftest import (
    BridgeFactory,
    Rig,
    call_outcome,
    call_records,
    flow_rig,
    recording,
    tpe_comments,
    voice_comments,
)
from tests.test_cli_routing import configure
from tests.test_ops import scrape
from tests.test_scenarios import EXPECTED, QUEUEING, api_settings, check


@pytest.fixture
def rig(make_bridge: BridgeFactory, database_url: str) -> Rig:
    """Run one flow's bridge on either store, in calls mode, with its settings."""
    return flow_rig(make_bridge, database_url, flows.FLOWS, flows.TEAM)


def conversation(snapshot: dict[str, Any], ticket: dict[str, Any], call_sid: str) -> dict[str, Any]:
    """Return the record of the callback's call, shown on the ticket of the call that asked (calls mode)."""
    (shown,) = [comment for comment in tpe_comments(ticket) if comment["external_id"] != call_sid]
    (record,) = [record for record in snapshot["calls"].values() if record["id"] == shown["call_id"]]
    return record


def notes(ticket: dict[str, Any]) -> str:
    """Return a ticket's plain comments, one after another."""
    return "\n".join(comment["body"] for comment in ticket["comments"] if comment["type"] == "Comment")


async def test_a_callback_answered_at_the_first_try_is_logged_on_the_callers_ticket(rig: Rig) -> None:
    """Dana asks to be called back; alice frees up, is rung first, then Dana is dialled and talks: one ticket."""
    async with rig("callback_answered") as bridge:
        (call,) = await flows.callback_answered(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["via_id"] == 45
    assert "callback_requested" in ticket["tags"]
    assert "asked to be called back at +14155550123" in notes(ticket)
    assert ticket["assignee_id"] == 1001  # the agent who reached her: the ticket is hers now
    assert "Callback attempt 1 of 3 at " in notes(ticket)
    assert " by client:alice: +14155550123 answered." in notes(ticket)
    talk = conversation(snapshot, ticket, call.sid)
    assert (talk["direction"], talk["agent_id"], talk["completion_status"]) == ("outbound", 1001, "completed")
    assert talk["to_line"] == "+14155550123"
    assert talk["from_line"] == "+16505550100"  # the line's number
    assert talk["talk_time"] == 40
    assert talk["recording_url"]
    assert (talk["callback"], talk["callback_source"], talk["callback_number"]) == (True, "queue", "+14155550123")
    assert talk["ticket_id"] == ticket["id"]
    assert voice_comments(ticket) == []  # in calls mode the records show the calls
    (record,) = call_records(snapshot, call.sid)
    assert record["callback"] is True
    assert record["callback_source"] == "queue"
    assert record["callback_number"] == "+14155550123"


async def test_a_callback_nobody_answers_is_tried_again_after_the_retry_time(rig: Rig) -> None:
    """The first turn rings out at Dana's end (a note says so); CALLBACK_RETRY_MINUTES later she answers."""
    async with rig("callback_retried") as bridge:
        (call,) = await flows.callback_retried(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert "Callback attempt 1 of 3" in notes(ticket)
    assert "+14155550123 did not answer. Next attempt after" in notes(ticket)
    assert conversation(snapshot, ticket, call.sid)["agent_id"] == 1001
    assert ticket["assignee_id"] == 1001
    assert "Callback attempt 2 of 3 at " in notes(ticket)


@pytest.mark.parametrize("api", ["tickets", "calls"])
async def test_the_ticket_goes_to_the_agent_who_reached_the_customer(
    make_bridge: BridgeFactory, database_url: str, api: str
) -> None:
    """Bob's turn rings out at Dana's end, alice's reaches her: the ticket is alice's, with a note saying so."""
    rig = flow_rig(make_bridge, database_url, flows.FLOWS, flows.TEAM, calls=api == "calls")
    async with rig("callback_retried") as bridge:
        fake = twilio(bridge)
        await choose(bridge, "away", ALICE, BOB)
        call = await fake.incoming(DANA, DEMO_NUMBER)
        await flows.ask_for_callback(bridge, call)
        await choose(bridge, "available", BOB)
        await flows.turn(bridge, DANA, "no-answer", agent=BOB)
        await choose(bridge, "away", BOB)
        await choose(bridge, "available", ALICE)
        await fake.advance(bridge.settings.callback_retry_minutes * 60 + 5)
        await flows.turn(bridge, DANA, "answered", agent=ALICE)
        await flows.settled(bridge, call)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["assignee_id"] == 1001  # alice, who talked with Dana; not bob, whose turn missed her
    said = notes(ticket)
    assert "by client:bob: +14155550123 did not answer." in said
    assert "Callback attempt 2 of 3 at " in said
    assert "by client:alice: +14155550123 answered." in said
    if api == "tickets":
        assert [comment["answered_by_id"] for comment in voice_comments(ticket)] == [1001]
    else:
        assert conversation(snapshot, ticket, call.sid)["agent_id"] == 1001


async def test_a_callback_is_closed_with_a_note_after_its_attempts(rig: Rig) -> None:
    """Busy, a voicemail that never pressed 1, no answer: three attempts, then the request is closed."""
    async with rig("callback_exhausted") as bridge:
        (call,) = await flows.callback_exhausted(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    said = notes(ticket)
    assert "Callback attempt 1 of 3" in said
    assert "was busy" in said
    assert "answered but never pressed 1" in said
    assert "Callback attempt 3 of 3" in said
    assert "did not answer" in said
    assert "not reached in 3 attempts" in said
    assert "callback_exhausted" in ticket["tags"]
    assert ticket["assignee_id"] is None  # nobody reached her: the ticket stays with the group
    assert len(tpe_comments(ticket)) == 1  # the request's record alone: no conversation


async def test_a_caller_may_key_another_number_of_their_country_but_no_premium_one(rig: Rig) -> None:
    """A premium-rate number is refused and asked again; a number of the line's country is called back."""
    async with rig("callback_other_number") as bridge:
        (call,) = await flows.callback_other_number(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert f"at {flows.OTHER} (a number they keyed)" in notes(ticket)
    assert conversation(snapshot, ticket, call.sid)["to_line"] == flows.OTHER
    (record,) = call_records(snapshot, call.sid)
    assert record["callback_number"] == flows.OTHER


async def test_an_anonymous_caller_is_asked_for_a_number(rig: Rig) -> None:
    """A withheld number cannot be called back: the caller keys one, and is called back there."""
    async with rig("callback_anonymous") as bridge:
        (call,) = await flows.callback_anonymous(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["subject"] == "Callback requested by an anonymous caller"
    assert conversation(snapshot, ticket, call.sid)["to_line"] == flows.OTHER


async def test_a_caller_who_presses_2_leaves_a_message_by_choice(rig: Rig) -> None:
    """Dana presses 2 at the offer: a voicemail ticket, its record saying the customer asked for voicemail."""
    async with rig("voicemail_by_choice") as bridge:
        (call,) = await flows.voicemail_by_choice(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert ticket["via_id"] == 44
    (record,) = call_records(snapshot, call.sid)
    assert record["customer_requested_voicemail"] is True
    assert record["voicemail"] is True
    assert not record.get("exceeded_queue_time")


async def test_an_admin_lists_and_cancels_a_callback_from_the_command_line(
    make_bridge: BridgeFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bridge queue` shows the callback in its place; `bridge queue cancel` takes it out, noted on its ticket."""
    database = tmp_path / "callbacks.db"
    async with make_bridge(
        stand_in=True, virtual_time=True, agents=dict(TEAM), database_url=f"sqlite:///{database}", **flows.SETTINGS
    ) as bridge:
        await choose(bridge, "away", ALICE, BOB)
        call = await twilio(bridge).incoming(DANA, DEMO_NUMBER)
        await flows.ask_for_callback(bridge, call)
        seen = await scrape(bridge)
        assert seen['bridge_queue_callbacks{line="default"}'] == 1  # kept in line, apart from callers holding it
        assert seen['bridge_queue_waiting{line="default"}'] == 0
        configure(monkeypatch, database)
        assert await asyncio.to_thread(main, ["queue"]) == 0
        listing = capsys.readouterr().out.splitlines()
        assert listing[0].startswith("0 waiting, 1 callback")
        assert listing[1].startswith("  1. callback to …0123")
        assert await asyncio.to_thread(main, ["queue", "cancel", call.sid]) == 0
        assert await asyncio.to_thread(main, ["queue", "cancel", call.sid]) == 2  # nothing left to cancel
        assert await bridge.app[DESK].waiting() == []
        assert (await scrape(bridge))['bridge_queue_callbacks{line="default"}'] == 0
        await choose(bridge, "available", ALICE)
        await twilio(bridge).advance(30)
        await bridge.settle_calls()
        assert not [placed for placed in twilio(bridge).account.calls.values() if placed.to == ALICE]
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert "was cancelled" in notes(ticket)
    assert "callback_cancelled" in ticket["tags"]


async def test_a_phone_agents_voicemail_never_gets_the_customer(rig: Rig) -> None:
    """A phone agent's voicemail picks up the callback: no press, no dial; a minute later the agent takes it."""
    phone = "+16505550111"
    async with rig("callback_answered", agents={phone: 1003}) as bridge:
        fake = twilio(bridge)
        await bridge.app[DESK].choose(phone, "away", by="test")
        call = await fake.incoming(DANA, DEMO_NUMBER)
        await flows.ask_for_callback(bridge, call)
        await bridge.app[DESK].choose(phone, "available", by="test")
        voicemail = await fake.ringing(phone)
        await fake.answer(voicemail)  # it hears "press 1" and never does
        await fake.advance(20)
        assert voicemail.status == "completed"
        assert not [leg for leg in fake.account.calls.values() if leg.to == DANA and leg.parent is not None]
        await fake.advance(60)  # not the same agent again at once
        agent = await fake.ringing(phone)
        await fake.answer(agent)
        await fake.press(agent, "1")
        await fake.advance(8)
        customer = await fake.ringing(DANA)
        await fake.answer(customer)
        await fake.press(customer, "1")
        await fake.advance(30)
        await fake.hang_up(customer)
        await flows.settled(bridge, call)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert conversation(snapshot, ticket, call.sid)["agent_id"] == 1003
    assert ticket["assignee_id"] == 1003
    # The agent's voicemail is no attempt to reach the customer: the turn that reached her is the first.
    assert "Callback attempt 1 of 3 at " in notes(ticket)
    assert "Callback attempt 2" not in notes(ticket)


@pytest.mark.parametrize("api", ["tickets", "calls"])
async def test_every_callback_recording_together_shuffled_twice_on_either_store(
    make_bridge: BridgeFactory, database_url: str, api: str
) -> None:
    """The callback recordings interleaved, every request twice, shuffled: each call's outcome as alone."""
    names = sorted(name for name, expect in EXPECTED.items() if expect.get("callback") or name == "voicemail_by_choice")
    assert len(names) == 6
    async with make_bridge(database_url=database_url, **api_settings(api), **QUEUEING) as bridge:
        report = await bridge.replay([recording(name) for name in names], repeat=2, shuffle=True, seed=17)
        assert report.ok, report.failures
        await bridge.settle()
        snapshot = bridge.sandbox.snapshot()
    for name in names:
        check(snapshot, name, EXPECTED[name], pops=False, ticket_on="answer", api=api)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_callbacks_whose_callbacks_twilio_shuffles_and_repeats(rig: Rig, seed: int) -> None:
    """Twilio's status callbacks of every call (the agents' too) late, out of order, some twice: the same outcome."""
    async with rig("callback_retried") as bridge:
        twilio(bridge).delivery = Delivery(shuffle=True, duplicates=0.5, seed=seed)
        (call,) = await flows.callback_retried(bridge)
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert "Callback attempt 1 of 3" in notes(ticket)
    assert conversation(snapshot, ticket, call.sid)["agent_id"] == 1001
    assert len([placed for placed in twilio(bridge).account.calls.values() if placed.to == ALICE]) == 2


async def asked_with_nobody_free(bridge: LocalBridge) -> Call:
    """alice and bob away; Dana waits past the offer, presses a key that is no choice, then 1, and confirms."""
    fake = twilio(bridge)
    await choose(bridge, "away", ALICE, BOB)
    call = await fake.incoming(DANA, DEMO_NUMBER)
    await flows.queued(bridge, call)
    await fake.advance(flows.OFFER + 15)
    await fake.press(call, "5")  # no such choice: the music, and the offer, again
    await fake.press(call, "1")
    await fake.press(call, "1#")
    await fake.advance(10)
    await flows.calls_back_later(bridge, call)
    return call


async def test_a_turn_twilio_refuses_is_no_attempt_and_the_next_one_calls_back(rig: Rig) -> None:
    """Twilio fails the create of the first turn's call: nothing rang; a minute later the next turn calls back."""
    async with rig("callback_answered") as bridge:
        fake = twilio(bridge)
        call = await asked_with_nobody_free(bridge)
        fake.account.script.rest_failures.append((503, 20503))  # Twilio docs: error 20503, "Service unavailable"
        await choose(bridge, "available", ALICE)

        async def refused() -> bool:
            (row,) = await bridge.app[DESK].waiting()
            return not fake.account.script.rest_failures and row.offered_to == () and bool(row.missed)

        await wait_until(refused, what="the first turn's create refused")
        await fake.advance(61)  # not alice again at once
        await flows.turn(bridge, DANA, "answered")
        await flows.settled(bridge, call)
        snapshot = bridge.sandbox.snapshot()
    assert len([placed for placed in fake.account.calls.values() if placed.to == ALICE]) == 1
    (ticket,) = call_outcome(snapshot, call.sid)
    assert "Callback attempt 1 of 3 at " in notes(ticket)  # the refused turn was none: the one that called back is
    assert "Callback attempt 2" not in notes(ticket)
    assert conversation(snapshot, ticket, call.sid)["agent_id"] == 1001


async def test_three_turns_twilio_refuses_in_a_row_close_the_request_and_say_what_to_do(rig: Rig) -> None:
    """Twilio refuses every create (a caller ID not verified, say): three turns, nothing rang, the request closed."""
    async with rig("callback_answered") as bridge:
        fake = twilio(bridge)
        call = await asked_with_nobody_free(bridge)
        fake.account.script.rest_failures.extend([(400, 21210)] * 3)  # Twilio docs: 21210, caller ID not verified
        await choose(bridge, "available", ALICE)
        for left in (2, 1):

            async def refused(left: int = left) -> bool:
                rows = await bridge.app[DESK].waiting()
                return len(fake.account.script.rest_failures) == left and all(row.offered_to == () for row in rows)

            await wait_until(refused, what=f"a turn refused, {left} refusals to go")
            await fake.advance(61)  # each refused turn keeps its agent from the next for a minute

        async def closed() -> bool:
            return not await bridge.app[DESK].waiting()

        await wait_until(closed, what="the request closed after three refusals")
        await flows.settled(bridge, call)
        snapshot = bridge.sandbox.snapshot()
    assert not [placed for placed in fake.account.calls.values() if placed.direction == "outbound-api"]
    (ticket,) = call_outcome(snapshot, call.sid)
    assert "callback_refused" in ticket["tags"]
    assert "Twilio refused to place the bridge's calls 3 times in a row" in notes(ticket)


async def test_a_supervisor_sees_and_cancels_a_callback_from_the_live_view(make_bridge: BridgeFactory) -> None:
    """The live view's callbacks are the queue's: listed while waiting, cancelled once, noted on the ticket."""
    async with make_bridge(stand_in=True, virtual_time=True, agents=dict(TEAM), **flows.SETTINGS) as bridge:
        await choose(bridge, "away", ALICE, BOB)
        call = await twilio(bridge).incoming(DANA, DEMO_NUMBER)
        await flows.ask_for_callback(bridge, call)
        callbacks = QueuedCallbacks(bridge.store, bridge.app[INGEST], bridge.clock)
        (pending,) = await callbacks.pending()
        assert (pending["id"], pending["caller"]) == (call.sid, "…0123")
        assert await callbacks.cancel(call.sid, "supervisor 1003")
        assert not await callbacks.cancel(call.sid, "supervisor 1003")  # gone from the line: nothing to cancel
        assert await callbacks.pending() == []
        await bridge.settle_calls()
        snapshot = bridge.sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    assert "was cancelled" in notes(ticket)
