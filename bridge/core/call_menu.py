"""Menus, pure: a caller's answers to their line's menu, where they lead, and what the ticket and record say of it.

A caller whose line has a menu is placed in it when the call arrives, ringing nobody. Each answer (a key, or
none within the menu's timeout) is kept by its turn, the menu's first hearing being turn 1, so answers that
arrive late, twice or out of order change nothing: where the menu leads is decided once every turn before
the deciding one is known. A key the menu names leads to its target; no key leads to the default; any other
key repeats the menu, at most MAX_REPEATS times, and then leads to the default too. A line target (`line:KEY`)
hands the call to routing on that line, or, when that line is closed, to its after hours (each answer says
whether the line it leads to was closed when it came); voicemail and a forward place it at once, ringing nobody.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bridge.core import hours
from bridge.core.call_model import MAX_CALL_SECONDS, RECORDING_WAIT, Call, MenuPath, MenuWay, Placed, Policy, Press
from bridge.core.events import CallEvent
from bridge.core.lines import Line, Lines, Menu, Target

MAX_REPEATS = 2  # a key the menu does not name repeats it at most twice; the next such key takes the default
LAST_TURN = MAX_REPEATS + 1
NO_KEY = ""  # kept for a turn the caller let pass without pressing a key
# Zendesk's own IVR route actions (Zendesk docs: Talk API, IVR Routes, `action`: "group", "voicemail",
# "phone_number", "textback", "menu"): a call record's `ivr_action` says which one the caller took.
IVR_ACTIONS = {"line": "group", "voicemail": "voicemail", "forward": "phone_number"}
_KEY_WORDS = {"*": "star", "#": "hash"}  # a tag is letters, digits and underscores


def enter(call: Call, line: Line, at: datetime) -> None:
    """Put a caller of a line with a menu in it, once: the call waits for their answer, ringing nobody."""
    if call.menu is not None:
        call.menu.entered_at = min(call.menu.entered_at, at)  # the arrival, should an answer have overtaken it
        return
    if line.menu is None or call.direction != "inbound":
        return
    call.menu = MenuPath(line=line.key, entered_at=at)
    if call.placed is None:
        call.placed = Placed(kind="menu", at=at)


def answer(call: Call, event: CallEvent, policy: Policy) -> tuple[str, str] | None:
    """Keep one answer to the menu by its turn, and lead the caller on once the turns before it are known."""
    line = policy.lines.get(call.line)
    enter(call, line, event.at)  # an answer that overtook the call's arrival still finds the menu
    if call.menu is None:
        # The line has no menu now (the lines changed while the caller heard it): its own agents take the call.
        call.menu = MenuPath(line=line.key, entered_at=event.at)
        call.placed = call.placed or Placed(kind="menu", at=event.at)
    turn = event.sequence or 1
    if not 1 <= turn <= LAST_TURN:
        return "notice:ignored", f"ignored an answer to the menu for turn {turn}: it is heard at most {LAST_TURN} times"
    key = (event.pressed or NO_KEY)[:1]
    call.menu.presses.setdefault(turn, Press(key=key, at=event.at, closed=event.after_hours))
    _settle(call, line.menu, policy.lines)
    return None


def leads(menu: Menu | None, own: str, key: str, turn: int) -> tuple[Target, MenuWay] | None:
    """Return where one answer leads, and how, should it decide (None: it repeats the menu).

    `own` is the key of the menu's line, where a menu without a default leads; `key` is "" for none in time.
    """
    named = menu.options.get(key) if menu is not None and key else None
    if named is not None:
        return named, "key"
    fallback = (menu.default if menu is not None else None) or Target("line", own)
    if not key:
        return fallback, "timeout"
    if turn == LAST_TURN:  # every answer before this one was a key the menu does not name too
        return fallback, "invalid"
    return None


def _settle(call: Call, menu: Menu | None, lines: Lines) -> None:
    """Decide where the menu leads once the answers before the deciding one are all known."""
    path = call.menu
    if path is None or path.target is not None:
        return
    # Turn by turn until an answer has not come yet; `leads` decides by LAST_TURN at the latest.
    turn = 1
    while (press := path.presses.get(turn)) is not None:
        led = leads(menu, path.line, press.key, turn)
        if led is not None:
            _lead(call, *led, turn, lines)
            return
        turn += 1


def _lead(call: Call, target: Target, how: MenuWay, turn: int, lines: Lines) -> None:
    """Send the caller where the menu led: to a line's routing (or its after hours), voicemail, or a number."""
    path = call.menu
    assert path is not None
    press = path.presses[turn]
    path.target = str(target)
    path.how = how
    path.key = press.key if how == "key" else None
    path.turn = turn
    path.left_at = press.at
    in_menu = call.placed is None or call.placed.kind == "menu"
    if target.kind == "line":
        call.chosen_line = target.value  # routing offers the call on that line (calls._route_request)
        if press.closed is not None:
            # That line was closed when the caller chose it: its after hours, as if they had called it.
            hours.close(call, press.closed, lines.get(target.value), press.at)
    elif target.kind == "voicemail" and in_menu:
        call.placed = Placed(kind="voicemail", at=press.at, reason="menu")
        call.voicemail_offered = True
    elif target.kind == "forward" and in_menu:
        call.placed = Placed(kind="forward", at=press.at, to=target.value)
        fill_forward(call)


def fill_forward(call: Call) -> None:
    """Name the number a forwarded call went to on its answering leg (the <Dial action> names only its sid)."""
    placed = call.placed
    if placed is None or placed.kind != "forward":
        return
    for leg in call.legs.values():
        leg.to = leg.to or placed.to


