"""Business hours, pure: whether a line is open at a moment, Zendesk schedules as weekly spans, hours said aloud.

A line's hours are its own weekly spans (`[line.hours]` with a time zone), or a Zendesk schedule named by id,
whose copy the Zendesk side reads (bridge.zendesk.schedules) and hands in as `Hours` by schedule id. A
schedule the bridge has not read (yet, or at all) cannot say the line is closed: the line counts as open,
so callers still reach its agents rather than being turned away on a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta

from bridge.core.call_model import Call, Placed
from bridge.core.events import AfterHours
from bridge.core.lines import DAY_MINUTES, Hours, Line, Opening, Span, is_open

WEEK_MINUTES = 7 * DAY_MINUTES
CLOSED = "after_hours"  # why a caller went to voicemail or heard the closed message: the line was closed
LONGEST_HOLIDAY = 366  # days one holiday may close (a longer range is a mistake, not a holiday)
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
Schedules = Mapping[int, Hours]  # what the bridge read of each Zendesk schedule, by its id


def opening(hours: Hours | None, now: datetime, schedules: Schedules | None = None) -> Opening:
    """Say whether hours are open at `now`: the line's own, or the Zendesk schedule's as last read."""
    if hours is None or hours.schedule_id is None:
        return is_open(hours, now)
    schedule = (schedules or {}).get(hours.schedule_id)
    if schedule is None:
        return Opening(None, f"Zendesk schedule {hours.schedule_id}: not read, so treated as open")
    inner = is_open(schedule, now)
    return Opening(inner.open, f"Zendesk schedule {hours.schedule_id}: {inner.why}")


def after_hours(line: Line, now: datetime, schedules: Schedules | None = None) -> AfterHours | None:
    """Return where a caller of the line goes when it is closed at `now`; None when it is open (or cannot tell)."""
    if opening(line.hours, now, schedules).open is not False:
        return None
    kind = line.after_hours.kind
    return "forward" if kind == "forward" else "message" if kind == "message" else "voicemail"


def close(call: Call, kind: AfterHours, line: Line, at: datetime) -> None:
    """Send the caller of a closed line where it sends callers after hours, once; nobody is offered the call.

    `line` is the one closed: the number called, or the line its menu led to. Voicemail and the message place
    the caller at once; a forward places them at its number (a forward that rings out then goes to the line's
    voicemail or the apology, as a menu's forward does). A place routing decided first (a replay's late
    arrival) stands.
    """
    if call.after_hours is not None:
        return
    call.after_hours = kind
    call.voicemail_offered = call.voicemail_offered or kind == "voicemail"
    if call.placed is not None and call.placed.kind != "menu":
        return
    if kind == "forward" and line.after_hours.value:
        call.placed = Placed(kind="forward", at=at, to=line.after_hours.value)
    else:
        call.placed = Placed(kind="voicemail" if kind == "voicemail" else "unavailable", at=at, reason=CLOSED)


def resolved(hours: Hours | None, schedules: Schedules | None) -> Hours | None:
    """Return the hours that apply: the line's own, or its Zendesk schedule's as read (None: unknown or none)."""
    if hours is None or hours.schedule_id is None:
        return hours
    return (schedules or {}).get(hours.schedule_id)


def week_of_intervals(intervals: Iterable[tuple[int, int]]) -> tuple[tuple[Span, ...], ...]:
    """Turn Zendesk's intervals (minutes since Sunday 00:00) into each weekday's spans, Monday first.

    Zendesk docs, Schedules, "Intervals": start_time and end_time count minutes from Sunday midnight; an
    interval cannot span calendar days, and 0 or 10080 is the midnight between Saturday and Sunday. An
    interval that crosses midnight anyway is split at it, so nothing Zendesk sends is lost.
    """
    days: list[list[Span]] = [[] for _ in range(7)]
    for raw_start, raw_end in intervals:
        start, end = max(0, raw_start), min(WEEK_MINUTES, raw_end)
        while start < end:
            day, offset = divmod(start, DAY_MINUTES)
            stop = min(end, (day + 1) * DAY_MINUTES)
            days[(day + 6) % 7].append(Span(offset, stop - day * DAY_MINUTES))  # Sunday is day 0 in Zendesk's week
            start = stop
    return tuple(tuple(sorted(spans, key=lambda span: span.start)) for spans in days)


def holiday_dates(ranges: Iterable[tuple[date, date]]) -> frozenset[date]:
    """Return every date the holidays close, each from its start date to its end date, both included."""
    days: set[date] = set()
    for start, end in ranges:
        span = min((end - start).days, LONGEST_HOLIDAY)
        days.update(start + timedelta(days=offset) for offset in range(span + 1))
    return frozenset(days)


def spoken(hours: Hours) -> str:
    """Say the weekly hours for a caller: `Monday to Friday, 9 AM to 5 PM, Chicago time` ('' when never open)."""
    groups: list[tuple[int, int, tuple[Span, ...]]] = []
    for index, spans in enumerate(hours.week):
        if groups and groups[-1][2] == spans and groups[-1][1] == index - 1:
            groups[-1] = (groups[-1][0], index, spans)
        else:
            groups.append((index, index, spans))
    parts = []
    for first, last, spans in groups:
        if not spans:
            continue
        days = DAY_NAMES[first] if first == last else f"{DAY_NAMES[first]} to {DAY_NAMES[last]}"
        times = " and ".join(f"{_clock(span.start)} to {_clock(span.end)}" for span in spans)
        parts.append(f"{days}, {times}")
    if not parts:
        return ""
    zone = (hours.timezone or "").rsplit("/", 1)[-1].replace("_", " ")
    return "; ".join(parts) + (f", {zone} time" if zone else "")


def closed_words(line: Line, kind: AfterHours, hours: Hours | None) -> str:
    """Return what a caller hears when the line is closed: its `after_hours_message`, else the bridge's words.

    `hours` are the ones that apply (the schedule's, for a line on a Zendesk schedule). A forward says nothing
    of its own: only a configured message is said before the call is put through.
    """
    if line.after_hours_message:
        return line.after_hours_message
    if kind == "forward":
        return ""
    when = spoken(hours) if hours is not None else ""
    words = "Thank you for calling. We are closed now." + (f" Our hours are {when}." if when else "")
    if kind == "voicemail":
        return words + " Please leave a message after the tone, and we will call you back."
    return words + " Please call again then. Goodbye." if when else words + " Goodbye."


def _clock(minute: int) -> str:
    """Say a time of day: `9 AM`, `12:30 PM`, `noon`, `midnight`."""
    hour, rest = divmod(minute % DAY_MINUTES, 60)
    if rest == 0 and hour in (0, 12):
        return "midnight" if hour == 0 else "noon"
    suffix = "AM" if hour < 12 else "PM"
    shown = hour % 12 or 12
    return f"{shown}:{rest:02d} {suffix}" if rest else f"{shown} {suffix}"
