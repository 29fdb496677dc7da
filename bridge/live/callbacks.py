"""The hook for callbacks (docs/live-view.md, "Callbacks"): listed and cancelled once a store keeps them.

No store of callbacks exists in this bridge yet. When one does, it provides an object with these two methods,
and `create_app` passes `bridge.live.routes.setup` a function returning it from the started app
(`callbacks=lambda app: …`): the board then lists the pending callbacks and the page offers each a Cancel
button, which posts to `/live/callbacks/cancel`. Until then that route answers 404 and the page shows none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class Callbacks(Protocol):
    """What the live view needs of a store of callbacks."""

    async def pending(self) -> Sequence[Mapping[str, Any]]:
        """Return the callbacks not yet placed, each with at least `id`, `line`, `caller` (masked) and `due`."""

    async def cancel(self, callback_id: str, by: str) -> bool:
        """Cancel a pending callback, noting who did; False when it is not pending (placed, or unknown)."""
