"""LINES and LINES_FILE: the lines' TOML, read and checked once at start-up into bridge.core.lines (docs/lines.md).

Every error names where the lines came from, the line (its place and name or number) and the key, so a
mistake stops the bridge at start-up with the fix in view, as every other setting does. Keys a line leaves
out take the global settings' values.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.core.lines import (
    DAY_MINUTES,
    DEFAULT_QUEUE,
    MENU_KEYS,
    VOICEMAIL,
    WEEKDAYS,
    Hours,
    Line,
    Lines,
    Menu,
    Span,
    Target,
)
from bridge.core.phones import is_e164
from bridge.core.routing import STRATEGIES, RoutingPolicy, Strategy

LINE_KEYS = frozenset(
    {
        "number", "name", "group_id", "brand_id", "agents", "routing", "queue_max_wait_seconds", "queue_max_size",
        "queue_announce_seconds", "hold_music_url", "agent_ring_seconds", "greeting", "caller_id", "hours",
        "after_hours", "after_hours_message", "menu", "preferred_agent_seconds", "priority_organizations",
        "priority_tags", "log_on_open_ticket", "callback_offer_seconds",
    }
)  # fmt: skip
HOURS_KEYS = frozenset({"timezone", "schedule_id", "holidays", *WEEKDAYS})
MENU_SETTINGS = frozenset({"prompt", "timeout", "default"})
MENU_TIMEOUT = (1, 60)  # seconds Twilio waits for a key (TwiML <Gather> timeout; 5 by default)
_SPAN = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_QUEUE_NAME = re.compile(r"[^a-z0-9]+")


class LinesError(ValueError):
    """The lines' TOML is wrong; the message names the line and the key."""


@dataclass(frozen=True)
class Globals:
    """What a line takes from the global settings for every key it leaves out."""

    agents: tuple[str, ...]  # AGENTS' identities, in order
    routing: RoutingPolicy  # ROUTING, DIAL_TIMEOUT, AGENT_RING_SECONDS, QUEUE_*, VOICEMAIL, presence
    can_queue: bool  # Twilio's REST API is configured (TWILIO_ACCOUNT_SID): callers may wait
    hold_music_url: str
    queue_announce_seconds: float
    caller_id: str | None
    callback_offer_seconds: float | None = None  # CALLBACK_OFFER_SECONDS


