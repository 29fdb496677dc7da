"""Who the client is (FORWARDED_ALLOW_IPS), and a per-client limiter a flood of addresses cannot slow down."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from bridge.ops.clients import ClientAddresses, ClientLimiter, parse_trusted
from bridge.ops.recordings import BURST
from bridge.ops.settings import ConfigError, load_settings
from tests.conftest import BridgeFactory
from tests.hostile_kit import exchange, raw_request

PEER = "192.0.2.1"  # the connecting address: the platform's router, or whoever connected directly


class Transport:
    """The little of a transport a request's `remote` reads: who connected."""

    def get_extra_info(self, name: str, default: object = None) -> object:
        """Return the peer's address."""
        return (PEER, 50000) if name == "peername" else default


def client(setting: str | None, *forwarded: str) -> str:
    """Name the client of a request carrying these X-Forwarded-For headers, under a FORWARDED_ALLOW_IPS."""
    headers = [("X-Forwarded-For", value) for value in forwarded]
    request = make_mocked_request("GET", "/", headers=headers, transport=Transport())  # type: ignore[arg-type]
    return ClientAddresses(parse_trusted(setting) if setting is not None else None).of(request)


@pytest.mark.parametrize(
    ("setting", "forwarded", "expected"),
    [
        # Unset: the peer, whatever the header says.
        (None, ["198.51.100.7"], PEER),
        # *: the rightmost entry, the one Heroku's router appended; what a client forged sits to its left.
        ("*", ["198.51.100.7"], "198.51.100.7"),
        ("*", ["203.0.113.66, 198.51.100.7"], "198.51.100.7"),
        ("*", ["203.0.113.66", "198.51.100.7"], "198.51.100.7"),  # two headers read as one list
        ("*", [], PEER),
        ("*", ["not-an-address, 198.51.100.7"], "198.51.100.7"),
        ("*", ["198.51.100.7, not-an-address"], "unknown"),
        ("*", ["[2001:db8::7]:443"], "2001:db8::7"),
        ("*", ["198.51.100.7:5060"], "198.51.100.7"),
        # A list: the rightmost entry not in it (Fly appends the client's address, then the app's own).
        ("66.241.124.10, 2a09:8280:1::10", ["203.0.113.66, 198.51.100.7, 66.241.124.10"], "198.51.100.7"),
        ("66.241.124.10", ["198.51.100.7, 2a09:8280:1::10"], "2a09:8280:1::10"),
        ("10.0.0.0/8", ["198.51.100.7, 10.1.2.3, 10.9.9.9"], "198.51.100.7"),
        ("10.0.0.0/8", ["10.1.2.3, 10.9.9.9"], "10.1.2.3"),  # every entry a proxy: the leftmost
        ("10.0.0.0/8", ["x, 10.9.9.9"], "unknown"),
    ],
)
def test_the_client_is_the_rightmost_entry_no_trusted_proxy_wrote(
    setting: str | None, forwarded: list[str], expected: str
) -> None:
    """Entries a client forges are on the left, behind the ones the platform appended: they never count."""
    assert client(setting, *forwarded) == expected


def test_forwarded_allow_ips_is_checked_at_start_up() -> None:
    """A bad entry is named when the settings are read; blank means unset."""
    assert load_settings(forwarded_allow_ips=" ").forwarded_allow_ips is None
    assert load_settings(forwarded_allow_ips="*").forwarded_allow_ips == "*"
    with pytest.raises(ConfigError, match=r"FORWARDED_ALLOW_IPS entry 'proxy\.example\.com'"):
        load_settings(forwarded_allow_ips="10.0.0.1, proxy.example.com")


async def test_rotating_x_forwarded_for_does_not_escape_the_limit(make_bridge: BridgeFactory) -> None:
    """Unset, a client's own X-Forwarded-For is ignored; with `*`, what it forges to the left of the router's is."""
    url = f"/recordings/RE{'1' * 32}.mp3?sig=guess"
    async with make_bridge() as bridge:
        statuses = [(await exchange(bridge.url, raw_request("GET", url, {"X-Forwarded-For": f"203.0.113.{n}"})))[0]
                    for n in range(BURST + 1)]  # fmt: skip
        assert statuses[-1] == 429
    async with make_bridge(forwarded_allow_ips="*") as bridge:
        forged = [{"X-Forwarded-For": f"203.0.113.{n}, 198.51.100.7"} for n in range(BURST + 1)]
        statuses = [(await exchange(bridge.url, raw_request("GET", url, headers)))[0] for headers in forged]
        assert statuses[-1] == 429
        other = {"X-Forwarded-For": "198.51.100.8"}  # another client, as the router named it
        assert (await exchange(bridge.url, raw_request("GET", url, other)))[0] == 403


def test_the_limiter_forgets_idle_clients_and_never_tracks_more_than_its_capacity() -> None:
    """A flood of distinct addresses leaves at most `capacity` buckets; full (idle) ones go first."""
    now = [0.0]
    limiter = ClientLimiter(burst=2, per_second=1.0, capacity=100, clock=lambda: now[0])
    for n in range(100_000):
        limiter.allow(f"flood-{n}")
    assert len(limiter) == 100
    assert [limiter.allow("hammer") for _ in range(3)] == [True, True, False]
    now[0] += 1.5  # no bucket full again yet (that takes 2 s): the least recently used one makes room
    limiter.allow("newcomer")
    assert len(limiter) == 100
    now[0] += 1.0  # every bucket but the newcomer's is full again: the next arrival clears them all
    limiter.allow("another")
    assert len(limiter) == 2


def test_a_throttled_client_keeps_its_bucket_through_a_flood_that_fits() -> None:
    """Below capacity, a flood of other addresses does not give a throttled client a fresh burst."""
    now = [0.0]
    limiter = ClientLimiter(burst=2, per_second=0.001, capacity=1000, clock=lambda: now[0])
    assert [limiter.allow("hammer") for _ in range(3)] == [True, True, False]
    for n in range(900):
        limiter.allow(f"flood-{n}")
    assert not limiter.allow("hammer")
