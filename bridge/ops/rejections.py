"""Rejected requests: every one counted in /metrics, each kind logged at most once a second with a count.

Anyone can send the public URL anything; a flood of rejections must not become a flood of log lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import Counter

log = logging.getLogger("bridge.rejected")

UNPARSED = "unparsed"  # a request aiohttp's parser refused: no route to name
GONE = "gone"  # the client went away before its request was complete: a debug line, not a rejection


class Rejections:
    """Count and log rejected requests by kind: the route (its pattern, never the raw path) and the status."""

    def __init__(self, counter: Counter, *, every: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        """Count into `counter` (labels route and status); log each kind at most once per `every` seconds."""
        self._counter = counter
        self._every = every
        self._clock = clock
        self._logged: dict[tuple[str, str], float] = {}
        self._quiet: dict[tuple[str, str], int] = {}

    def rejected(self, route: str, status: int | str, what: str) -> None:
        """Count one rejection; log `what` unless this kind was logged less than a second ago."""
        kind = (route, str(status))
        self._counter.labels(*kind).inc()
        if kind[1] == GONE:
            log.debug("%s", what)
            return
        now = self._clock()
        if now - self._logged.get(kind, float("-inf")) < self._every:
            self._quiet[kind] = self._quiet.get(kind, 0) + 1
            return
        self._logged[kind] = now
        more = self._quiet.pop(kind, 0)
        # The kinds are bounded (a route pattern, a status), so these two maps are too.
        if more:
            log.warning("rejected %s (and %d more %s on %s since the last such line)", what, more, kind[1], route)
        else:
            log.warning("rejected %s", what)
