"""Virtual time and idleness: the stand-in never sleeps; the test moves its clock and waits for it to settle.

Every piece of work the stand-in does runs in a task it spawned through `Activity`, and every wait on
something outside the task (a timer, an actor, another call) goes through a `Signal`. A task counts as
busy while it runs or sends a request, and stops counting while it waits on a signal; whoever fires the
signal counts it again on its behalf, so there is no moment between "woken" and "running again" when the
stand-in looks idle. Idle therefore means: nothing in flight and nothing runnable.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Activity:
    """Count the stand-in's busy tasks; `idle()` waits until none is."""

    def __init__(self) -> None:
        """Start with nothing to do."""
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.errors: list[BaseException] = []

    def inc(self) -> None:
        """Count one more busy unit."""
        self._busy += 1
        self._idle.clear()

    def dec(self) -> None:
        """Count one busy unit fewer."""
        self._busy -= 1
        if self._busy == 0:
            self._idle.set()

    def spawn(self, work: Coroutine[Any, Any, Any], name: str = "fake-twilio") -> asyncio.Task[Any]:
        """Run `work` as a tracked task, busy until it waits on a signal or ends."""
        self.inc()
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        """Forget a finished task and keep its crash for `idle()` to raise."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]
        self.dec()

    @property
    def busy(self) -> bool:
        """Tell whether anything runs or is in flight."""
        return self._busy > 0

    async def idle(self) -> None:
        """Wait until nothing runs and nothing is in flight; raise the first crash of a task, if any."""
        while True:
            await self._idle.wait()
            # One turn of the loop lets done-callbacks and freshly woken tasks show themselves.
            await asyncio.sleep(0)
            if not self._busy:
                break
        if self.errors:
            raise self.errors.pop(0)

    async def close(self) -> None:
        """Cancel every task still waiting (the test is over)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Signal(Generic[T]):
    """A one-shot wake-up whose waiter is not busy while it waits."""

    def __init__(self, activity: Activity) -> None:
        """Make an unfired signal."""
        self._activity = activity
        self._future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._counted = False

    @property
    def fired(self) -> bool:
        """Tell whether the signal was fired."""
        return self._future.done()

    def fire(self, value: T) -> None:
        """Wake the waiter with `value` (it counts as busy from now on); a second fire is ignored."""
        if self._future.done():
            return
        self._activity.inc()
        self._counted = True
        self._future.set_result(value)

    async def wait(self) -> T:
        """Wait for the signal without counting as busy."""
        self._activity.dec()
        try:
            return await self._future
        finally:
            if not self._counted:
                self._activity.inc()  # cancelled while waiting: busy again until the task ends


class VirtualClock:
    """An aware UTC clock that moves only when the test says, firing due timers in order."""

    def __init__(self, settle: Callable[[], Awaitable[None]], start: datetime | None = None) -> None:
        """Start at `start` (default: the real current time, to the second); `settle` waits for the stand-in."""
        self._settle = settle
        self.now = (start or datetime.now(UTC)).replace(microsecond=0)
        self._timers: list[tuple[datetime, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def __call__(self) -> datetime:
        """Return the current virtual time (usable as the bridge's `clock`)."""
        return self.now

    def at(self, due: datetime, callback: Callable[[], None]) -> None:
        """Run `callback` when virtual time reaches `due` (at once when it is not in the future)."""
        heapq.heappush(self._timers, (due, next(self._order), callback))

    def after(self, seconds: float, callback: Callable[[], None]) -> None:
        """Run `callback` `seconds` of virtual time from now."""
        self.at(self.now + timedelta(seconds=seconds), callback)

    def next_due(self) -> datetime | None:
        """Return when the next timer fires, if any."""
        return self._timers[0][0] if self._timers else None

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, stopping at each due timer and letting the stand-in settle."""
        target = self.now + timedelta(seconds=seconds)
        await self._settle()
        while self._timers and self._timers[0][0] <= target:
            due, _, callback = heapq.heappop(self._timers)
            self.now = max(self.now, due)
            callback()
            await self._settle()
        self.now = max(self.now, target)
        await self._settle()