def target_of(path: MenuPath) -> Target | None:
    """Return where the menu led the caller, as a target (None: it has not led them anywhere)."""
    raw = path.target
    if raw is None:
        return None
    if raw.startswith("line:"):
        return Target("line", raw.removeprefix("line:"))
    return Target("voicemail") if raw == "voicemail" else Target("forward", raw)


def settled(call: Call) -> bool:
    """Tell whether the menu's part is known for good: it led somewhere, or the caller hung up in it."""
    path = call.menu
    return path is not None and (
        path.target is not None or (call.ended_at is not None and RECORDING_WAIT in call.fired)
    )


def pending(call: Call, policy: Policy) -> bool:
    """Tell whether where the caller's menu leads is yet to come: their line has one, and it has not settled.

    A callback that overtook the call's arrival (a replay, shuffled) knows the number called before the menu;
    one marked after hours may be of the closed line the menu led to, so it waits for the menu's answer too.
    """
    if call.direction != "inbound":
        return False
    if call.menu is not None:
        return not settled(call)
    if call.after_hours is not None and call.line is not None:
        return False  # the arrival found the line closed: no menu played (a mark alone may be a chosen line's)
    lines = policy.lines
    line = lines.get(call.line) if call.line is not None else (lines.called(call.to_number) or lines.first)
    return line.menu is not None and not (call.ended_at is not None and RECORDING_WAIT in call.fired)


def forwarded(call: Call) -> bool:
    """Tell whether the menu, or the closed line after hours, forwarded the call to a number."""
    return call.placed is not None and call.placed.kind == "forward"


def waited_for_agent(call: Call) -> bool:
    """Tell whether the caller waited for an agent at all: not when the menu kept them or led them elsewhere."""
    if call.after_hours is not None:
        return False  # the line was closed: nobody was offered the call
    path = call.menu
    if path is None:
        return True
    target = target_of(path)
    return target is not None and target.kind == "line"


def record_fields(call: Call, policy: Policy) -> dict[str, Any]:
    """Return the call record's menu fields (Zendesk docs: Talk Partner Edition API, Calls, the `ivr_` fields).

    `ivr_hops` counts the menus the caller went through (a menu never leads into another: one);
    `ivr_time_spent` the seconds from the call's arrival (the menu's start) until the menu sent them on, or
    until they hung up in it. `ivr_action` is the route Zendesk's own IVR would name, `ivr_routed_to` where it
    led (the line's name, `voicemail`, or the number). `ivr_destination_group_name` is the line's group's
    name, which only Zendesk knows: the outbox fills it in. `customer_requested_voicemail` says the caller
    pressed a key for voicemail.
    """
    path = call.menu
    if path is None or not settled(call):
        return {}
    fields: dict[str, Any] = {"ivr_hops": 1}
    until = path.left_at or call.ended_at
    spent = (until - path.entered_at).total_seconds() if until is not None else None
    # Answers are dated as received, like the arrival; a hang-up by Twilio's Timestamp, which a replay of an old
    # recording puts far from the bridge's clock: such a span says nothing of the menu.
    if spent is not None and 0 <= spent <= MAX_CALL_SECONDS:
        fields["ivr_time_spent"] = int(spent)
    target = target_of(path)
    if target is None:
        return fields  # hung up in the menu
    fields["ivr_action"] = IVR_ACTIONS[target.kind]
    fields["ivr_routed_to"] = policy.lines.get(target.value).label() if target.kind == "line" else str(target)
    if target.kind == "voicemail" and path.how == "key":
        fields["customer_requested_voicemail"] = True
    return fields


def tags(call: Call) -> list[str]:
    """Return the ticket's menu tags: `ivr`, and how the menu ended (`ivr_<key>`, `ivr_timeout`, `ivr_invalid`…)."""
    path = call.menu
    if path is None or not settled(call):
        return []
    if path.how == "key" and path.key:
        ending = f"ivr_{_KEY_WORDS.get(path.key, path.key)}"
    else:
        ending = {"timeout": "ivr_timeout", "invalid": "ivr_invalid"}.get(path.how or "", "ivr_abandoned")
    return ["ivr", ending]


def note(call: Call, policy: Policy) -> str | None:
    """Say the caller's way through the menu, for a private note on the call's ticket."""
    path = call.menu
    if path is None or not settled(call):
        return None
    line = policy.lines.get(path.line)
    menu = line.menu
    timeout = menu.timeout if menu is not None else 0
    spent = record_fields(call, policy).get("ivr_time_spent")
    lines = [f"The caller went through the menu of {line.label()}" + (f" ({spent} s):" if spent is not None else ":")]
    target = target_of(path)
    for turn in sorted(path.presses):
        key = path.presses[turn].key
        if path.turn is not None and turn > path.turn:
            break  # an answer after the deciding one (none comes from Twilio) says nothing
        if turn != path.turn or target is None:
            lines.append(f"- pressed {key}, which is not a choice: heard the menu again")
        elif path.how == "key":
            lines.append(f"- pressed {key}: {_spoken(target, policy)}")
        elif path.how == "timeout":
            lines.append(f"- pressed nothing within {timeout} s: {_spoken(target, policy)} (the default)")
        else:
            lines.append(f"- pressed {key}, which is not a choice, once more: {_spoken(target, policy)} (the default)")
    if target is None:
        lines.append("- hung up in the menu")
    return "\n".join(lines)


def _spoken(target: Target, policy: Policy) -> str:
    """Name a target for people."""
    if target.kind == "line":
        return f"the line {policy.lines.get(target.value).label()}"
    return "voicemail" if target.kind == "voicemail" else f"forwarded to {target.value}"