def parse_lines(text: str, source: str, globals_: Globals) -> Lines:
    """Read the lines' TOML (`source` names it in errors: LINES, or LINES_FILE and its path)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LinesError(f"{source}: not valid TOML: {exc}") from None
    extra = sorted(set(document) - {"line"})
    if extra:
        raise LinesError(f"{source}: {extra[0]!r} is not a key here: each line is a [[line]] table")
    tables = document.get("line")
    if not isinstance(tables, list) or not tables or not all(isinstance(table, dict) for table in tables):
        raise LinesError(f"{source}: no lines: describe each number as a [[line]] table with at least `number`")
    reader = _Reader(source, globals_)
    lines = [reader.line(index, table) for index, table in enumerate(tables, start=1)]
    lines = reader.targets_resolved(lines, tables)
    return Lines(tuple(lines), configured=True)


class _Reader:
    """Read one [[line]] table after another, checking what must be unique across them."""

    def __init__(self, source: str, globals_: Globals) -> None:
        self.source = source
        self.globals = globals_
        self.numbers: set[str] = set()
        self.names: set[str] = set()
        self.queues: set[str] = set()

    def line(self, index: int, table: dict[str, Any]) -> Line:
        """Read one line's table into a Line, every key checked and every left-out key the global one's."""
        at = _Where(self.source, index, table)
        for key in table:
            if key not in LINE_KEYS:
                at.fail(key, f"not a key of a line (use {', '.join(sorted(LINE_KEYS))})")
        number = at.number("number", required=True)
        assert number is not None
        if number in self.numbers:
            at.fail("number", f"{number} is another line's number too")
        self.numbers.add(number)
        name = at.text("name")
        if name is not None:
            if is_e164(name):
                at.fail("name", f"{name!r} is a number: a name is a word, like Support (line:NAME names the line)")
            if name.casefold() in self.names:
                at.fail("name", f"{name!r} names another line too")
            self.names.add(name.casefold())
        key = name or number
        return Line(
            key=key,
            number=number,
            name=name,
            group_id=at.positive("group_id"),
            brand_id=at.positive("brand_id"),
            agents=self._agents(at),
            routing=self._routing(at),
            queue=self._queue(key),
            hold_music_url=at.url("hold_music_url") or self.globals.hold_music_url,
            queue_announce_seconds=at.seconds("queue_announce_seconds", self.globals.queue_announce_seconds),
            greeting=at.text("greeting"),
            caller_id=self._caller_id(at, number),
            hours=_hours(at),
            after_hours=_after_hours(at, self.globals.routing.voicemail),
            after_hours_message=at.text("after_hours_message"),
            menu=_menu(at),
            log_on_open_ticket=at.flag("log_on_open_ticket"),
            callback_offer_seconds=_offer(at, self.globals.callback_offer_seconds),
        )

    def _agents(self, at: _Where) -> tuple[str, ...]:
        raw = at.table.get("agents")
        if raw is None:
            return self.globals.agents
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            at.fail("agents", 'must be a list of identities from AGENTS, like ["client:alice", "+16505550111"]')
        for identity in raw:
            if identity not in self.globals.agents:
                at.fail("agents", f"{identity!r} is not in AGENTS (a line's agents are AGENTS' identities)")
        if len(set(raw)) != len(raw):
            at.fail("agents", "names an agent twice")
        return tuple(raw)

    def _routing(self, at: _Where) -> RoutingPolicy:
        base = self.globals.routing
        strategy = at.table.get("routing", base.strategy)
        chosen = next((name for name in STRATEGIES if name == str(strategy).strip().lower()), None)
        if not isinstance(strategy, str) or chosen is None:
            at.fail("routing", f"{strategy!r} is not one of {', '.join(STRATEGIES)}")
        max_wait = at.seconds("queue_max_wait_seconds", base.max_wait)
        max_size = at.whole("queue_max_size", base.max_size, low=0)
        ring = at.whole("agent_ring_seconds", base.agent_ring_seconds, low=5, high=600)
        queue = self.globals.can_queue and max_wait > 0 and max_size > 0
        strategy_: Strategy = chosen or base.strategy
        preferred = at.whole("preferred_agent_seconds", base.preferred_seconds, low=0, high=600)
        return replace(
            base, strategy=strategy_, max_wait=max_wait, max_size=max_size, agent_ring_seconds=ring, queue=queue,
            lines={}, serves=None, preferred_seconds=preferred, priority_organizations=_organizations(at),
            priority_tags=_tags(at),
        )  # fmt: skip

    def _queue(self, key: str) -> str:
        """Name the line's Twilio queue after its key, unique among the lines (Twilio's limit: 64 characters)."""
        base = "bridge-" + (_QUEUE_NAME.sub("-", key.lower()).strip("-")[:40] or "line")
        name, count = base, 1
        while name in self.queues or name == DEFAULT_QUEUE:
            count += 1
            name = f"{base}-{count}"
        self.queues.add(name)
        return name

    def _caller_id(self, at: _Where, number: str) -> str | None:
        raw = at.table.get("caller_id")
        if raw is None or raw is False:
            return self.globals.caller_id
        if raw is True:
            return number
        if isinstance(raw, str) and is_e164(raw.strip()):
            return raw.strip()
        at.fail("caller_id", f"{raw!r} is neither true (the line's own number) nor an E.164 number like +13125550100")

    def targets_resolved(self, lines: list[Line], tables: list[dict[str, Any]]) -> list[Line]:
        """Check every `line:NAME` target names a line, and name it by the line's key."""
        keys = {line.key: line.key for line in lines} | {line.number: line.key for line in lines if line.number}
        resolved = []
        for index, (line, table) in enumerate(zip(lines, tables, strict=True), start=1):
            at = _Where(self.source, index, table)

            def resolve(target: Target, key: str, at: _Where = at) -> Target:
                if target.kind != "line":
                    return target
                found = keys.get(target.value or "")
                if found is None:
                    at.fail(key, f"line:{target.value} names no line (use a line's name, or its number)")
                return Target("line", found)

            menu = line.menu
            if menu is not None:
                options = {digit: resolve(target, f"menu.{digit}") for digit, target in menu.options.items()}
                default = resolve(menu.default, "menu.default") if menu.default is not None else None
                menu = replace(menu, options=options, default=default)
            resolved.append(replace(line, menu=menu))
        return resolved


