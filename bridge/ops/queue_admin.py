"""`bridge queue`: who waits in line and whose callback is kept there, and an admin's cancel of a callback."""

from __future__ import annotations

from datetime import datetime, timedelta

from bridge.core.clock import system_clock
from bridge.core.events import CallEvent, EventKind
from bridge.core.phones import mask
from bridge.core.routing import Waiting, order, positions
from bridge.dispatch import Routes
from bridge.ingest import Ingest
from bridge.ops.connections import open_store
from bridge.ops.settings import Settings


class NoSuchCallback(LookupError):
    """No callback request of that call waits in line."""


def describe(waiting: list[Waiting], now: datetime, queueing: bool, aging: float = 0.0) -> list[str]:
    """Return `bridge queue`'s lines: the counts, then each caller or callback in order of their place.

    `aging` is PRIORITY_AGING_SECONDS: an ordinary caller who waited that long ranks as a priority one.
    """
    rows = sorted(waiting, key=lambda row: order(row, now, aging))
    places = positions(rows, now, aging)
    callbacks = sum(1 for row in rows if row.callback)
    head = f"{len(rows) - callbacks} waiting, {callbacks} callback" + ("" if callbacks == 1 else "s")
    out = [head + ("" if queueing else " (the queue is off: bridge doctor says why)")]
    for row in rows:
        offered = f"  ringing {', '.join(row.offered_to)}" if row.being_offered(now) else ""
        kind = f"callback to {mask(row.callback)}" if row.callback else mask(row.caller)
        due = f"  next try in {_ago(row.retry_at - now)}" if row.retry_at is not None and row.retry_at > now else ""
        out.append(
            f"{places[row.call_sid]:>3}. {kind:<16} line {row.line:<12} waiting {_ago(now - row.arrived_at):<8} "
            f"call {row.call_sid}{offered}{due}"
        )
    return out


async def listing(settings: Settings) -> list[str]:
    """Return `bridge queue`'s lines, read from the database the settings name."""
    store = await open_store(settings)
    try:
        return describe(await store.waiting(), system_clock(), settings.queueing, settings.priority_aging_seconds)
    finally:
        await store.close()


async def cancel(settings: Settings, call_sid: str) -> str:
    """Cancel the callback request of a call: out of line, a note on its ticket; return what was cancelled."""
    store = await open_store(settings)
    try:
        row = next((row for row in await store.waiting() if row.call_sid == call_sid and row.callback), None)
        if row is None:
            raise NoSuchCallback(f"no callback request of call {call_sid} waits in line (see bridge queue)")
        routes = Routes(settings.routing_policy(), dict(settings.agents))
        ingest = Ingest(store, settings.policy(), system_clock, routes)
        event = CallEvent(kind=EventKind.CALLBACK_CANCELLED, call_sid=call_sid, at=system_clock())
        await ingest([f"callback_cancelled|{call_sid}"], event)
        return f"cancelled the callback to {mask(row.callback)} of call {call_sid}"
    finally:
        await store.close()


def _ago(delta: timedelta) -> str:
    """Say a duration briefly: 45 s, 3 min, 2 h."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 60} min" if seconds < 7200 else f"{seconds // 3600} h"
