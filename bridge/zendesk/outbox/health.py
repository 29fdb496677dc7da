"""Zendesk's health, followed from every answer: probe while it fails, catch the backlog up when it is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from bridge.core.clock import Clock
from bridge.store import Store
from bridge.zendesk.client import ZendeskError
from bridge.zendesk.limiter import URGENT

log = logging.getLogger("bridge.outbox")


class Health:
    """Tell whether Zendesk is failing; while it is, probe it, and once it answers, bring the backlog forward."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        wake: Callable[[], None],
        rng: random.Random,
        probe: Callable[[], Awaitable[object]] | None,
        probe_every: float,
    ) -> None:
        """Bind the store whose backlog a recovery brings forward and the worker's `wake`; nothing runs yet.

        `probe` is a harmless request sent every `probe_every` seconds while Zendesk is failing, to notice
        the moment it answers again.
        """
        self._store = store
        self._clock = clock
        self._wake = wake
        self._rng = rng
        self._probe = probe
        self._probe_every = probe_every
        self._helpers: set[asyncio.Task[None]] = set()
        self._failing = False
        self._prober: asyncio.Task[None] | None = None  # at most one probe loop at a time
        self._catch_up_every = 30.0
        self._caught_up_at = float("-inf")
        self._catch_up_waiting = False  # a catch-up is scheduled for when the last one is old enough
        self._stopping = False

    @property
    def failing(self) -> bool:
        """Tell whether Zendesk's last answer was a failure (5xx or none)."""
        return self._failing

    def answered(self, status: int) -> None:
        """Follow Zendesk's health from every answer (0: none): probe while failing, catch up when it is back."""
        if status == 0 or status >= 500:
            if not self._failing:
                self._failing = True
                self._start_probing(first_wait=True)
        elif self._failing:
            self._failing = False
            self._schedule_catch_up()

    async def restarted(self) -> None:
        """After a restart, probe before the backlog's backoff runs out: Zendesk may be back already."""
        try:
            stats = await self._store.stats(self._clock())
        except Exception:
            return
        if stats.pending and self._probe is not None:
            self._failing = True  # not known to be up: the probe's answer decides, and may bring them forward
            self._start_probing(first_wait=False)

    async def stop(self) -> None:
        """Stop probing and catching up, and wait until they have."""
        self._stopping = True
        for helper in list(self._helpers):
            helper.cancel()
        await asyncio.gather(*self._helpers, return_exceptions=True)

    def _start_probing(self, *, first_wait: bool) -> None:
        """Probe Zendesk while it fails, unless a probe loop already runs (one would double the traffic)."""
        if self._prober is None or self._prober.done():
            self._prober = self._spawn(self._probing(first_wait=first_wait))

    def _schedule_catch_up(self) -> None:
        """Bring the backlog forward now, or once the last catch-up is `_catch_up_every` old.

        A partial outage (one endpoint failing, others answering) flips Zendesk's health often: catching up
        on every flip would retry the backlog every few seconds instead of on its backoff. A recovery that
        comes too soon is postponed, never dropped, or the backlog would wait out its whole backoff.
        """
        if self._catch_up_waiting:
            return
        self._catch_up_waiting = True
        delay = max(0.0, self._caught_up_at + self._catch_up_every - asyncio.get_running_loop().time())
        self._spawn(self._catch_up_after(delay))

    async def _catch_up_after(self, delay: float) -> None:
        """Wait `delay` seconds, then catch up unless Zendesk is failing again (its recovery will)."""
        try:
            if delay > 0:
                await asyncio.sleep(delay)
        finally:
            self._catch_up_waiting = False
        if self._failing:
            return
        self._caught_up_at = asyncio.get_running_loop().time()
        await self._catch_up()

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None] | None:
        """Run a helper (probe, catch-up) as a tracked task; None once stopping."""
        if self._stopping:
            if asyncio.iscoroutine(work):
                work.close()
            return None
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)
        return task

    async def _probing(self, *, first_wait: bool) -> None:
        """Send the probe now and then while Zendesk fails; its answer (via `answered`) ends the outage."""
        wait = first_wait
        URGENT.set(False)  # a probe is background work, whichever delivery's answer started the loop
        while self._failing and not self._stopping and self._probe is not None:
            if wait:
                # Jittered, so several instances do not probe in step.
                await asyncio.sleep(self._probe_every * self._rng.uniform(0.5, 1.0))
                if not self._failing:
                    return
            wait = True
            try:
                with contextlib.suppress(ZendeskError):  # a failure's status already reached `answered`
                    await self._probe()
            except Exception:
                log.exception("outbox: probing Zendesk failed unexpectedly")

    async def _catch_up(self) -> None:
        """Bring every action waiting out an outage's backoff forward; the limiter and pops-first order pace it."""
        try:
            count = await self._store.bring_forward(self._clock())
        except Exception:
            log.exception("outbox: bringing waiting actions forward failed; they go at their backoff")
            return
        if count:
            log.info("outbox: Zendesk answers again; %d waiting action(s) brought forward", count)
        self._wake()
