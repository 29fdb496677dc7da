"""Lines, pure: each number the bridge answers, whom and how it routes to, and whether it is open at a moment.

A line is one phone number with its own nickname, Zendesk group and brand, agents, routing and queue, caller
id for calls out, business hours, what callers hear after hours, and an optional menu. Without any configured,
one line stands for every number, shaped by the global settings (`Lines()`), so the bridge behaves as it did
before lines existed. A call to a number no line names belongs to the first line.

Every field a line leaves unset (None) means "the global setting": the settings resolve what they can when
they build the lines, and the state machine and the TwiML fall back to their own globals for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, tzinfo
from typing import Literal

from bridge.core.routing import DEFAULT_LINE, RoutingPolicy

DEFAULT_QUEUE = "bridge-default"  # its Twilio queue
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
DAY_MINUTES = 24 * 60
MENU_KEYS = frozenset("0123456789*#")
TargetKind = Literal["line", "voicemail", "message", "forward"]


@dataclass(frozen=True)
class Span:
    """Open from `start` until just before `end`, in minutes since local midnight (`end` up to 24:00)."""

    start: int
    end: int

    def holds(self, minute: int) -> bool:
        """Tell whether a minute of the day falls inside the span."""
        return self.start <= minute < self.end


@dataclass(frozen=True)
class Hours:
    """When a line is open: weekly spans in a time zone, minus holidays; or a Zendesk schedule's, by id.

    `zone` is the time zone itself (resolved once, at start-up), so evaluating the hours reads nothing.
    A weekday with no spans is closed all day.
    """

    timezone: str | None = None  # its IANA name, as configured (America/Chicago)
    zone: tzinfo | None = None
    week: tuple[tuple[Span, ...], ...] = ((),) * 7  # Monday first
    holidays: frozenset[date] = frozenset()  # local dates closed all day
    schedule_id: int | None = None  # a Zendesk schedule instead (Business Hours API)


@dataclass(frozen=True)
class Target:
    """Where a caller goes: a line's agents, queue and hours (`line`, value its key), voicemail, a message, a number."""

    kind: TargetKind
    value: str | None = None  # the line's key (line), or the E.164 number (forward)

    def __str__(self) -> str:
        """Spell the target as it is configured (`line:Sales`, `voicemail`, `+13125550199`)."""
        if self.kind == "line":
            return f"line:{self.value}"
        return self.value if self.kind == "forward" and self.value else self.kind


VOICEMAIL = Target("voicemail")


@dataclass(frozen=True)
class Menu:
    """A menu callers hear first: the prompt, then each key's target; no key (or another) within `timeout` s.

    `default` is where a caller who pressed nothing, or a key the menu does not name, goes; None: the line
    itself (its agents and queue), as though it had no menu.
    """

    prompt: str
    options: Mapping[str, Target]
    timeout: int = 5
    default: Target | None = None


@dataclass(frozen=True)
class Line:
    """One number the bridge answers, and everything that is its own."""

    key: str = DEFAULT_LINE  # how routing, the queue's rows and menus name it: its name, else its number
    number: str | None = None  # E.164; None only for the line made from the environment
    name: str | None = None  # the call records' line nickname (to_line_nickname, from_line_nickname)
    group_id: int | None = None  # None: ZENDESK_GROUP_ID
    brand_id: int | None = None  # None: ZENDESK_BRAND_ID
    agents: tuple[str, ...] | None = None  # identities from AGENTS; None: every agent
    routing: RoutingPolicy | None = None  # None: the global routing settings
    queue: str = DEFAULT_QUEUE  # the Twilio queue its callers wait in (no personal data in its name)
    hold_music_url: str | None = None  # None: HOLD_MUSIC_URL
    queue_announce_seconds: float | None = None  # None: QUEUE_ANNOUNCE_SECONDS
    greeting: str | None = None  # said to every caller first; None: nothing
    caller_id: str | None = None  # what calls out from its agents show; None: CALLER_ID
    hours: Hours | None = None  # None: always open
    after_hours: Target = VOICEMAIL  # where a caller goes while the line is closed
    after_hours_message: str | None = None  # what `message` says (None: the bridge's own words)
    menu: Menu | None = None
    log_on_open_ticket: bool = False  # an answered call goes on the caller's open ticket its agent was rung for
    callback_offer_seconds: float | None = None  # a waiting caller is offered a callback after this long; None: never

    def serves(self, identity: str) -> bool:
        """Tell whether the agent takes this line's calls."""
        return self.agents is None or identity in self.agents

    def label(self) -> str:
        """Name the line for people: its name, else its number, else `default`."""
        return self.name or self.number or self.key


