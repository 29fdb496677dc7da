"""Reconcile calls whose callbacks stopped coming: Twilio does not retry a failed status callback.

Each round also forgets dedupe keys older than DEDUPE_WINDOW, a batch at a time.

A call with no final outcome `CALL_STALE_MINUTES` after its last event is looked up through Twilio's
REST API when TWILIO_ACCOUNT_SID is set (parent call, its dialed legs, its recordings), and the facts
are fed to the state machine as ordinary events. Then the call is closed out with what is known.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from bridge.core.calls import STALE, Policy, may_be_talking
from bridge.core.clock import Clock, system_clock
from bridge.core.events import TERMINAL_CALL_STATUSES, CallEvent, EventKind
from bridge.core.phones import is_client
from bridge.ingest import Ingest
from bridge.store import DEDUPE_WINDOW, Store
from bridge.twilio.rest import TWILIO_API, CallGone, TwilioApi
from bridge.twilio.words import media_url, recording_of

log = logging.getLogger("bridge.reconcile")
FORGET_BATCH = 10_000  # dedupe keys forgotten per round: one short transaction, never a long lock
_LEG_STATUS = {"queued": "initiated", "ringing": "ringing", "in-progress": "answered"}
# Every Recording status of the REST API (Twilio docs: Recording resource, status) mapped to what the
# state machine needs to hear: the media is there, it never will be, or it is still coming (None: wait).
RECORDING_MEANING: dict[str, str | None] = {
    "completed": "completed",
    "absent": "absent",
    "failed": "absent",
    "deleted": "absent",
    "processing": None,
    "in-progress": None,
    "paused": None,
    "stopped": None,
}


def _at(moment: Any, now: datetime) -> datetime:
    """Use Twilio's time when it gave one (RFC 2822, Twilio docs: "Twilio API responses", dates)."""
    try:
        return parsedate_to_datetime(moment).astimezone(UTC)
    except (TypeError, ValueError):
        return now


def _int(value: Any) -> int | None:
    """Read Twilio's string durations."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    """Read a string field Twilio may give as null."""
    return str(value or "")


async def twilio_facts(twilio: TwilioApi, call_sid: str, now: datetime) -> tuple[list[CallEvent], bool]:
    """Return what Twilio knows of a call as events, and whether the call is over."""
    call = await twilio.call(call_sid)
    legs = await twilio.legs(call_sid)
    recordings = await twilio.recordings(call_sid)
    status = _text(call.get("status"))
    origin = _text(call.get("from"))
    events = [
        CallEvent(
            kind=EventKind.CALL_STATUS,
            call_sid=call_sid,
            at=_at(call.get("end_time") or call.get("start_time"), now),
            direction="outbound" if is_client(origin) else "inbound",
            from_number=origin,
            to_number=_text(call.get("to")),
            status=status,
            duration=_int(call.get("duration")),
        )
    ]
    for leg in legs:
        leg_status = _text(leg.get("status"))
        events.append(
            CallEvent(
                kind=EventKind.LEG_STATUS,
                call_sid=call_sid,
                at=_at(leg.get("end_time") or leg.get("start_time"), now),
                leg_sid=_text(leg.get("sid")),
                leg_to=_text(leg.get("to")),
                status=_LEG_STATUS.get(leg_status, leg_status),
                duration=_int(leg.get("duration")),
            )
        )
    waiting = False
    for recording in recordings:
        meaning = RECORDING_MEANING.get(_text(recording.get("status")), "absent")
        if meaning is None:
            waiting = True  # its own callback, or a later round, will say it is ready
            continue
        sid = _text(recording.get("sid"))
        events.append(
            CallEvent(
                kind=EventKind.RECORDING,
                call_sid=call_sid,
                at=_at(recording.get("start_time"), now),
                recording_sid=sid,
                # Twilio's own RecordingUrl, as its callback would have said: it names the recording;
                # TWILIO_API_URL only says where to reach it, and the recording links follow that.
                recording_url=media_url(f"{TWILIO_API}/2010-04-01/Accounts/{twilio.account_sid}/Recordings/{sid}"),
                recording_duration=_int(recording.get("duration")),
                recording_status=meaning,
                recording_of=recording_of(_text(recording.get("source")) or None),
                recording_started_at=_at(recording.get("start_time"), now),
            )
        )
    return events, status in TERMINAL_CALL_STATUSES and not waiting


class Reconciler:
    """Periodically settle calls that went quiet before reaching a final outcome."""

    def __init__(
        self,
        store: Store,
        ingest: Ingest,
        *,
        stale_after: float,
        twilio: TwilioApi | None,
        policy: Policy | None = None,
        clock: Clock = system_clock,
    ) -> None:
        """Bind the store, the ingest that facts go through and, when configured, Twilio's REST API."""
        self._store = store
        self._ingest = ingest
        self._policy = policy or Policy()
        self._stale_after = timedelta(seconds=stale_after)
        self._twilio = twilio
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.interval = max(0.05, min(60.0, stale_after / 4))

    async def run_once(self) -> int:
        """Reconcile every stale call once; return how many were looked at."""
        now = self._clock()
        stale = await self._store.stale_calls(now - self._stale_after, limit=100)
        for call_sid in stale:
            try:
                await self._reconcile(call_sid, now)
            except Exception as exc:  # Twilio down or the call unknown there: try again next round
                log.warning("reconcile: call %s could not be looked up (%s); retrying later", call_sid, exc)
                await self._store.touch_call(call_sid, now)
        return len(stale)

    async def forget_old_keys(self) -> int:
        """Forget a batch of dedupe keys past DEDUPE_WINDOW; return how many."""
        return await self._store.forget_seen(self._clock() - DEDUPE_WINDOW, FORGET_BATCH)

    async def _reconcile(self, call_sid: str, now: datetime) -> None:
        """Feed Twilio's facts in, then close the call out unless Twilio says it is still going."""
        over = True
        if self._twilio is not None:
            try:
                events, over = await twilio_facts(self._twilio, call_sid, now)
            except CallGone:
                # Twilio does not know the call (another account, deleted, a test sid): close it out.
                log.warning("reconcile: Twilio has no call %s; closing it out with what is known", call_sid)
                events = []
            for event in events:
                key = f"reconcile|{call_sid}|{event.kind}|{event.leg_sid or event.recording_sid}|{event.status}"
                await self._ingest([key], event)
        else:
            # Without Twilio's word, silence is not an ending: Twilio sends nothing while a call is up,
            # so an answered call may talk on until Twilio's own limit.
            call = await self._store.get_call(call_sid)
            over = call is None or not may_be_talking(call, now, self._policy)
        if not over:
            log.info("reconcile: call %s may still be in progress; looking again later", call_sid)
            await self._store.touch_call(call_sid, now)
            return
        event = CallEvent(kind=EventKind.TIMER, call_sid=call_sid, at=now, timer=STALE)
        await self._ingest([f"stale|{call_sid}"], event)
        log.info("reconcile: call %s closed out with what is known", call_sid)

    def start(self) -> None:
        """Run rounds in a tracked task."""
        self._task = asyncio.create_task(self._loop(), name="reconciler")

    async def stop(self) -> None:
        """Stop the rounds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        """Reconcile and forget old dedupe keys, then sleep a quarter of the staleness period (at most a minute)."""
        while True:
            try:
                await self.run_once()
                await self.forget_old_keys()
            except Exception:
                log.exception("reconcile: round failed")
            await asyncio.sleep(self.interval)
