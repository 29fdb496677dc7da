"""An agent's call out placed from a Zendesk ticket goes on that ticket (issue #15, deliver item 5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.core.action_codec import decode, encode
from bridge.core.actions import CreateTicket
from bridge.core.calls import Call, Policy, step
from bridge.core.events import CallEvent, Direction, EventKind
from bridge.devtools.demo import LocalBridge, calls_mode
from bridge.devtools.sandbox import FaultRule
from schemas.zendesk import Comment, VoiceTicket
from tests.conftest import BridgeFactory, recording, tpe_comments, voice_comments
from webhooks.translate import ticket_id

T0 = datetime(2026, 9, 15, 16, 30, tzinfo=UTC)
SID, LEG = "CA" + "7" * 32, "CA" + "8" * 32
POLICY = Policy(agents={"client:alice": 1001}, caller_id="+16505550100")
CUSTOMER = "+14155550199"


def _events(ticket: int | None, direction: Direction = "outbound") -> list[CallEvent]:
    """An agent's call out (or, for contrast, a call in) answered by the customer and then hung up."""
    frm, to = ("client:alice", CUSTOMER) if direction == "outbound" else (CUSTOMER, "+16505550100")
    started = CallEvent(kind=EventKind.CALL_STARTED, call_sid=SID, at=T0, direction=direction,
                        from_number=frm, to_number=to, ticket_id=ticket)  # fmt: skip
    answerer = "client:alice" if direction == "inbound" else CUSTOMER
    answered = CallEvent(kind=EventKind.LEG_STATUS, call_sid=SID, at=T0 + timedelta(seconds=9), leg_sid=LEG,
                         leg_to=answerer, status="answered", sequence=2)  # fmt: skip
    return [started, answered]


def _creates(events: list[CallEvent], policy: Policy = POLICY) -> list[CreateTicket]:
    call: Call | None = None
    out: list[CreateTicket] = []
    for event in events:
        outcome = step(call, event, T0, policy)
        call = outcome.call
        out += [action for action in outcome.actions if isinstance(action, CreateTicket)]
    return out


def test_an_outbound_call_from_a_ticket_names_that_ticket() -> None:
    """The state machine carries the ticket id from the call's start to its ticket action."""
    (create,) = _creates(_events(42))
    assert create.existing_ticket_id == 42
    assert create.ticket.via_id == 46  # the fallback, should ticket 42 be gone or closed


def test_an_inbound_call_never_goes_on_a_named_ticket() -> None:
    """Only an agent's own call out may choose its ticket."""
    (create,) = _creates(_events(42, direction="inbound"))
    assert create.existing_ticket_id is None


def test_a_call_out_without_a_ticket_creates_one() -> None:
    """The keypad without a chosen ticket behaves as before."""
    (create,) = _creates(_events(None))
    assert create.existing_ticket_id is None


@pytest.mark.parametrize(("raw", "expected"), [("42", 42), (" 7 ", 7), ("", None), (None, None), ("abc", None),
                                               ("-3", None), ("0", None), ("9" * 30, None)])  # fmt: skip
def test_ticket_id_parameter_is_read_defensively(raw: str | None, expected: int | None) -> None:
    """A TicketId that is not a ticket id is ignored, never refused: the call matters more."""
    assert ticket_id(raw) == expected


def test_the_existing_ticket_survives_the_store() -> None:
    """The stored form keeps the ticket id; rows stored before it existed read as None."""
    ticket = VoiceTicket(via_id=46, subject="Call to +1", external_id=SID, comment=Comment(body="note"))
    action = CreateTicket(SID, ticket, CUSTOMER, 1001, existing_ticket_id=42)
    assert decode(action.kind, action.key, SID, encode(action), T0) == action
    older = encode(CreateTicket(SID, ticket, CUSTOMER, 1001))
    assert "existing_ticket_id" not in older
    assert decode(action.kind, action.key, SID, older, T0).existing_ticket_id is None


def from_ticket(tmp_path: Path, ticket: int, name: str = "outbound_answered") -> Path:
    """Return the recorded call out with the softphone's TicketId added to its /outgoing request."""
    lines = []
    for line in recording(name).read_text().splitlines():
        entry: dict[str, Any] = json.loads(line)
        if entry["path"] == "/twilio/voice/outgoing":
            entry["params"]["TicketId"] = str(ticket)
        lines.append(json.dumps(entry))
    path = tmp_path / f"{name}_ticket_{ticket}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def open_ticket(bridge: LocalBridge, status: str = "open") -> int:
    """Create the ticket an agent has open in Zendesk; return its id."""
    body = {"ticket": {"via_id": 45, "subject": "Printer on fire", "comment": {"body": "help"}, "status": status}}
    return int(bridge.sandbox.create_voice_ticket(body)["id"])


