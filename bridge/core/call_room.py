"""A call's room: where an answered call moves to be held, transferred or joined by others (no I/O).

A call that is never held or transferred never enters one. Once it does, the customer stays in the room while
agents join and leave; the room's happenings are kept as they arrive and every figure is read from them sorted,
so a late or repeated report changes nothing it should not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from bridge.core.events import CallEvent

# What can happen in a room: the bridge began moving the customer there (moving) or could not (stayed), the
# customer was brought in (entered), the room started or ended, someone joined, left, was held or taken off hold,
# and the customer's own stay ended (left).
Happening = Literal["moving", "stayed", "entered", "start", "end", "join", "leave", "hold", "unhold", "left"]
HAPPENINGS: frozenset[str] = frozenset(
    {"moving", "stayed", "entered", "start", "end", "join", "leave", "hold", "unhold", "left"}
)
AGENT = "agent:"  # the label an agent joins under: agent:<identity without its client: prefix>
CUSTOMER = "customer"
HUNG_UP = "participant_hung_up"  # why a participant left: they hung up themselves


class Recorded(BaseModel):
    """A recording the room made (it records from its start to its end)."""

    sid: str | None = None
    url: str | None = None
    duration: int | None = None
    started_at: datetime | None = None
    status: str | None = None


class Happened(BaseModel):
    """One thing that happened in the room, as reported."""

    what: Happening
    at: datetime
    sequence: int | None = None  # the provider's order within the room, when it gives one
    sid: str | None = None  # whose leg it was about
    label: str | None = None  # who that is: customer, agent:<name>, or a number
    reason: str | None = None  # why they left, when they did


class Room(BaseModel):
    """The call's room: when the customer was brought in, everything that happened there, what it recorded."""

    entered_at: datetime
    provider_id: str | None = None
    happened: list[Happened] = Field(default_factory=list)
    recordings: list[Recorded] = Field(default_factory=list)

    def timeline(self) -> list[Happened]:
        """Return what happened in order: by time, then by the provider's sequence."""
        return sorted(self.happened, key=lambda h: (h.at, h.sequence if h.sequence is not None else -1))


def note(room: Room | None, event: CallEvent, customer_sid: str) -> Room | None:
    """Keep one report of the room (a repeated one once), opening the room at its first report.

    A move that failed (`stayed`) before anything happened there leaves the call as it was: no room.
    """
    what = event.status or ""
    if what not in HAPPENINGS:
        return room
    if what == "stayed":
        moved = room is not None and any(h.what not in ("moving", "stayed") for h in room.happened)
        return room if moved else None
    if room is None:
        room = Room(entered_at=event.at)
    room.entered_at = min(room.entered_at, event.at)
    room.provider_id = room.provider_id or event.room
    label = CUSTOMER if event.leg_sid == customer_sid else event.leg_to
    happened = Happened(
        what=what,
        at=event.at,
        sequence=event.sequence,
        sid=event.leg_sid,
        label=label,
        reason=event.reason,
    )
    if happened not in room.happened:
        room.happened.append(happened)
    return room


def file_recording(room: Room | None, recording: Recorded, at: datetime) -> Room:
    """File a recording of the room's (a completed one is never replaced by a later report of it)."""
    room = room if room is not None else Room(entered_at=at)
    for index, known in enumerate(room.recordings):
        if known.sid == recording.sid:
            if known.status != "completed":
                room.recordings[index] = recording
            return room
    room.recordings.append(recording)
    return room


