"""A call's room: where an answered call moves to be held, transferred or joined by others (no I/O).

A call that is never held or transferred never enters one. Once it does, the customer stays in the room while
agents join and leave; the room's happenings are kept as they arrive and every figure is read from them sorted,
so a late or repeated report changes nothing it should not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from bridge.core.events import CallEvent

# What can happen in a room: the bridge began moving the customer there (moving) or could not (stayed), the
# customer was brought in (entered), the room started or ended, someone joined, left, was held or taken off hold,
# the customer's own stay ended (left); and the bridge's own decisions: someone invited in (invite, its `reason`
# the way: transfer, consult or add), a consultation completed as a transfer (complete) or called off (cancel).
# `modify` with reason `owner`: a participant's leaving now ends the room (the one a consultation completed to).
# `line`: the customer was transferred to a line (its key the label): they wait in its queue until an agent takes them
# (reason `returned`: the agent who held them went away, and the bridge gave them back to the line).
Happening = Literal[
    "moving", "stayed", "entered", "start", "end", "join", "leave", "hold", "unhold", "left", "invite", "complete",
    "cancel", "modify", "line",
]  # fmt: skip
HAPPENINGS: frozenset[str] = frozenset(
    {"moving", "stayed", "entered", "start", "end", "join", "leave", "hold", "unhold", "left", "invite", "complete",
     "cancel", "modify", "line"}
)  # fmt: skip
WAYS = ("transfer", "consult", "add")  # how someone is invited in; their label says it after a `|`
OWNER = "owner"  # a `modify` report's reason: the participant's leaving now ends the room
AGENT = "agent:"  # the label an agent joins under: agent:<identity without its client: prefix>
CUSTOMER = "customer"
HUNG_UP = "participant_hung_up"  # why a participant left: they hung up themselves
MOVED = "participant_updated_via_api"  # why a participant left: the bridge moved their call (into a fresh room)
NOT_ANSWERED = "participant_add_failed"  # why a participant left: an invitation nobody answered
RETURNED = "returned"  # a `line` note's reason: the agent who held the customer went away, so the line has them


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
    room: str | None = None  # which of the call's rooms at the provider (a cold transfer starts a fresh one)


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
        room=event.room,
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


@dataclass(frozen=True)
class Transfer:
    """A transfer of the call: who handed it on, to whom, and when the receiver took it."""

    at: datetime
    by: str | None  # client:<name> (None: unknown)
    to: str  # client:<name>, or the number it went to
    line: str | None = None  # the line the call was transferred to, whose agent `to` took it
    lined_at: datetime | None = None  # when it was transferred to that line
    returned: bool = False  # not transferred by `by`: they went away with the customer on hold (RETURNED)


@dataclass
class Spans:
    """What the room's timeline comes to: the customer's holds, who has the call, and how it ended."""

    holds: list[tuple[datetime, datetime | None]]  # (from, to): to is None while the hold goes on
    last_agent: str | None  # the agent (client:<name>) who has the call now: took it last, by answer or transfer
    ended_at: datetime | None  # when the customer's stay ended (the room ended, or they left it)
    hung_up_on_hold: bool  # the customer hung up while on hold
    agents_now: set[str]  # the agents (client:<name>) in the room now
    agents_ever: set[str]  # every agent who joined it
    started: bool  # the room started: someone was with the customer there (so it recorded)
    transfers: list[Transfer] = field(default_factory=list)
    consults: list[tuple[datetime, datetime | None]] = field(default_factory=list)  # consulted party in the room
    pending: dict[str, str] = field(default_factory=dict)  # invited, not yet in: label -> way (transfer|consult|add)
    others_now: set[str] = field(default_factory=set)  # numbers in the room now (a transfer or a third party)
    sids: dict[str, str] = field(default_factory=dict)  # the call of each participant in the room or invited, by label
    consulted: str | None = None  # the label of the colleague being consulted (invited or in the room)
    in_line: str | None = None  # the line the customer waits in now (transferred to it, no agent took them yet)
    rang_out: tuple[str, ...] = ()  # the agents (client:<name>) whose invitations rang out, in order
    hung_up_in_line: bool = False  # the customer hung up while waiting in a line's queue

    @property
    def on_hold(self) -> bool:
        """Tell whether the customer is on hold now."""
        return bool(self.holds) and self.holds[-1][1] is None

    @property
    def consulting(self) -> bool:
        """Tell whether a consultation is going on (or ringing): the customer held while agents talk."""
        return any(way == "consult" for way in self.pending.values()) or (
            bool(self.consults) and self.consults[-1][1] is None
        )

    def hold_seconds(self, until: datetime) -> int:
        """Return the whole seconds the customer spent on hold (a hold still going counted to `until`)."""
        return _total(self.holds, until)

    def consult_seconds(self, until: datetime) -> int:
        """Return the whole seconds agents spent consulting while the customer waited."""
        return _total(self.consults, until)


def _total(spans_: list[tuple[datetime, datetime | None]], until: datetime) -> int:
    """Return the whole seconds of some spans (one still open counted to `until`)."""
    return round(sum(max(0.0, ((end or until) - start).total_seconds()) for start, end in spans_))


def who_of(label: str) -> str:
    """Return who a participant's label names: client:<name> for an agent, else the number (its way left off)."""
    who = label.partition("|")[0]
    return "client:" + who.removeprefix(AGENT) if who.startswith(AGENT) else who


