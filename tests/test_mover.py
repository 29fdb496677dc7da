"""The mover: moves handed over by the store are sent within its slots; the rest go back to the claims."""

from __future__ import annotations

import asyncio

from bridge.app import open_store
from bridge.core.actions import MoveCall
from bridge.core.clock import system_clock
from bridge.core.events import CallEvent, EventKind
from bridge.devtools.waiting import wait_until
from bridge.ingest import Ingest
from bridge.ops.settings import Settings
from bridge.store import DONE, DROPPED
from bridge.twilio.mover import LEASE, Mover

CALLERS = [f"CA{n:032d}" for n in (1, 2)]


class HeldTwilio:
    """Twilio's REST API at the seam: each redirect is noted and answered only when let go."""

    def __init__(self) -> None:
        """Start with nothing sent."""
        self.sent: list[str] = []
        self.go = asyncio.Event()

    async def redirect(self, call_sid: str, url: str) -> None:
        """Note the move, then wait to be let go."""
        self.sent.append(call_sid)
        await self.go.wait()


async def test_handed_over_moves_beyond_the_free_slots_go_back_to_the_claims(database_url: str) -> None:
    """With one slot, the first move is sent and the second is given back, claimable again, not sent twice."""
    settings = Settings(database_url=database_url)
    store = await open_store(settings)
    twilio = HeldTwilio()
    mover = Mover(store, twilio, Ingest(store, settings.policy(), system_clock), "http://bridge", concurrency=1)
    now = system_clock()
    await store.add_actions([MoveCall(sid, 1) for sid in CALLERS], now=now)
    leased = await store.claim(now, 10, LEASE, telephony=True)  # as the deciding transaction leases them
    mover.take(leased)

    async def given_back() -> bool:
        return [row.call_sid for row in await store.claim(system_clock(), 10, LEASE, telephony=True)] == CALLERS[1:]

    await wait_until(given_back, what="the second move given back to the claims")
    assert twilio.sent == CALLERS[:1]
    twilio.go.set()
    await mover.stop()
    await store.close()


class RoomTwilio(HeldTwilio):
    """Twilio's REST API at the seam, answering a room's invitations at once with the invited call."""

    def __init__(self) -> None:
        """Start with nothing sent, everything let go."""
        super().__init__()
        self.posts: list[tuple[str, dict[str, str]]] = []
        self.go.set()

    async def post(self, path: str, form: dict[str, str]) -> dict[str, str]:
        """Note the request; answer as Participant create does."""
        self.posts.append((path, form))
        return {"call_sid": "CA" + "7" * 32}


async def test_an_invitation_into_a_room_is_sent_for_a_live_call_and_dropped_for_one_that_ended(
    database_url: str,
) -> None:
    """A call waiting in its room gets its agent invited (noted in the room); one the store never saw, nothing."""
    settings = Settings(database_url=database_url)
    store = await open_store(settings)
    twilio = RoomTwilio()
    ingest = Ingest(store, settings.policy(), system_clock)
    mover = Mover(store, twilio, ingest, "http://bridge")
    live, gone = CALLERS
    await ingest([f"room-line-test|{live}"], CallEvent(kind=EventKind.ROOM, call_sid=live, at=system_clock(),
                                                        status="entered", leg_sid=live))  # fmt: skip
    now = system_clock()
    await store.add_actions([MoveCall(sid, 1, ("client:bob",), 20) for sid in CALLERS], now=now)
    mover.take(await store.claim(now, 10, LEASE, telephony=True))

    async def settled() -> bool:
        rows = await store.results([MoveCall(sid, 1).key for sid in CALLERS])
        return len(rows) == 2 and all(row.status in (DONE, DROPPED) for row in rows.values())

    await wait_until(settled, what="both invitations settled")
    rows = await store.results([MoveCall(sid, 1).key for sid in CALLERS])
    call = await store.get_call(live)
    await mover.stop()
    await store.close()
    assert (rows[MoveCall(live, 1).key].status, rows[MoveCall(gone, 1).key].status) == (DONE, DROPPED)
    ((path, form),) = twilio.posts
    assert (path, form["To"], form["Label"], form["Timeout"]) == (f"/Conferences/{live}/Participants.json",
                                                                  "client:bob", "agent:bob|transfer", "20")  # fmt: skip
    assert call is not None
    assert call.room is not None
    assert [h.label for h in call.room.happened if h.what == "invite"] == ["agent:bob|transfer"]


async def test_an_invitation_whose_answer_was_lost_is_not_sent_again_once_noted_in_the_room(database_url: str) -> None:
    """Tried again: an invitation noted since the move was decided landed; one of an earlier move did not."""
    settings = Settings(database_url=database_url)
    store = await open_store(settings)
    twilio = RoomTwilio()
    ingest = Ingest(store, settings.policy(), system_clock)
    mover = Mover(store, twilio, ingest, "http://bridge")
    noted, earlier = CALLERS
    for sid in CALLERS:
        await ingest([f"room-line-test|{sid}"], CallEvent(kind=EventKind.ROOM, call_sid=sid, at=system_clock(),
                                                          status="entered", leg_sid=sid))  # fmt: skip
    invited = {
        "status": "invite",
        "reason": "transfer",
        "leg_to": "agent:bob|transfer|Sales",
        "leg_sid": "CA" + "8" * 32,
    }
    await ingest(["room-line-test|earlier"], CallEvent(kind=EventKind.ROOM, call_sid=earlier, at=system_clock(),
                                                       **invited))  # fmt: skip
    now = system_clock()
    await store.add_actions([MoveCall(sid, 2, ("client:bob",), 20) for sid in CALLERS], now=now)
    await ingest(["room-line-test|noted"], CallEvent(kind=EventKind.ROOM, call_sid=noted, at=system_clock(),
                                                     **invited))  # fmt: skip
    for _ in range(2):  # earlier attempts whose answers were lost
        for row in await store.claim(system_clock(), 10, LEASE, telephony=True):
            await store.retry_later(row.id, next_at=now, error="lost", now=now)
    mover.take(await store.claim(system_clock(), 10, LEASE, telephony=True))

    async def settled() -> bool:
        rows = await store.results([MoveCall(sid, 2).key for sid in CALLERS])
        return len(rows) == 2 and all(row.status == DONE for row in rows.values())

    await wait_until(settled, what="both invitations settled")
    await mover.stop()
    await store.close()
    assert [path for path, _ in twilio.posts] == [f"/Conferences/{earlier}/Participants.json"]