@pytest.mark.parametrize("ticket_on", ["answer", "end"])
async def test_a_replayed_call_out_from_a_ticket_adds_its_voice_comment_there(
    make_bridge: BridgeFactory, tmp_path: Path, ticket_on: str
) -> None:
    """The ticket the call was placed from gets the voice comment; no via 46 ticket is created."""
    async with make_bridge(ticket_on=ticket_on) as bridge:
        ticket = open_ticket(bridge)
        await bridge.replay([from_ticket(tmp_path, ticket)])
        await bridge.settle_calls()
        tickets = bridge.sandbox.list_tickets()
        assert [t["id"] for t in tickets] == [ticket]
        (voice,) = voice_comments(tickets[0])
        assert voice["to"] == CUSTOMER
        assert voice["answered_by_id"] == 1001
        assert {"agent_id": 1001, "kind": "ticket", "id": ticket} in bridge.sandbox.displays


@pytest.mark.parametrize("status", ["closed", "missing"])
async def test_a_closed_or_missing_ticket_falls_back_to_a_new_via_46_ticket(
    make_bridge: BridgeFactory, tmp_path: Path, status: str
) -> None:
    """Zendesk refuses updates to a closed ticket, and a wrong id names none: the call gets its own."""
    async with make_bridge() as bridge:
        ticket = open_ticket(bridge, "closed") if status == "closed" else 999
        await bridge.replay([from_ticket(tmp_path, ticket)])
        await bridge.settle_calls()
        created = [t for t in bridge.sandbox.list_tickets() if t["via_id"] == 46]
        assert len(created) == 1
        assert len(voice_comments(created[0])) == 1
        if status == "closed":
            assert len(bridge.sandbox.get_ticket(ticket)["comments"]) == 1  # untouched


@pytest.mark.parametrize("ticket_on", ["answer", "end"])
async def test_a_lost_answer_never_doubles_a_comment_on_the_existing_ticket(
    make_bridge: BridgeFactory, tmp_path: Path, ticket_on: str
) -> None:
    """PUTs to the ticket land but their answers are lost: each retry looks first, so every comment is there once."""
    async with make_bridge(ticket_on=ticket_on) as bridge:
        ticket = open_ticket(bridge)
        bridge.sandbox.add_faults([FaultRule("PUT", f"/api/v2/tickets/{ticket}", "drop_after", times=3)])
        await bridge.replay([from_ticket(tmp_path, ticket)])
        await bridge.settle_calls()
        dropped = [r for r in bridge.sandbox.requests if r["fault"] == "drop_after" and r["method"] == "PUT"]
        assert dropped  # the faults did hit the existing ticket's updates
        comments = bridge.sandbox.get_ticket(ticket)["comments"]
        bodies = [c["body"] for c in comments if c["type"] != "VoiceComment"]
        assert len(bodies) == len(set(bodies))
        assert len(voice_comments(bridge.sandbox.get_ticket(ticket))) == 1
        assert [t["id"] for t in bridge.sandbox.list_tickets()] == [ticket]


@pytest.mark.parametrize("name", ["outbound_answered", "outbound_unanswered"])
async def test_calls_mode_shows_a_call_out_on_the_ticket_it_was_placed_from(
    make_bridge: BridgeFactory, tmp_path: Path, name: str
) -> None:
    """ZENDESK_API=calls: answered or not, the call out's record shows on the agent's ticket, once, even after a
    lost answer; nothing else is created."""
    async with make_bridge(recording_wait_seconds=0.2, **calls_mode()) as bridge:
        ticket = open_ticket(bridge)
        bridge.sandbox.add_faults([FaultRule("POST", "/api/v2/calls", "drop_after")])
        await bridge.replay([from_ticket(tmp_path, ticket, name)])
        await bridge.settle_calls()
        await bridge.settle()
        snapshot = bridge.sandbox.snapshot()
        assert [t["id"] for t in snapshot["tickets"]] == [ticket]
        (record,) = snapshot["calls"].values()
        assert record["ticket_id"] == ticket
        assert [c["call_id"] for c in tpe_comments(bridge.sandbox.get_ticket(ticket))] == [record["id"]]
        assert record["direction"] == "outbound"
        assert record["completion_status"] == ("completed" if name == "outbound_answered" else "abandoned_in_queue")
