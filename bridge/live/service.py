"""The live view's reads: the store's rows made into the board, at most twice a second per instance.

Every instance reads the same store, so every instance shows the same board; a board is reused for half a
second after it was made, so ten pages polling an instance every second cost it two reads, not ten.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from bridge.core.clock import Clock
from bridge.core.hours import Schedules
from bridge.dispatch import Desk
from bridge.live.board import Rows, Settings, board, days
from bridge.live.callbacks import Callbacks
from bridge.live.figures import Arrived, windows
from bridge.ops.settings import Settings as BridgeSettings
from bridge.store import Store

FRESH_SECONDS = 0.5  # a board this young is served again: a change shows within a poll and a half


class LiveView:
    """Make the board from the store, shared by the page, GET /live and /metrics."""

    def __init__(
        self,
        store: Store,
        desk: Desk,
        settings: BridgeSettings,
        clock: Clock,
        *,
        schedules: Callable[[], Schedules] = dict,
        callbacks: Callbacks | None = None,
    ) -> None:
        """Bind what the board is read from; `schedules` returns the Zendesk schedules as last read."""
        self._store = store
        self.desk = desk
        self._settings = settings
        self._clock = clock
        self._schedules = schedules
        self.callbacks = callbacks
        self._last: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    def settings(self) -> Settings:
        """Return what shapes the board now (a Zendesk schedule's time zone is known once it has been read)."""
        lines = self._settings.phone_lines
        schedules = self._schedules()
        zones: dict[str, tzinfo] = {}
        for line in lines.all:
            schedule_id = line.hours.schedule_id if line.hours is not None else None
            read = schedules.get(schedule_id) if schedule_id is not None else None
            if read is not None and read.zone is not None:
                zones[line.key] = read.zone
        return Settings(
            lines=lines,
            policy=self.desk.routes.policy.presence,
            service_level=self._settings.service_level_seconds,
            zones=zones,
        )

    async def board(self) -> dict[str, Any]:
        """Return the board, made afresh unless one made less than FRESH_SECONDS ago stands."""
        async with self._lock:  # pages polling at once wait for one read rather than each making their own
            # Freshness on the monotonic clock: the bridge's own clock may be a test's, standing still.
            made_at = time.monotonic()
            if self._last is not None and made_at - self._last[0] < FRESH_SECONDS:
                return self._last[1]
            now = self._clock()
            made = board(await self.rows(now), self.settings(), now)
            self._last = (made_at, made)
            return made

    def forget(self) -> None:
        """Drop the board made last (a supervisor's change must show at once)."""
        self._last = None

    async def rows(self, now: datetime) -> Rows:
        """Read what the board is made of: agents, the queue, the calls of each line's today and week-ago day."""
        settings = self.settings()
        start, end = windows(days(settings, now))
        # Today's calls and the same weekday's a week before: two reads, not the whole week between them.
        week_start, week_end = windows(days(settings, now, 1))
        arrived = await self._store.calls_arrived(start, end)
        older = await self._store.calls_arrived(week_start, min(week_end, start))
        callbacks = await self.callbacks.pending() if self.callbacks is not None else None
        return Rows(
            agents=await self.desk.agents(),
            waiting=await self.desk.waiting(),
            arrived=[Arrived(at, call) for at, call in [*older, *arrived]],
            callbacks=callbacks,
        )