def _way(label: str) -> str | None:
    """Return how a participant was invited in, as their label says (agent:bob|consult): transfer, consult or add."""
    way = label.split("|")[1] if "|" in label else ""
    return way if way in WAYS else None


def _line_of(label: str) -> str | None:
    """Return the line an agent was invited from, as their label says (agent:bob|transfer|Sales), if any."""
    parts = label.split("|")
    return parts[2] if len(parts) > 2 and parts[2] else None


def label_of(who: str, way: str | None = None, line: str | None = None) -> str:
    """Return the label a participant joins under: agent:<name> or the number; `|way` after, then `|line` if any.

    The line an agent is invited from is in their label so that the room's own reports say the call was transferred
    to that line, whatever else the bridge noted.
    """
    base = AGENT + who.removeprefix("client:") if who.startswith("client:") else who
    return f"{base}|{way}" + (f"|{line}" if line else "") if way else base


class _Reading:
    """The room read report by report (the state `spans` walks)."""

    def __init__(self) -> None:
        """Start with nobody in the room."""
        self.holds: list[tuple[datetime, datetime | None]] = []
        self.consults: list[tuple[datetime, datetime | None]] = []
        self.transfers: list[Transfer] = []
        self.inside: set[str] = set()  # labels of everyone but the customer in the room now
        self.ever: set[str] = set()
        self.pending: dict[str, str] = {}
        self.consulted: str | None = None
        self.owner: str | None = None
        self.started = self.present = self.held = False
        self.ended_at: datetime | None = None
        self.current: str | None = None  # the room the customer is in now (a cold transfer starts a fresh one)
        self.leaving: str | None = None  # the room the bridge is moving the customer out of, into a fresh one
        self.earlier: list[str] = []  # the rooms the customer was in before
        self.sids: dict[str, str] = {}
        self.answered: set[str] = set()  # the calls that joined or left the room, whenever they did
        self.line: tuple[str, datetime, str | None] | None = None  # the line waited in: key, since, who sent them
        self.returned = False  # the line has them because their agent went away (RETURNED), not by a transfer
        self.rang_out: list[str] = []

    def holding(self) -> bool:
        """Tell whether the customer is on hold: held, or in the room with nobody."""
        return self.present and (self.held or not self.inside)

    def read(self, happened: Happened) -> None:
        """Take one report into account."""
        label, what = happened.label or "", happened.what
        is_customer = label == CUSTOMER
        if what in ("moving", "entered") or (what == "join" and is_customer):
            self.present = self.ended_at is None
            if what == "moving" and self.current is not None:
                self.leaving = self.current  # moved on from a room: its end is not the call's
            if what == "join" and happened.room is not None and happened.room != self.current:
                # A fresh room: whoever was in the last one left with it (it ended when the customer was moved).
                if self.current is not None:
                    self.earlier.append(self.current)
                self.current, self.inside, self.held = happened.room, set(), False
                self.sids = {label: sid for label, sid in self.sids.items() if label in self.pending}
        elif what == "end" and happened.room is not None and happened.room in (self.leaving, *self._before()):
            return  # the room the customer was moved out of ended; they are in a fresh one
        elif what == "leave" and is_customer and happened.reason == MOVED:
            return  # moved into a fresh room by the bridge: still the call
        elif what == "join":
            self._joined(happened, label)
        elif what == "leave" and not is_customer:
            self._left(happened, label)
        elif what in ("hold", "unhold") and is_customer:
            self.held = what == "hold"
        elif what == "line" and label and self.ended_at is None:
            self.line = (label, happened.at, self.owner)
            self.returned = happened.reason == RETURNED
        elif what == "invite" and label and not (happened.sid and happened.sid in self.answered):
            # An invitation whose call already joined or left the room (by Twilio's clock, which may run behind
            # the bridge's) is not waiting for anyone.
            self.pending[label] = happened.reason or "add"
            if happened.sid:
                self.sids[label] = happened.sid
        elif self.consulted is not None and (what == "complete" or (what == "modify" and happened.reason == OWNER)):
            if what == "complete" or label == self.consulted:
                self._complete(happened.at)
        elif what == "cancel":
            self._end_consult(happened.at)
            self.pending = {k: v for k, v in self.pending.items() if v != "consult"}
        elif what in ("end", "left") or (what == "leave" and is_customer):
            self.present = False
            self.ended_at = self.ended_at or happened.at

    def _before(self) -> tuple[str, ...]:
        """Return the rooms the customer was in before the one they are in now."""
        return tuple(self.earlier)

    def _joined(self, happened: Happened, label: str) -> None:
        """Someone came in: a transfer's receiver takes the call, a consulted agent starts the consultation."""
        self.inside.add(label)
        if happened.sid:
            self.sids[label] = happened.sid
        self.started = self.started or self.present
        if label.startswith(AGENT):
            self.ever.add(label)
        way = self.pending.pop(label, None) or _way(label)
        line = _line_of(label)
        if way == "transfer" and (self.line is not None or line is not None) and label.startswith(AGENT):
            key, since, by = self.line or (line, None, self.owner)
            returned = self.returned and self.line is not None
            self.transfers.append(
                Transfer(happened.at, who_of(by) if by else None, who_of(label), line or key, since, returned)
            )
            self.owner, self.line = label, None
        elif way == "transfer":
            self.transfers.append(Transfer(happened.at, who_of(self.owner) if self.owner else None, who_of(label)))
            self.owner = label if label.startswith(AGENT) else self.owner
        elif way == "consult":
            self.consulted = label
            self.consults.append((happened.at, None))

    def _left(self, happened: Happened, label: str) -> None:
        """Someone left (or never came: an invitation nobody answered)."""
        self.inside.discard(label)
        self.sids.pop(label, None)
        self.pending.pop(label, None)
        if happened.reason == NOT_ANSWERED:  # an invitation rang out, whichever clock dated it before its note
            self.rang_out.append(who_of(label))
        if label == self.consulted:
            self._end_consult(happened.at)

    def _complete(self, at: datetime) -> None:
        """Complete the consultation as a transfer: the consulted colleague has the call now."""
        assert self.consulted is not None
        self.transfers.append(Transfer(at, who_of(self.owner) if self.owner else None, who_of(self.consulted)))
        self.owner = self.consulted if self.consulted.startswith(AGENT) else self.owner
        self._end_consult(at)

    def _end_consult(self, at: datetime) -> None:
        """Close the consultation going on, if any."""
        if self.consults and self.consults[-1][1] is None:
            self.consults[-1] = (self.consults[-1][0], at)
        self.consulted = None


