"""Two bridges sharing one PostgreSQL database watch held calls: a customer left on hold goes back to the line once."""

from __future__ import annotations

import asyncio

from bridge.appkeys import HELD_WATCH, INGEST, ROOM_CONTROL
from bridge.core import call_room
from tests.conftest import call_outcome, eventually
from tests.test_two_instances import NUMBERS, _settled, instances

DANA = "+14155550123"


async def test_two_instances_give_a_customer_left_on_hold_back_to_the_line_once(pg_url: str) -> None:
    """alice holds Dana and goes away; both instances look at once, again and again: one note, one agent rung."""
    async with instances(pg_url) as (twilio, sandbox, (one, two)):
        call = await twilio.incoming(DANA, NUMBERS[0])
        alice = await twilio.ringing("client:alice")
        await twilio.answer(alice)
        await twilio.advance(10)
        held = await one.app[INGEST].current(call.sid)
        assert held is not None
        await one.app[ROOM_CONTROL].hold(held, "hold-1", None)
        await twilio.settle()
        await two.desk.goodbye("client:alice")
        await twilio.advance(60)
        for _ in range(3):
            await asyncio.gather(one.app[HELD_WATCH].give_back(), two.app[HELD_WATCH].give_back())
        await twilio.settle()

        async def rung() -> bool:
            state = await two.app[INGEST].current(call.sid)
            return state is not None and state.room is not None and bool(call_room.spans(state.room).pending)

        await eventually(rung, within=30)
        state = await one.app[INGEST].current(call.sid)
        assert state is not None
        assert state.room is not None
        notes = [h for h in state.room.happened if h.what == "line"]
        invites = [h for h in state.room.happened if h.what == "invite"]
        assert len(notes) == 1  # given back once, whichever instance looked first
        assert len(invites) == 1  # one agent rung into the room, by one instance
        (invited,) = invites
        taker = await twilio.ringing(call_room.who_of(invited.label or ""))
        await twilio.answer(taker)
        await twilio.advance(20)
        await twilio.hang_up(taker)
        await twilio.advance(5)
        await eventually(lambda: _settled(one), within=60)
        snapshot = sandbox.snapshot()
    (ticket,) = call_outcome(snapshot, call.sid)
    notes = [c["body"] for c in ticket["comments"] if c["type"] == "Comment"]
    assert len([note for note in notes if note.startswith("Call returned to the queue")]) == 1, notes