@dataclass(frozen=True)
class Lines:
    """Every line, in the configured order (the first takes calls to numbers no line names)."""

    all: tuple[Line, ...] = (Line(),)
    configured: bool = False  # from LINES or LINES_FILE; False: the one line made from the environment

    @property
    def first(self) -> Line:
        """Return the line calls to unknown numbers go to."""
        return self.all[0]

    def find(self, key: str | None) -> Line | None:
        """Return the line with this key, if there is one."""
        return next((line for line in self.all if line.key == key), None)

    def get(self, key: str | None) -> Line:
        """Return the line with this key; an unknown key (a line since removed) is the first line."""
        return self.find(key) or self.first

    def called(self, number: str | None) -> Line | None:
        """Return the line whose number was called; None when no line names it (the call goes to the first)."""
        if not self.configured:
            return self.first  # one line answers every number
        return next((line for line in self.all if number and line.number == number), None)

    def of_agent(self, identity: str | None) -> tuple[Line, ...]:
        """Return the lines an agent serves, in the configured order."""
        return tuple(line for line in self.all if identity is not None and line.serves(identity))

    def for_call_out(self, identity: str | None, number: str | None) -> Line | None:
        """Return the line an agent's call out goes from: the one whose number they chose, else their first.

        None when they chose a number that is no line of theirs (refused: they would show another line's id).
        """
        theirs = self.of_agent(identity) or (self.first,)
        if not number:
            return theirs[0]
        return next((line for line in theirs if line.number == number), None)

    def serving(self, identities: tuple[str, ...]) -> dict[str, frozenset[str]] | None:
        """Return the keys of the lines each agent serves; None when every agent serves every line."""
        if all(line.agents is None for line in self.all):
            return None
        return {who: frozenset(line.key for line in self.all if line.serves(who)) for who in identities}

    def routing(self, base: RoutingPolicy, identities: tuple[str, ...]) -> RoutingPolicy:
        """Return routing's view of the lines: `base` with each line's own policy and who serves which line."""
        if not self.configured:
            return base
        own = {line.key: line.routing or base for line in self.all}
        return replace(base, lines=own, serves=self.serving(identities))


@dataclass(frozen=True)
class Opening:
    """Whether a line is open at a moment: True, False, or None when the bridge cannot tell (a schedule not read)."""

    open: bool | None
    why: str = field(default="")


def is_open(hours: Hours | None, now: datetime) -> Opening:
    """Say whether hours are open at `now` (an aware instant), in their own time zone, holidays closed all day.

    Local wall-clock time decides, so a span keeps its hours across a change to or from daylight saving
    time; a local time the change skips never occurs, and one it repeats counts both times.
    """
    if hours is None:
        return Opening(True, "always open (no hours)")
    if hours.schedule_id is not None:
        return Opening(None, f"Zendesk schedule {hours.schedule_id}: not read")  # bridge.core.hours.opening reads it
    if hours.zone is None:
        return Opening(None, "no time zone")
    local = now.astimezone(hours.zone)
    if local.date() in hours.holidays:
        return Opening(False, f"holiday {local.date().isoformat()}")
    minute = local.hour * 60 + local.minute
    day = WEEKDAYS[local.weekday()]
    if any(span.holds(minute) for span in hours.week[local.weekday()]):
        return Opening(True, f"{day} {local:%H:%M} {hours.timezone}")
    return Opening(False, f"{day} {local:%H:%M} {hours.timezone}")
