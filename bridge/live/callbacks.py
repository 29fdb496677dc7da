"""The live view's callbacks (docs/live-view.md, "Callbacks"): the requests kept in line, and their cancel.

`create_app` passes `bridge.live.routes.setup` the callbacks of the started app (docs/callbacks.md): the board
lists the pending ones and the page offers each a Cancel button, which posts to `/live/callbacks/cancel` and
cancels it as `bridge queue cancel` does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from bridge.core.clock import Clock
from bridge.core.events import CallEvent, EventKind
from bridge.core.phones import mask
from bridge.ingest import Ingest
from bridge.store import Store

log = logging.getLogger("bridge.live")


class Callbacks(Protocol):
    """What the live view needs of a store of callbacks."""

    async def pending(self) -> Sequence[Mapping[str, Any]]:
        """Return the callbacks not yet placed, each with at least `id`, `line`, `caller` (masked) and `due`."""

    async def cancel(self, callback_id: str, by: str) -> bool:
        """Cancel a pending callback, noting who did; False when it is not pending (placed, or unknown)."""


class QueuedCallbacks:
    """The callback requests kept in the queue's rows, cancelled through the ingest (once, on any instance)."""

    def __init__(self, store: Store, ingest: Ingest, clock: Clock) -> None:
        """Bind the store whose queue holds the requests, the way into it, and the clock."""
        self._store = store
        self._ingest = ingest
        self._clock = clock

    async def pending(self) -> Sequence[Mapping[str, Any]]:
        """Return the callbacks waiting for their turn, by the call that asked for each."""
        rows = [row for row in await self._store.waiting() if row.callback]
        return [
            {"id": row.call_sid, "line": row.line, "caller": mask(row.callback),
             "due": (row.retry_at or row.arrived_at).isoformat()}
            for row in rows
        ]  # fmt: skip

    async def cancel(self, callback_id: str, by: str) -> bool:
        """Cancel a callback still in line, as `bridge queue cancel` does (its ticket gets the note)."""
        waiting = await self._store.waiting()
        if not any(row.call_sid == callback_id and row.callback for row in waiting):
            return False
        event = CallEvent(kind=EventKind.CALLBACK_CANCELLED, call_sid=callback_id, at=self._clock())
        await self._ingest([f"callback_cancelled|{callback_id}"], event)
        log.info("callback of call %s cancelled by %s", callback_id, by)
        return True