@dataclass
class Spans:
    """What the room's timeline comes to: the customer's holds, who talked last, and how it ended."""

    holds: list[tuple[datetime, datetime | None]]  # (from, to): to is None while the hold goes on
    last_agent: str | None  # the identity (client:<name>) of the last agent who joined
    ended_at: datetime | None  # when the customer's stay ended (the room ended, or they left it)
    hung_up_on_hold: bool  # the customer hung up while on hold
    agents_now: set[str]  # the agents (client:<name>) in the room now
    agents_ever: set[str]  # every agent who joined it
    started: bool  # the room started: an agent was with the customer there (so it recorded)

    @property
    def on_hold(self) -> bool:
        """Tell whether the customer is on hold now."""
        return bool(self.holds) and self.holds[-1][1] is None

    def hold_seconds(self, until: datetime) -> int:
        """Return the whole seconds the customer spent on hold (a hold still going counted to `until`)."""
        total = 0.0
        for start, end in self.holds:
            total += max(0.0, ((end or until) - start).total_seconds())
        return round(total)


def spans(room: Room) -> Spans:
    """Read the room's timeline: the customer is on hold while held, or while no agent is with them."""
    holds: list[tuple[datetime, datetime | None]] = []
    agents: set[str] = set()
    ever: set[str] = set()
    started = False
    present = held = False
    last_agent: str | None = None
    ended_at: datetime | None = None

    def holding() -> bool:
        return present and (held or not agents)

    for happened in room.timeline():
        before = holding()
        label = happened.label or ""
        is_customer = label == CUSTOMER
        if happened.what in ("moving", "entered") or (happened.what == "join" and is_customer):
            present = ended_at is None
        elif happened.what == "join" and label.startswith(AGENT):
            agents.add(label)
            last_agent = "client:" + label.removeprefix(AGENT)
            ever.add(last_agent)
            started = started or present
        elif happened.what == "start":
            started = True
        elif happened.what == "leave" and not is_customer:
            agents.discard(label)
        elif happened.what in ("hold", "unhold") and is_customer:
            held = happened.what == "hold"
        elif happened.what in ("end", "left") or (happened.what == "leave" and is_customer):
            present = False
            ended_at = ended_at or happened.at
        after = holding()
        if after and not before:
            holds.append((happened.at, None))
        elif before and not after:
            holds[-1] = (holds[-1][0], happened.at)
    # Hanging up ends the stay in several reports at one moment (the leave, the room's end, the call's own end), in
    # any order: the customer hung up on hold when a hold was on at the moment of their own leave.
    hung_up = [h.at for h in room.happened if h.what == "leave" and h.label == CUSTOMER and h.reason == HUNG_UP]
    hung_up_on_hold = bool(hung_up) and any(start <= hung_up[0] and (end is None or end >= hung_up[0])
                                            for start, end in holds)  # fmt: skip
    now = {"client:" + label.removeprefix(AGENT) for label in agents} if ended_at is None else set()
    return Spans(holds, last_agent, ended_at, hung_up_on_hold, now, ever, started)


def engagements(room: Room, first_agent: str | None, live: bool) -> dict[str, Literal["talking", "talked"]]:
    """Return what each agent is to a call in its room: the one who holds the customer stays on the call.

    The agent who moved the call there (the last to join, else the one who answered) is busy with it while the
    call lives, even alone with nobody (their customer on hold); everyone else only while in the room.
    """
    seen = spans(room)
    out: dict[str, Literal["talking", "talked"]] = dict.fromkeys(seen.agents_ever, "talked")
    holder = seen.last_agent or first_agent
    if holder is not None:
        out[holder] = "talking" if live else "talked"
    for who in seen.agents_now:
        out[who] = "talking" if live else "talked"
    return out


class CallLike(Protocol):
    """What the room needs of a call: its room, and who answered it."""

    @property
    def room(self) -> Room | None:
        """Return the call's room, once it has one."""

    @property
    def answered_agent(self) -> str | None:
        """Return who answered the call (client:<name>, or a number)."""


def members(call_state: CallLike) -> set[str]:
    """Return the agents who may come back into the call's room: whoever answered it, and every agent it saw."""
    room = call_state.room
    if room is None:
        return set()
    seen = spans(room)
    out = set(seen.agents_ever)
    if call_state.answered_agent is not None:
        out.add(call_state.answered_agent)
    return out
