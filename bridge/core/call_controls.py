"""What the agent on a call did with its controls: the recording paused and resumed (no I/O).

Each pause or resume is kept as a toggle dated when the provider confirmed it, whatever order the events
arrive in; the record's `recording_control_interactions` counts them and `not_recording_time` adds up the
time from each pause to the resume after it (a pause still open at the call's end runs to the end).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from bridge.core.events import CallEvent, EventKind

RecordingState = Literal["on", "paused", "off"]
FIELDS = ("recording_control_interactions", "not_recording_time")  # the record's fields for them (record_fields)


class Toggle(BaseModel):
    """One pause or resume of the conversation's recording, when it took effect."""

    at: datetime
    paused: bool


def fold(toggles: list[Toggle], event: CallEvent) -> None:
    """Keep a pause or resume event's toggle once (the same moment and kind twice is one toggle)."""
    if event.kind not in (EventKind.RECORDING_PAUSED, EventKind.RECORDING_RESUMED):
        return
    toggle = Toggle(at=event.at, paused=event.kind == EventKind.RECORDING_PAUSED)
    if toggle not in toggles:
        toggles.append(toggle)
        toggles.sort(key=lambda kept: (kept.at, kept.paused))


def state(toggles: list[Toggle], recorded: bool) -> RecordingState:
    """Return whether the recording is on, paused (the last toggle a pause) or off (nothing is recorded)."""
    if not recorded:
        return "off"
    return "paused" if toggles and toggles[-1].paused else "on"


def not_recording_seconds(toggles: list[Toggle], end: datetime | None) -> int:
    """Return the whole seconds the recording was paused, a pause still open counted to `end`."""
    total, since = 0.0, None
    for toggle in toggles:
        if toggle.paused and since is None:
            since = toggle.at
        elif not toggle.paused and since is not None:
            total += max(0.0, (toggle.at - since).total_seconds())
            since = None
    if since is not None and end is not None:
        total += max(0.0, (end - since).total_seconds())
    return round(total)


def record_fields(toggles: list[Toggle], end: datetime | None) -> dict[str, Any]:
    """Return the record's recording control fields; none when the agent never touched the recording."""
    if not toggles:
        return {}
    return {"recording_control_interactions": len(toggles), "not_recording_time": not_recording_seconds(toggles, end)}
