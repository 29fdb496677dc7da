"""The claim loop: due actions claimed into slots, pops first, delivered, then settled, retried or buried.

All Zendesk I/O happens in the outbox, never in a webhook handler: Twilio gives a webhook 15 s (Twilio docs,
"Webhooks connection overrides": the default read timeout), Zendesk may be slow or down, and an
acknowledged event must survive either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bridge.core.clock import Clock, system_clock
from bridge.core.phones import mask_text
from bridge.ops.metrics import Metrics
from bridge.store import DEAD, DONE, DROPPED, ActionRow, Store, lapses
from bridge.store.claiming import drain, released_if_cancelled
from bridge.zendesk.client import AuthFailed, Conflict, RateLimited, ServerBroken, Unreachable, ZendeskError
from bridge.zendesk.limiter import URGENT, Limiter
from bridge.zendesk.outbox.dispatch import Deliverer
from bridge.zendesk.outbox.health import Health
from bridge.zendesk.outbox.results import Done, Dropped, Outcome

log = logging.getLogger("bridge.outbox")


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often a failed action is tried again (seconds)."""

    base: float = 1.0
    cap: float = 600.0
    max_age: float = 24 * 3600.0
    lease: float = 300.0  # longer than any one delivery, so a live worker never loses its claim
    # After a timeout or a dropped connection the write may still be running inside Zendesk: looking at
    # once ("did it land?") can miss a ticket committed a moment later and create it twice. Zendesk gives
    # no commit deadline; ten seconds is far past the sub-second commits Zendesk normally makes, and
    # short enough that a timed-out voice comment still lands within the call's minute.
    settle: float = 10.0

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """Return the next delay: exponential with full jitter, capped."""
        return rng.uniform(0, min(self.cap, self.base * 2 ** min(attempts, 30)))


def describe(row: ActionRow) -> str:
    """Name an action for logs, with phone numbers masked."""
    return mask_text(f"{row.kind} #{row.id} ({row.key})")