class _Where:
    """One line's table, and errors that name it and the key."""

    def __init__(self, source: str, index: int, table: Mapping[str, Any]) -> None:
        self.table = table
        label = table.get("name") or table.get("number")
        self.prefix = f"{source} line {index}" + (f" ({label!r})" if isinstance(label, str) and label else "")

    def fail(self, key: str, problem: str) -> NoReturn:
        """Stop with an error naming the line and the key."""
        raise LinesError(f"{self.prefix}: {key}: {problem}")

    def text(self, key: str, table: Mapping[str, Any] | None = None, *, named: str | None = None) -> str | None:
        """Return a non-empty string, or None when the key is absent (`named`: the key as errors say it)."""
        raw = (self.table if table is None else table).get(key)
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw.strip():
            self.fail(named or key, "must be a non-empty string")
        return raw.strip()

    def number(self, key: str, *, required: bool = False) -> str | None:
        """Return an E.164 number."""
        raw = self.table.get(key)
        if raw is None and required:
            self.fail(key, 'is required: the line\'s Twilio number, like "+13125550140"')
        if raw is not None and (not isinstance(raw, str) or not is_e164(raw.strip())):
            self.fail(key, f"{raw!r} is not an E.164 number like +13125550140")
        return raw.strip() if isinstance(raw, str) else None

    def positive(self, key: str) -> int | None:
        """Return a Zendesk id (a positive whole number)."""
        raw = self.table.get(key)
        if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0):
            self.fail(key, f"{raw!r} is not a Zendesk id (a positive whole number, from the URL in Admin Center)")
        return raw

    def whole(self, key: str, default: int, *, low: int, high: int | None = None) -> int:
        """Return a whole number within bounds."""
        raw = self.table.get(key, default)
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < low or (high is not None and raw > high):
            bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
            self.fail(key, f"{raw!r} is not a whole number {bounds}")
        return int(raw)

    def seconds(self, key: str, default: float) -> float:
        """Return a duration in seconds, 0 or more."""
        raw = self.table.get(key, default)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
            self.fail(key, f"{raw!r} is not a number of seconds (0 or more)")
        return float(raw)

    def flag(self, key: str) -> bool:
        """Return true or false (absent: false)."""
        raw = self.table.get(key, False)
        if not isinstance(raw, bool):
            self.fail(key, f"{raw!r} is neither true nor false")
        return raw

    def url(self, key: str) -> str | None:
        """Return an http(s) URL."""
        raw = self.text(key)
        if raw is not None and not raw.startswith(("https://", "http://")):
            self.fail(key, f"{raw!r} must be an http(s) URL of an MP3 or WAV file (or of TwiML)")
        return raw


def _organizations(at: _Where) -> frozenset[int]:
    """Read the Zendesk organizations (by id) whose callers wait ahead of others."""
    raw = at.table.get("priority_organizations", [])
    if not isinstance(raw, list) or not all(isinstance(item, int) and not isinstance(item, bool) and item > 0
                                            for item in raw):  # fmt: skip
        at.fail("priority_organizations", "must be a list of Zendesk organization ids, like [360001234567]")
    return frozenset(raw)


def _tags(at: _Where) -> frozenset[str]:
    """Read the Zendesk user tags whose callers wait ahead of others (Zendesk keeps tags lowercase, no spaces)."""
    raw = at.table.get("priority_tags", [])
    if not isinstance(raw, list) or not all(isinstance(item, str) and item.strip() and " " not in item.strip()
                                            for item in raw):  # fmt: skip
        at.fail("priority_tags", 'must be a list of Zendesk user tags (one word each), like ["vip", "gold"]')
    return frozenset(item.strip().lower() for item in raw)


def _offer(at: _Where, default: float | None) -> float | None:
    """Return after how long a waiting caller is offered a callback: seconds above 0, or false for never."""
    raw = at.table.get("callback_offer_seconds", default)
    if raw is False or raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        at.fail("callback_offer_seconds", f"{raw!r} is not a number of seconds above 0 (or false: no offer)")
    return float(raw)


def _target(at: _Where, key: str, raw: Any, allowed: tuple[str, ...]) -> Target:
    """Read a target: `line:NAME` (when allowed), `voicemail`, `message` (when allowed) or an E.164 number."""
    if isinstance(raw, str):
        value = raw.strip()
        if value.startswith("line:") and "line" in allowed and value.removeprefix("line:").strip():
            return Target("line", value.removeprefix("line:").strip())
        if value in ("voicemail", "message") and value in allowed:
            return Target(value)  # type: ignore[arg-type]
        if is_e164(value):
            return Target("forward", value)
    words = {"line": "line:NAME", "voicemail": "voicemail", "message": "message"}
    choices = ", ".join(words[kind] for kind in allowed)
    at.fail(key, f"{raw!r} is not {choices} or an E.164 number to forward to")


def _after_hours(at: _Where, voicemail: bool) -> Target:
    """Read where callers go while the line is closed; left out, voicemail (VOICEMAIL=false: the message)."""
    raw = at.table.get("after_hours")
    if raw is None:
        return VOICEMAIL if voicemail else Target("message")
    return _target(at, "after_hours", raw, ("voicemail", "message"))