def spans(room: Room) -> Spans:
    """Read the room's timeline: the customer is on hold while held, or while nobody is with them."""
    reading = _Reading()
    reading.answered = {h.sid for h in room.happened if h.what in ("join", "leave") and h.sid}
    for happened in room.timeline():
        before = reading.holding()
        reading.read(happened)
        after = reading.holding()
        if after and not before:
            reading.holds.append((happened.at, None))
        elif before and not after:
            reading.holds[-1] = (reading.holds[-1][0], happened.at)
    # Hanging up ends the stay in several reports at one moment (the leave, the room's end, the call's own end), in
    # any order: the customer hung up on hold when a hold was on at the moment of their own leave.
    hung_up = [h.at for h in room.happened if h.what == "leave" and h.label == CUSTOMER and h.reason == HUNG_UP]
    hung_up_on_hold = bool(hung_up) and any(start <= hung_up[0] and (end is None or end >= hung_up[0])
                                            for start, end in reading.holds)  # fmt: skip
    live = reading.ended_at is None
    hung_up_in_line = bool(hung_up) and reading.line is not None and reading.line[1] <= hung_up[0]
    agents_now = {who_of(label) for label in reading.inside if label.startswith(AGENT)} if live else set()
    others = {who_of(label) for label in reading.inside if not label.startswith(AGENT)} if live else set()
    last = who_of(reading.owner) if reading.owner is not None else None
    return Spans(
        holds=reading.holds,
        last_agent=last,
        ended_at=reading.ended_at,
        hung_up_on_hold=hung_up_on_hold,
        agents_now=agents_now,
        agents_ever={who_of(label) for label in reading.ever},
        started=reading.started,
        transfers=reading.transfers,
        consults=reading.consults,
        pending=reading.pending if live else {},
        others_now=others,
        sids=dict(reading.sids) if live else {},
        consulted=reading.consulted or next((k for k, v in reading.pending.items() if v == "consult"), None),
        in_line=reading.line[0] if reading.line is not None and live else None,
        rang_out=tuple(reading.rang_out),
        hung_up_in_line=hung_up_in_line,
    )


def engagements(
    room: Room, first_agent: str | None, live: bool
) -> dict[str, Literal["ringing", "talking", "talked", "missed"]]:
    """Return what each agent is to a call in its room: the one who holds the customer stays on the call.

    The agent who moved the call there (the last to join, else the one who answered) is busy with it while the
    call lives, even alone with nobody (their customer on hold); everyone else only while in the room.
    """
    seen = spans(room)
    # An invitation nobody answered is a missed offer (presence counts it), unless they came in later after all.
    out: dict[str, Literal["ringing", "talking", "talked", "missed"]] = dict.fromkeys(seen.rang_out, "missed")
    out.update(dict.fromkeys(seen.agents_ever, "talked"))
    holder = seen.last_agent or first_agent
    if holder is not None:
        # Transferred to a line, the customer is nobody's until one of its agents takes them.
        out[holder] = "talking" if live and seen.in_line is None else "talked"
    for who in seen.agents_now:
        out[who] = "talking" if live else "talked"
    for label in seen.pending:
        if label.startswith(AGENT) and live:
            out[who_of(label)] = "ringing"  # called into the room: not to be offered another call meanwhile
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
