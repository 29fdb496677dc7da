"""A background task in rounds: one round now, then again after the seconds each round returns, until stopped.

The Zendesk readers (availability, schedules) and the held-call watch run this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

log = logging.getLogger("bridge.ops")


class Repeating(ABC):
    """Run `round` as a tracked task, again and again, waiting the seconds it returns (`interval` after a failure)."""

    def __init__(self, name: str, interval: float) -> None:
        """Name the reader (its log lines and its task) and its usual wait."""
        self.name = name
        self.interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    async def round(self) -> float:
        """Read once; return the seconds until the next round."""

    def start(self) -> None:
        """Start reading, as a tracked task; the first round goes at once."""
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name=self.name.replace(" ", "-"))

    async def stop(self) -> None:
        """Stop reading (a round under way is cut short)."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        """Run a round, wait, and again, until stopped."""
        while not self._stop.is_set():
            try:
                wait = await self.round()
            except Exception:
                log.exception("%s: a round failed; trying again next round", self.name)
                wait = self.interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), wait)
