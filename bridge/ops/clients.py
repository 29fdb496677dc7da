"""Who a request's client is (FORWARDED_ALLOW_IPS), and a per-client limiter whose cost stays bounded.

Heroku's and Fly's routers end TLS and connect to the bridge themselves, so the peer address is the
router's, and the client's address is in X-Forwarded-For. Anybody can send that header, so only entries
the platform appended are believed: a client that forges entries only adds them on the left.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal

from aiohttp import hdrs, web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# "*": every hop is the platform's, so the rightmost entry (the one its router appended) is the client.
Trusted = Literal["*"] | tuple[Network, ...]
UNKNOWN = "unknown"
_LONGEST = 45  # an IPv6 address with an embedded IPv4 one; anything longer is not an address


def parse_trusted(raw: str) -> Trusted | None:
    """Parse FORWARDED_ALLOW_IPS: blank (unset), `*`, or addresses and networks, comma-separated."""
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    if not entries:
        return None
    if entries == ["*"]:
        return "*"
    networks: list[Network] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(
                f"FORWARDED_ALLOW_IPS entry {entry!r} is not an IP address or network (or give * alone)"
            ) from exc
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Read one X-Forwarded-For entry: an address, perhaps with a port or in brackets; None for anything else."""
    text = text.strip()
    if len(text) > _LONGEST + 8:
        return None
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # 203.0.113.9:443
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class ClientAddresses:
    """Name a request's client as FORWARDED_ALLOW_IPS says to."""

    def __init__(self, trusted: Trusted | None) -> None:
        """Trust nobody's X-Forwarded-For (None), the platform's (`*`), or these proxies'."""
        self._trusted = trusted

    def of(self, request: web.BaseRequest) -> str:
        """Return the client's address as text (`unknown` when it cannot be told)."""
        peer = request.remote or UNKNOWN
        if self._trusted is None:
            return peer
        entries = [entry for value in request.headers.getall(hdrs.X_FORWARDED_FOR, ()) for entry in value.split(",")]
        for entry in reversed(entries):
            address = _address(entry)
            if address is None:
                return UNKNOWN  # not an address: no proxy wrote it, so nothing left of it is worth more
            if self._trusted == "*" or not any(address in network for network in self._trusted):
                return str(address)
        return peer if not entries else str(_address(entries[0]))  # every entry a proxy: the leftmost


class ClientLimiter:
    """A token bucket per client address, so one address cannot hammer a route (or guess at links).

    Its memory and its cost per request stay bounded whatever the number of clients: the buckets are kept
    in order of last use, so the ones full again (idle for burst / rate seconds, nothing left to remember)
    are at the front and leave as new ones come, and past `capacity` the least recently used one leaves.
    """

    def __init__(
        self,
        burst: int,
        per_second: float,
        *,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Allow `burst` requests at once, refilled at `per_second`, tracking at most `capacity` clients."""
        self._burst = float(burst)
        self._rate = per_second
        self._refilled = burst / per_second
        self._capacity = capacity
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        """Return how many clients are tracked."""
        return len(self._buckets)

    def allow(self, client: str) -> bool:
        """Take one request from the client's bucket; False when it is empty."""
        now = self._clock()
        buckets = self._buckets
        known = buckets.pop(client, None)
        if known is None:
            tokens = self._burst
            # Each bucket is dropped at most once for each one added: constant cost per request, amortised.
            while buckets and (len(buckets) >= self._capacity or now - self._oldest_use() >= self._refilled):
                buckets.popitem(last=False)
        else:
            tokens = min(self._burst, known[0] + (now - known[1]) * self._rate)
        allowed = tokens >= 1.0
        buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        return allowed

    def _oldest_use(self) -> float:
        """Return when the least recently used bucket was last used (an OrderedDict's first entry, in O(1))."""
        return next(iter(self._buckets.values()))[1]