def _hours(at: _Where) -> Hours | None:
    raw = at.table.get("hours")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        at.fail("hours", "must be a table: [line.hours] with timezone and weekdays, or schedule_id")
    for key in raw:
        if key not in HOURS_KEYS:
            at.fail(f"hours.{key}", f"not a key of hours (use timezone, {', '.join(WEEKDAYS)}, holidays, schedule_id)")
    if "schedule_id" in raw:
        schedule = raw["schedule_id"]
        if isinstance(schedule, bool) or not isinstance(schedule, int) or schedule <= 0:
            at.fail("hours.schedule_id", f"{schedule!r} is not a Zendesk schedule id (a positive whole number)")
        if set(raw) != {"schedule_id"}:
            at.fail("hours", "schedule_id takes the hours from Zendesk: give it alone, or timezone and weekdays")
        return Hours(schedule_id=int(schedule))
    name = raw.get("timezone")
    if not isinstance(name, str) or not name.strip():
        at.fail("hours.timezone", 'is required with weekly hours: an IANA time zone like "America/Chicago"')
    try:
        zone = ZoneInfo(str(name).strip())
    except (ZoneInfoNotFoundError, ValueError):
        at.fail("hours.timezone", f"{name!r} is not an IANA time zone like America/Chicago")
    week = tuple(_spans(at, f"hours.{day}", raw.get(day)) for day in WEEKDAYS)
    return Hours(timezone=str(name).strip(), zone=zone, week=week, holidays=_holidays(at, raw.get("holidays")))


def _spans(at: _Where, key: str, raw: Any) -> tuple[Span, ...]:
    """Read a day's hours: `09:00-17:00`, several comma-separated, `00:00-24:00` all day; absent or `closed`: closed."""
    if raw is None:
        return ()
    if not isinstance(raw, str):
        at.fail(key, 'must be a string like "09:00-17:00" or "09:00-12:00,13:00-17:00"')
    text = str(raw).strip()
    if text.lower() in ("", "closed"):
        return ()
    spans = []
    for part in (piece.strip() for piece in text.split(",")):
        match = _SPAN.match(part)
        if match is None:
            at.fail(key, f"{part!r} is not HH:MM-HH:MM (24-hour, like 09:00-17:00)")
        start_h, start_m, end_h, end_m = (int(group) for group in match.groups())
        start, end = start_h * 60 + start_m, end_h * 60 + end_m
        if start_h > 23 or end_h > 24 or start_m > 59 or end_m > 59 or end > DAY_MINUTES:
            at.fail(key, f"{part!r} is not a time of day (00:00 to 24:00)")
        if end <= start:
            at.fail(key, f"{part!r} ends before it starts (a span past midnight is two: the day's and the next's)")
        spans.append(Span(start, end))
    return tuple(sorted(spans, key=lambda span: span.start))


def _holidays(at: _Where, raw: Any) -> frozenset[date]:
    """Read the closed days: TOML dates, or strings YYYY-MM-DD."""
    if raw is None:
        return frozenset()
    if not isinstance(raw, list):
        at.fail("hours.holidays", 'must be a list of dates, like ["2026-12-25"]')
    days = set()
    for item in raw:
        if isinstance(item, date) and not hasattr(item, "hour"):
            days.add(item)
            continue
        try:
            days.add(date.fromisoformat(str(item)))
        except ValueError:
            at.fail("hours.holidays", f"{item!r} is not a date YYYY-MM-DD")
    return frozenset(days)


def _menu(at: _Where) -> Menu | None:
    raw = at.table.get("menu")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        at.fail("menu", "must be a table: [line.menu] with a prompt and keys")
    options: dict[str, Target] = {}
    for key, value in raw.items():
        if key in MENU_SETTINGS:
            continue
        if key not in MENU_KEYS:
            at.fail(f"menu.{key}", "not a key of a menu: a key is one of 0-9, * or # (quoted: \"*\"), or prompt, "
                    "timeout, default")  # fmt: skip
        options[key] = _target(at, f"menu.{key}", value, ("line", "voicemail"))
    if not options:
        at.fail("menu", 'names no key: add at least one, like 1 = "line:Sales"')
    prompt = at.text("prompt", raw, named="menu.prompt")
    if prompt is None:
        at.fail("menu.prompt", 'is required: what callers hear, like "For sales press 1."')
    low, high = MENU_TIMEOUT
    timeout = raw.get("timeout", 5)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not low <= timeout <= high:
        at.fail("menu.timeout", f"{timeout!r} is not a whole number of seconds from {low} to {high}")
    default = raw.get("default")
    target = None if default is None else _target(at, "menu.default", default, ("line", "voicemail"))
    return Menu(prompt=str(prompt), options=options, timeout=int(timeout), default=target)
