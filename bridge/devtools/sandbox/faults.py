"""Faults: the rules and random faults to inject into `/api/v2` requests, and what each kind does on the wire."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import math
import random
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bridge.devtools.sandbox.access import too_many_requests

FAULT_KINDS = frozenset({"500", "503", "429", "409", "hang", "drop", "drop_after", "late"})
HANG_SECONDS = 3600.0
HANG_POLL_SECONDS = 0.05


@dataclass
class FaultRule:
    """Describe a fault to inject into matching `/api/v2` requests."""

    method: str | None
    path_prefix: str
    kind: str
    times: int = 1
    retry_after: float = 1.0

    def __post_init__(self) -> None:
        """Reject rules the middleware could not apply."""
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if self.times < 1:
            raise ValueError("times must be at least 1")
        if self.retry_after < 0:
            raise ValueError("retry_after must not be negative")

    def matches(self, method: str, path: str) -> bool:
        """Tell whether this rule applies to a request."""
        method_ok = self.method is None or self.method.upper() == method.upper()
        return method_ok and path.startswith(self.path_prefix)


def check_random(rate: float, kinds: list[str]) -> None:
    """Raise ValueError for random-fault settings that cannot be applied."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError("rate must be between 0 and 1")
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}")
    if rate > 0 and not kinds:
        raise ValueError("kinds must not be empty when rate > 0")


def rule_from_json(raw: Any) -> FaultRule:
    """Build a rule from its JSON form in `POST /sandbox/faults`; raise TypeError or ValueError if it is wrong."""
    if not isinstance(raw, dict):
        raise TypeError("each rule must be an object")
    method = raw.get("method")
    if method is not None and not isinstance(method, str):
        raise TypeError("method must be a string or null")
    return FaultRule(
        method=method,
        path_prefix=str(raw.get("path_prefix", "/api/v2")),
        kind=str(raw["kind"]),
        times=int(raw.get("times", 1)),
        retry_after=float(raw.get("retry_after", 1.0)),
    )


class Faults:
    """Hold the pending fault rules and random-fault setting, and count the requests a hang holds open."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._random: random.Random | None = None
        self._random_config: dict[str, Any] | None = None
        self._active_hangs = 0
        self._hangs_changed = asyncio.Event()
        self._hangs_released = False
        self.background: set[asyncio.Future[web.StreamResponse]] = set()  # late commits still running

    def add(self, rules: list[FaultRule]) -> None:
        """Queue fault rules; each hits its next `times` matching requests, then is used up."""
        # Copies, because `times` counts down and the caller's objects should stay as given.
        self._rules.extend(dataclasses.replace(rule) for rule in rules)

    def set_random(self, rate: float, kinds: list[str], seed: int) -> None:
        """Fault each `/api/v2` request with probability `rate`, kind drawn uniformly from `kinds`."""
        check_random(rate, kinds)
        if rate == 0:
            self._random, self._random_config = None, None
            return
        self._random = random.Random(seed)
        self._random_config = {"rate": rate, "kinds": list(kinds), "seed": seed}

    def clear(self) -> None:
        """Drop every fault rule and stop random faults."""
        self._rules = []
        self._random, self._random_config = None, None

    def state(self) -> dict[str, Any]:
        """Describe the pending fault rules and the random-fault setting."""
        return {
            "rules": [dataclasses.asdict(rule) for rule in self._rules],
            "random": copy.deepcopy(self._random_config),
        }

    def next_fault(self, method: str, path: str) -> FaultRule | None:
        """Pick the fault for one `/api/v2` request, consuming it: rules first, then random faults."""
        rule = next((rule for rule in self._rules if rule.matches(method, path)), None)
        if rule is not None:
            rule.times -= 1
            if rule.times == 0:
                self._rules.remove(rule)
            return rule
        settings = self._random_config
        if self._random is not None and settings is not None and self._random.random() < settings["rate"]:
            return FaultRule(method=None, path_prefix="", kind=self._random.choice(settings["kinds"]))
        return None

    @property
    def active_hangs(self) -> int:
        """Count requests currently held open by a `hang` fault."""
        return self._active_hangs

    @property
    def hangs_released(self) -> bool:
        """Tell whether hanging requests have been told to finish (the app is shutting down)."""
        return self._hangs_released

    def release_hangs(self) -> None:
        """End every current and future `hang` fault early, so a graceful shutdown does not wait."""
        self._hangs_released = True

    def hang_started(self) -> None:
        """Count one more hanging request."""
        self._change_hangs(1)

    def hang_finished(self) -> None:
        """Count one hanging request as finished."""
        self._change_hangs(-1)

    async def wait_for_hangs(self, count: int) -> None:
        """Wait until exactly `count` requests are hanging."""
        while self._active_hangs != count:
            await self._hangs_changed.wait()

    def _change_hangs(self, delta: int) -> None:
        self._active_hangs += delta
        # Wake every waiter, then give later waiters a fresh event to block on.
        changed, self._hangs_changed = self._hangs_changed, asyncio.Event()
        changed.set()


def _connected(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


def drop(request: web.BaseRequest) -> web.Response:
    """Close the connection without an answer."""
    transport = request.transport
    if transport is not None:  # pragma: no branch - None only once the peer has already gone
        transport.close()
    # aiohttp fails to write this to the closed transport, swallows the ConnectionError and moves on.
    return web.Response(status=204)


async def hang(request: web.BaseRequest, faults: Faults) -> web.Response:
    """Hold the request open until the client leaves or the app shuts down, then answer 504."""
    faults.hang_started()
    try:
        # Polled, because aiohttp only cancels handlers on disconnect when handler_cancellation=True.
        for _ in range(int(HANG_SECONDS / HANG_POLL_SECONDS)):
            if faults.hangs_released or not _connected(request):
                break
            await asyncio.sleep(HANG_POLL_SECONDS)
    finally:
        faults.hang_finished()
    return web.json_response({"error": "GatewayTimeout", "description": "The request hung (sandbox fault)"}, status=504)


def error_response(fault: FaultRule) -> web.Response:
    """Return the answer of a fault that is only a status: 429, 409 DatabaseConflict, 500 or 503."""
    if fault.kind == "429":
        return too_many_requests(math.ceil(fault.retry_after))
    if fault.kind == "409":
        description = "Database collision: another request updated this record at the same time. Try again."
        return web.json_response({"error": "DatabaseConflict", "description": description}, status=409)
    body = {"error": "SandboxFault", "description": f"Injected HTTP {fault.kind}"}
    return web.json_response(body, status=int(fault.kind))
