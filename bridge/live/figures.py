"""A line's day in figures, pure: from the store's record of calls and a moment, what docs/live-view.md defines.

Every figure is computed from the calls the store keeps (the `calls` table: each call's whole state), never
from counters an instance holds, so a restart changes nothing and every instance sees the same. A day is the
line's day in its hours' time zone (UTC for a line without one). A call belongs to the day the bridge first
heard of it (the row's arrival, on the bridge's clock), and to the line whose agents and queue took it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

from bridge.core.call_menu import waited_for_agent
from bridge.core.call_model import MAX_CALL_SECONDS, Call, Recording
from bridge.core.lines import Lines

HOURS = 24


@dataclass(frozen=True)
class Arrived:
    """A call as the store keeps it: when the bridge first heard of it, and its state."""

    at: datetime
    call: Call


@dataclass(frozen=True)
class Day:
    """One local day of a line: its date and the instants it starts and ends (DST days are 23 or 25 hours)."""

    date: str  # ISO date
    start: datetime
    end: datetime
    zone: tzinfo

    def hour(self, moment: datetime) -> int:
        """Return the local hour of the day a moment falls in (0-23)."""
        return moment.astimezone(self.zone).hour


@dataclass(frozen=True)
class Today:
    """A line's figures for one day (see docs/live-view.md for each one's definition)."""

    calls: int = 0
    answered: int = 0
    missed: int = 0
    abandoned: int = 0
    voicemails: int = 0
    after_hours: int = 0
    average_wait: float | None = None  # seconds to answer, over answered calls whose answer time is known
    longest_wait: float | None = None  # seconds, over every caller who waited for an agent (waiting now too)
    service_level: float | None = None  # answered within the threshold / (answered + missed); None: no such calls
    per_hour: tuple[int, ...] = (0,) * HOURS

    def as_json(self) -> dict[str, object]:
        """Return the figures as the page and GET /live show them (seconds rounded, the share to 0.001)."""
        return {
            "calls": self.calls,
            "answered": self.answered,
            "missed": self.missed,
            "abandoned": self.abandoned,
            "voicemails": self.voicemails,
            "after_hours": self.after_hours,
            "average_wait": _round(self.average_wait),
            "longest_wait": _round(self.longest_wait),
            "service_level": round(self.service_level, 3) if self.service_level is not None else None,
        }


def day_of(now: datetime, zone: tzinfo | None, weeks_back: int = 0) -> Day:
    """Return the local day `now` falls in (or the same weekday `weeks_back` weeks before), in `zone` or UTC."""
    zone = zone or UTC
    local = now.astimezone(zone).date() - timedelta(weeks=weeks_back)
    # Midnight to midnight in local time: combined with the zone, a day that changes to or from DST keeps
    # its true length.
    start = datetime.combine(local, time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(local + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    return Day(local.isoformat(), start, end, zone)


def windows(days: Iterable[Day]) -> tuple[datetime, datetime]:
    """Return the span of arrivals to read to cover every day given."""
    spans = list(days)
    return min(day.start for day in spans), max(day.end for day in spans)


def line_of(call: Call, lines: Lines) -> str:
    """Return the key of the line a call counts for: whose agents and queue took it (a removed line: the first)."""
    return lines.get(call.route_line).key


def inbound_on(arrived: Iterable[Arrived], line: str, lines: Lines, day: Day) -> list[Arrived]:
    """Return the calls in to a line that arrived on a day."""
    return [
        row
        for row in arrived
        if row.call.direction == "inbound" and day.start <= row.at < day.end and line_of(row.call, lines) == line
    ]


def per_hour(arrived: Iterable[Arrived], day: Day) -> tuple[int, ...]:
    """Count calls by the local hour they arrived in."""
    counts = [0] * HOURS
    for row in arrived:
        counts[day.hour(row.at)] += 1
    return tuple(counts)


def message_left(call: Call) -> bool:
    """Tell whether the caller left a voicemail message (a recording that is not absent)."""
    message: Recording | None = call.voicemail or call.voicemail_hint
    return message is not None and message.status != "absent"


def answer_moment(call: Call) -> datetime | None:
    """Return when an agent answered, on the call's own clock (the leg's answer, else when the bridge learned it)."""
    if call.answered_leg is None:
        return None
    leg = call.legs.get(call.answered_leg)
    return (leg.answered_at if leg is not None else None) or call.answer_known_at


def waited(row: Arrived, now: datetime) -> float | None:
    """Return how long the caller waited for an agent: until the answer, until they stopped waiting, or until now.

    Twilio's timestamps date the call's own moments and the bridge's clock dates its arrival; a span that is
    negative or longer than any call (a replay of an old recording) is unknown rather than wrong.
    """
    call = row.call
    if call.direction != "inbound" or not waited_for_agent(call):
        return None
    start = call.first_seen
    until = answer_moment(call)
    if until is None:
        placed = call.placed
        gave_up = placed.at if placed is not None and placed.kind in ("voicemail", "unavailable") else None
        until = gave_up or call.ended_at
    if until is None and not call.over:
        start, until = row.at, now  # still waiting: on the bridge's clock
    if start is None or until is None:
        return None
    seconds = (until - start).total_seconds()
    return seconds if 0 <= seconds <= MAX_CALL_SECONDS else None


def today(arrived: Sequence[Arrived], now: datetime, service_level: float, day: Day) -> Today:
    """Return a line's figures for the day from its calls in that arrived that day (`inbound_on`)."""
    answered = missed = abandoned = voicemails = after_hours = in_time = 0
    to_answer: list[float] = []
    waits: list[float] = []
    for row in arrived:
        call, wait = row.call, waited(row, now)
        if wait is not None:
            waits.append(wait)
        if message_left(call) and call.answered_leg is None:
            voicemails += 1
        if call.answered_leg is not None:
            answered += 1
            if wait is not None:
                to_answer.append(wait)
                in_time += wait <= service_level
        elif call.after_hours is not None:
            after_hours += 1
        elif call.over and waited_for_agent(call):
            missed += 1
            # Abandoned in the queue: the caller hung up while waiting there, before routing sent them on.
            abandoned += call.queued_at is not None and call.no_agent is None
    offered = answered + missed
    return Today(
        calls=len(arrived),
        answered=answered,
        missed=missed,
        abandoned=abandoned,
        voicemails=voicemails,
        after_hours=after_hours,
        average_wait=sum(to_answer) / len(to_answer) if to_answer else None,
        longest_wait=max(waits) if waits else None,
        service_level=in_time / offered if offered else None,
        per_hour=per_hour(arrived, day),
    )


def _round(seconds: float | None) -> int | None:
    return round(seconds) if seconds is not None else None