class Worker:
    """Claim due actions and deliver them, pops first, within Zendesk's budget, until stopped."""

    def __init__(
        self,
        store: Store,
        deliverer: Deliverer,
        *,
        retry: RetryPolicy | None = None,
        limiter: Limiter | None = None,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        concurrency: int = 32,
        background: int | None = None,
        pop_deadline: float = 30.0,
        probe: Callable[[], Awaitable[object]] | None = None,
        probe_every: float = 5.0,
        metrics: Metrics | None = None,
    ) -> None:
        """Bind the store and deliverer; nothing runs until `start`.

        At most `background` of the `concurrency` deliveries in flight are background work (voice
        comments, notes), so the rest are always free for pops. `probe` is a harmless request sent every
        `probe_every` seconds while Zendesk is failing, to notice the moment it answers again (`Health`).
        """
        self._metrics = metrics
        self._store = store
        self._deliverer = deliverer
        self._retry = retry or RetryPolicy()
        self._limiter = limiter
        self._clock = clock
        self._rng = rng or random.Random()
        self._concurrency = concurrency
        # A quarter for background work: 8 slots carry 40 requests a second at 200 ms, far above any plan's
        # limit, and leave 24 for pops, so a ring-all burst during a drain (6 to 10 pops per call, calls a few
        # hundred ms apart) never waits for a slot; with 8 free, two calls ringing together queued a round trip.
        self._background = max(1, min(concurrency - 1, background if background is not None else concurrency // 4))
        self._pop_deadline = timedelta(seconds=pop_deadline)
        self._wake = asyncio.Event()
        self._health = Health(store, clock, self._wake.set, self._rng, probe, probe_every)
        self._inflight: dict[asyncio.Task[None], bool] = {}  # each delivery, and whether it is urgent
        self.held = 0  # rounds the loop claimed nothing because a 429 paused everything
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Tell whether the loop is alive."""
        return self._task is not None and not self._task.done()

    @property
    def failing(self) -> bool:
        """Tell whether Zendesk's last answer was a failure (5xx or none)."""
        return self._health.failing

    def wake(self) -> None:
        """Look for work now (new actions were committed)."""
        self._wake.set()

    def answered(self, status: int) -> None:
        """Follow Zendesk's health from every answer (0: none): probe while failing, catch up when it is back."""
        self._health.answered(status)

    def start(self) -> None:
        """Start the loop as a tracked task."""
        self._task = asyncio.create_task(self._run(), name="outbox-worker")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming, let in-flight deliveries finish for up to `grace` seconds, then cancel them."""
        self._stopping = True
        self._wake.set()
        await self._health.stop()
        if self._task is not None:
            await self._task
        await drain(self._inflight, grace)

    async def _run(self) -> None:
        """Claim and dispatch until stopped; sleep until the next due action or a wake-up."""
        await self._health.restarted()
        while not self._stopping:
            self._wake.clear()
            paused = self._limiter.paused_for() if self._limiter is not None else 0.0
            if paused > 0:
                # Zendesk refuses every request until Retry-After: claiming would only burn attempts.
                self.held += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(paused, 1.0))
                continue
            try:
                rows = await self._claim()
            except Exception:
                log.exception("outbox: claiming work failed; trying again shortly")
                rows = []
            for row in rows:
                task = asyncio.create_task(self._process(row))
                self._inflight[task] = row.urgent
                task.add_done_callback(self._finished)
            if rows:
                continue
            await self._sleep()

    async def _claim(self) -> list[ActionRow]:
        """Claim urgent work into any free slot, background work only into its own share."""
        free = self._concurrency - len(self._inflight)
        if free <= 0:
            return []
        now = self._clock()
        room = self._background - sum(1 for urgent in self._inflight.values() if not urgent)
        if room >= free:  # one claim, urgent first, cannot overfill the background share
            return await self._store.claim(now, free, self._retry.lease)
        rows = await self._store.claim(now, free, self._retry.lease, urgent_only=True)
        room = min(free - len(rows), room)
        if room > 0:
            rows += await self._store.claim(now, room, self._retry.lease)
        return rows

    def _finished(self, task: asyncio.Task[None]) -> None:
        """Forget a finished delivery and look for more work."""
        self._inflight.pop(task, None)
        self._wake.set()

    async def _sleep(self) -> None:
        """Wait for a wake-up or until the next claimable action is due (at most a second)."""
        timeout = 1.0
        if len(self._inflight) < self._concurrency:
            try:
                due = await self._store.next_due()
            except Exception:
                due = None
            if due is not None:
                timeout = min(timeout, max(0.01, (due - self._clock()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _process(self, row: ActionRow) -> None:
        """Deliver one action and record the outcome; never let an exception escape."""
        URGENT.set(row.urgent)  # this task's own context: its requests take tokens with the action's priority
        try:
            async with released_if_cancelled(self._store, row.id):
                await self._attempt(row)
        except Exception:
            log.exception("outbox: recording the outcome of %s failed", describe(row))

    def _expired(self, row: ActionRow, at: datetime) -> bool:
        """Tell whether a pop or routing's look-up would land after it stops mattering (POP_DEADLINE_SECONDS)."""
        return lapses(row.action) and at - row.created_at > self._pop_deadline

    async def _expire(self, row: ActionRow) -> None:
        """Drop a pop that can no longer land while the agent's phone rings."""
        reason = f"past its deadline of {self._pop_deadline.total_seconds():.0f} s"
        await self._store.finish(row.id, DROPPED, result=None, error=reason, now=self._clock())
        self._count(row, "expired")
        log.info("outbox: %s for call %s dropped: %s", describe(row), row.call_sid, reason)

    async def _attempt(self, row: ActionRow) -> None:
        """Try the action once and settle, retry or bury it."""
        now = self._clock()
        if self._expired(row, now):
            await self._expire(row)
            return
        if now - row.created_at > timedelta(seconds=self._retry.max_age):
            error = f"gave up after {self._retry.max_age:.0f} s; last error: {row.last_error or 'none'}"
            await self._store.finish(row.id, DEAD, result=None, error=error, now=now)
            self._count(row, "dead")
            log.error("outbox: %s for call %s is a dead letter: %s", describe(row), row.call_sid, error)
            return
        try:
            deps = await self._store.results(row.needs)
            outcome = await self._deliverer.deliver(row, deps)
        except RateLimited as exc:
            if self._limiter is not None:
                self._limiter.pause(exc.retry_after)  # the whole account is refused, not just this row
            await self._later(row, exc.retry_after, exc)
        except (ServerBroken, Unreachable) as exc:
            # 5xx and timeouts are transient. When the request may have reached Zendesk, the write may still
            # commit after we gave up, so the next attempt's "did it land?" look-up waits for that.
            delay = self._retry.backoff(row.attempts, self._rng)
            if getattr(exc, "uncertain", False):
                delay = max(delay, self._retry.settle)
            await self._later(row, delay, exc)
        except (Conflict, AuthFailed) as exc:
            # 409: an agent saved the ticket at the same moment and nothing was written; try again. A
            # credentials problem is fixed by an operator, after which the backlog must still go out.
            await self._later(row, self._retry.backoff(row.attempts, self._rng), exc)
        except ZendeskError as exc:
            error = f"{exc} {exc.body}".strip()
            await self._store.finish(row.id, DEAD, result=None, error=error, now=self._clock())
            self._count(row, "dead")
            log.error("outbox: %s for call %s is a dead letter: %s", describe(row), row.call_sid, mask_text(error))
        except Exception as exc:  # a bug must not lose the action: keep it and retry later
            log.exception("outbox: %s for call %s failed unexpectedly", describe(row), row.call_sid)
            await self._later(row, self._retry.backoff(row.attempts, self._rng), exc)
        else:
            await self._settle(row, outcome)

    async def _later(self, row: ActionRow, delay: float, exc: Exception) -> None:
        """Schedule another attempt after `delay` seconds, unless a pop would be past its deadline by then."""
        now = self._clock()
        next_at = now + timedelta(seconds=delay)
        if self._expired(row, next_at):
            await self._expire(row)
            return
        await self._store.retry_later(row.id, next_at=next_at, error=str(exc), now=now)
        self._count(row, "retry")
        log.warning("outbox: %s for call %s failed (%s); retry in %.1f s", describe(row), row.call_sid, exc, delay)

    async def _settle(self, row: ActionRow, outcome: Outcome) -> None:
        """Record a delivered or dropped action."""
        now = self._clock()
        if isinstance(outcome, Done):
            if outcome.follow_ups:
                await self._store.add_actions(outcome.follow_ups, now=now)
            await self._store.finish(row.id, DONE, result=outcome.result.encode(), error=None, now=now)
            self._count(row, "delivered")
            if self._metrics is not None:
                self._metrics.delivery.labels(row.kind).observe(max(0.0, (now - row.created_at).total_seconds()))
            log.info("outbox: %s for call %s delivered", describe(row), row.call_sid)
        elif isinstance(outcome, Dropped):
            await self._store.finish(row.id, DROPPED, result=None, error=outcome.reason, now=now)
            self._count(row, "dropped")
            log.info("outbox: %s for call %s dropped: %s", describe(row), row.call_sid, outcome.reason)
        else:
            self._count(row, "delivered")
        self._wake.set()

    def _count(self, row: ActionRow, outcome: str) -> None:
        """Count one attempt's outcome."""
        if self._metrics is not None:
            self._metrics.actions.labels(row.kind, outcome).inc()
