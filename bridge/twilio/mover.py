"""Send the moves routing decides: a waiting caller is redirected to fetch the bridge's URL for what comes next.

A move is an outbox action of its own kind, sent here and never by the Zendesk worker. The transaction that
decides a move also leases it to this instance, and the store hands it over once committed, so it is sent at
once, with no claim (and, on SQLite, no second commit) in between; moves decided elsewhere (`bridge agents
set`, an instance that died) are claimed here when due. A move is kept until it is done: a move Twilio is too busy
for is tried again while its agents are still held for it; a move that finds the call ended, or that Twilio
refuses or keeps failing, is told to the call (MOVE_FAILED), whose routing then lets the agents go and
decides again. After an attempt whose answer was lost, the call itself says whether the move landed (it
came back asking), so a move is never sent twice for one decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlencode

from bridge.core import call_room
from bridge.core.actions import MoveCall, PlaceCallback
from bridge.core.clock import Clock, system_clock
from bridge.core.events import CallEvent, EventKind
from bridge.core.routing import OFFER_GRACE
from bridge.ingest import Ingest
from bridge.ops.metrics import Metrics
from bridge.store import DEAD, DONE, DROPPED, ActionRow, Store
from bridge.store.claiming import drain, released_if_cancelled
from bridge.twilio.dialer import Dialer
from bridge.twilio.rest import CallGone, TwilioApi, TwilioBusy, TwilioError
from bridge.twilio.room import RoomApi

log = logging.getLogger("bridge.mover")
RESUME_PATH = "/twilio/voice/resume"  # where a moved call asks what next (webhooks.names.Route.RESUME)
LEASE = 30.0  # longer than one request's timeout, so a live mover never loses its claim


class Mover:
    """Claim moves and send them to Twilio, until stopped."""

    def __init__(
        self,
        store: Store,
        api: TwilioApi,
        ingest: Ingest,
        public_url: str,
        *,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        concurrency: int = 16,
        metrics: Metrics | None = None,
        dialer: Dialer | None = None,
    ) -> None:
        """Bind the store, Twilio's API and the way back into the store; nothing runs until `start`."""
        self._store = store
        self._api = api
        self._ingest = ingest
        self._public_url = public_url
        self._clock = clock
        self._rng = rng or random.Random()
        self._concurrency = concurrency
        self._metrics = metrics
        self._dialer = dialer  # places callbacks' turns (their actions are claimed with the moves)
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self, *_: object) -> None:
        """Look for moves now (routing committed some)."""
        self._wake.set()

    def take(self, rows: Sequence[ActionRow]) -> None:
        """Send moves this instance decided, leased to it in the transaction that decided them: no claim needed.

        Once stopping, they are left leased: the next start (SQLite) or another instance once the lease runs out
        (PostgreSQL) sends them.
        """
        if self._stopping:
            return
        for row in rows:
            if len(self._inflight) < self._concurrency:
                self._send(row)
            else:  # no free slot: back to the claims, where it waits its turn like a move decided elsewhere
                self._release(row)

    def _release(self, row: ActionRow) -> None:
        """Give a handed-over move back to the claims, then look for moves."""

        async def release() -> None:
            try:
                await self._store.release(row.id)
            except Exception:
                log.exception("mover: giving move %s back failed; it is claimable once its lease runs out", row.key)
            self._wake.set()

        task = asyncio.create_task(release())
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def start(self) -> None:
        """Start the loop as a tracked task; from now on the store hands this instance's moves over at once."""
        self._store.hand_over_moves(LEASE, self.take)
        self._task = asyncio.create_task(self._run(), name="mover")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming, let moves in flight finish for up to `grace` seconds, then cancel them."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await drain(self._inflight, grace)

    async def _run(self) -> None:
        """Claim and send until stopped; sleep until the next due move or a wake-up."""
        while not self._stopping:
            self._wake.clear()
            rows: list[ActionRow] = []
            free = self._concurrency - len(self._inflight)
            if free > 0:
                try:
                    rows = await self._store.claim(self._clock(), free, LEASE, telephony=True)
                except Exception:
                    log.exception("mover: claiming moves failed; trying again shortly")
            for row in rows:
                self._send(row)
            if rows:
                continue
            await self._sleep()

    def _send(self, row: ActionRow) -> None:
        """Send one leased move in a task of its own."""
        task = asyncio.create_task(self._process(row))
        self._inflight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        """Forget a finished move and look for more."""
        self._inflight.discard(task)
        self._wake.set()

    async def _sleep(self) -> None:
        """Wait for a wake-up or the next due move (at most a second)."""
        timeout = 1.0
        with contextlib.suppress(Exception):
            due = await self._store.next_due(telephony=True)
            if due is not None:
                timeout = min(timeout, max(0.01, (due - self._clock()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _process(self, row: ActionRow) -> None:
        """Send one move and settle it; never let an exception escape."""
        try:
            async with released_if_cancelled(self._store, row.id):
                await self._attempt(row)
        except Exception:
            log.exception("mover: move %s of call %s failed unexpectedly", row.key, row.call_sid)

    async def _attempt(self, row: ActionRow) -> None:
        """Send the move unless an earlier attempt landed; settle it, retry it, or tell the call it failed."""
        if isinstance(row.action, PlaceCallback):
            if self._dialer is not None:
                await self._dialer.place(row)
            else:  # pragma: no cover - the app gives the mover a dialer whenever it has one
                await self._store.release(row.id)
            return
        move = row.action
        assert isinstance(move, MoveCall)
        if row.attempts > 1 and await self._landed(move, row.created_at):
            await self._store.finish(row.id, DONE, result={"moved": True}, error=None, now=self._clock())
            return
        url = f"{self._public_url}{RESUME_PATH}?{urlencode({'turn': move.number})}"
        try:
            if move.invite:
                await self._invite(move)
            else:
                await self._api.redirect(move.call_sid, url)
        except CallGone as exc:
            await self._failed(row, move, "gone", exc)
        except TwilioBusy as exc:
            now = self._clock()
            if now - row.created_at < timedelta(seconds=OFFER_GRACE):
                delay = self._rng.uniform(0.2, 1.0) * min(4.0, 2.0 ** (row.attempts - 1))
                await self._store.retry_later(row.id, next_at=now + timedelta(seconds=delay), error=str(exc), now=now)
                log.warning("mover: move %s of call %s: %s; again in %.1f s", move.number, move.call_sid, exc, delay)
            else:
                await self._failed(row, move, "refused", exc)
        except TwilioError as exc:
            await self._failed(row, move, "refused", exc)
        else:
            now = self._clock()
            await self._store.finish(row.id, DONE, result={"moved": True}, error=None, now=now)
            if self._metrics is not None:
                self._metrics.move_latency.observe(max(0.0, (now - row.created_at).total_seconds()))
            log.info("mover: call %s moved (move %s)", move.call_sid, move.number)

    async def _invite(self, move: MoveCall) -> None:
        """Ring the offered agent into the room of a call transferred to a line, and note the invitation there.

        The call stays in its room (a redirect would take the customer out of it): the agent is added as a
        participant under the label of a transfer's receiver, so their joining makes the call theirs.
        """
        call = await self._store.get_call(move.call_sid)
        if call is None or call.over:
            raise CallGone("the call has ended", 404, 20404)
        caller_id = (call.to_number if call.direction == "inbound" else call.from_number) or ""
        room = RoomApi(self._api, self._public_url)
        line = call_room.spans(call.room).in_line if call.room is not None else None
        for identity in move.invite:
            label = call_room.label_of(identity, "transfer", line)
            sid = await room.invite(move.call_sid, identity, caller_id, label, owner=True, seconds=move.seconds)
            event = CallEvent(kind=EventKind.ROOM, call_sid=move.call_sid, at=self._clock(), status="invite",
                              reason="transfer", leg_sid=sid or None, leg_to=label)  # fmt: skip
            await self._ingest([f"room|invite|{move.call_sid}|move-{move.number}|{identity}"], event)

    async def _landed(self, move: MoveCall, since: datetime) -> bool:
        """Tell whether an earlier attempt of the move landed: the call came back asking, or moved on since."""
        call = await self._store.get_call(move.call_sid)
        if call is None:
            return False
        if move.invite and call.room is not None:
            # Invited into the room: the invitation of this move's agent is noted there since the move was decided
            # (an earlier move's invitation of the same agent is not this one).
            invited = {call_room.label_of(identity, "transfer") for identity in move.invite}
            labels = {h.label.rsplit("|", 1)[0] for h in call.room.happened
                      if h.what == "invite" and h.label and h.at >= since}  # fmt: skip
            return bool(invited & labels) or call.over
        return call.resumed >= move.number or call.over

    async def _failed(self, row: ActionRow, move: MoveCall, why: str, exc: TwilioError) -> None:
        """Tell the call its move failed (its routing lets the agents go and decides again), and settle the move.

        A call that had ended makes the move moot (dropped); one Twilio would not move is a dead letter an
        operator should see (`bridge outbox list`).
        """
        # An invitation into a room that found it gone says nothing of when the call ended (the room's reports do).
        said = "refused" if move.invite else why
        event = CallEvent(kind=EventKind.MOVE_FAILED, call_sid=move.call_sid, at=self._clock(), status=said)
        await self._ingest([f"move_failed|{move.call_sid}|{move.number}"], event)
        settled = DROPPED if why == "gone" else DEAD
        await self._store.finish(row.id, settled, result=None, error=str(exc), now=self._clock())
        level = logging.INFO if why == "gone" else logging.ERROR
        log.log(level, "mover: move %s of call %s not made (%s): %s", move.number, move.call_sid, why, exc)
