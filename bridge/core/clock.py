"""The one clock type: an aware UTC datetime; epoch seconds exist only inside the stores' columns."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Return the current time, aware and in UTC."""
    return datetime.now(UTC)


def to_epoch(moment: datetime) -> float:
    """Return an aware datetime as epoch seconds (for a database column)."""
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    """Return epoch seconds (from a database column) as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)
