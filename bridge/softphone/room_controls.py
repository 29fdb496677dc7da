"""The softphone's controls of a call's room: Hold, Resume, Transfer, Consult, Complete, Cancel, Add to call, end.

Each is an entry of CONTROLS (bridge.softphone.calls): why it cannot work now, shown beside its button, and what
it does, through bridge.dispatch.room (which records each step as Twilio takes it). A target (Transfer, Consult,
Add to call) is `{"kind": "agent" | "number", "value": "client:bob" | "+14155550123"}`: an agent who is in AGENTS
and offerable now, or an E.164 number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bridge.core import call_room, presence
from bridge.core.events import CallEvent
from bridge.core.lines import Lines
from bridge.core.phones import is_client, is_e164
from bridge.core.presence import Agent, PresencePolicy
from bridge.dispatch.room import ControlFailed, RoomControl
from bridge.softphone.controls import Command, Context, Control, OnCall, refused

TARGETED = frozenset({"transfer", "consult", "add"})
LINE = "line:"  # a transfer's target that is a line, by its key


def _room(desk: Context) -> RoomControl:
    """Return the room's controls (the app always makes them)."""
    assert desk.room is not None
    return desk.room


def _spans(on: OnCall) -> call_room.Spans | None:
    """Return what happened in the call's room, or None while it has none."""
    return call_room.spans(on.call.room) if on.call.room is not None else None


def _basic(desk: Context, on: OnCall) -> str | None:
    """Say why no room control works on this call at all."""
    if desk.twilio is None:
        return "The bridge cannot reach Twilio's API: an admin must set TWILIO_ACCOUNT_SID."
    if on.call.direction != "inbound":
        return "Hold and transfers work on calls you answered, not yet on calls you placed."
    return None


def _busy(seen: call_room.Spans | None) -> str | None:
    """Say why nobody else can be brought in now: someone is being called in, or consulted, or a line's agents are."""
    if seen is None:
        return None
    if seen.in_line is not None:
        return f"The customer waits in the line {seen.in_line} for its next free agent."
    if seen.pending:
        return "Someone is being called into this call: wait for them, or cancel."
    if seen.consulting:
        return "A consultation is going on: complete or cancel it first."
    return None


def _why_not_hold(desk: Context, on: OnCall) -> str | None:
    seen = _spans(on)
    if (why := _basic(desk, on)) is not None:
        return why
    return "The customer is on hold." if seen is not None and seen.on_hold else _busy(seen)


def _why_not_resume(desk: Context, on: OnCall) -> str | None:
    seen = _spans(on)
    if (why := _basic(desk, on)) is not None:
        return why
    if seen is None or not seen.on_hold:
        return "The customer is not on hold."
    return _busy(seen)


def _why_not_invite(desk: Context, on: OnCall) -> str | None:
    return _basic(desk, on) or _busy(_spans(on))


def _why_not_complete(desk: Context, on: OnCall) -> str | None:
    seen = _spans(on)
    if (why := _basic(desk, on)) is not None:
        return why
    if seen is None or seen.consulted is None:
        return "There is no consultation to complete."
    if seen.consulted in seen.pending:
        return "Your colleague has not answered yet: wait, or cancel."
    return None


def _why_not_cancel(desk: Context, on: OnCall) -> str | None:
    seen = _spans(on)
    if (why := _basic(desk, on)) is not None:
        return why
    if seen is None or (seen.consulted is None and not seen.pending):
        return "There is no transfer to cancel."
    return None


def _why_not_end(desk: Context, on: OnCall) -> str | None:
    seen = _spans(on)
    if (why := _basic(desk, on)) is not None:
        return why
    if seen is None or not view(on)["join"]:
        return "You are in the call: hang up your phone to end it."
    if seen.agents_now or seen.others_now or seen.pending:
        return "Someone is with the customer or being called in: cancel that first."
    return None


def target_of(desk: Context, command: Command) -> str:
    """Return who a Transfer, Consult or Add to call is for, checked: an offerable agent, or an E.164 number."""
    target: dict[str, Any] = command.target or {}
    kind, value = target.get("kind"), target.get("value")
    if not isinstance(value, str) or kind not in ("agent", "number", "line"):
        raise refused(
            400, 'choose who to transfer to: target must be {"kind": "agent" | "number" | "line", "value": …}'
        )
    if kind == "line":
        if command.action != "transfer":
            raise refused(400, "a line takes a transfer only: consult or add a colleague or a number")
        return LINE + value
    if kind == "number":
        if not is_e164(value):
            raise refused(400, f"{value[:20]!r} is not a phone number in international format (+14155550123)")
        return value
    if value not in desk.settings.agents or value == command.on.identity:
        raise refused(400, f"{value[:40]} is not a colleague the bridge knows (AGENTS)")
    return value


def _act(name: str) -> Any:
    """Return the act of one room control: carried out through the room's controls, recorded as Twilio took it."""

    async def act(desk: Context, command: Command) -> CallEvent | None:
        room, call = _room(desk), command.on.call
        try:
            if name == "hold":
                await room.hold(call, command.request, _line(desk, command.on))
            elif name == "resume":
                await room.resume(call, command.request)
            elif name == "transfer":
                to = target_of(desk, command)
                if to.startswith(LINE):
                    await room.transfer_to_line(call, to.removeprefix(LINE), command.request)
                else:
                    await room.transfer(call, to, command.request)
            elif name == "consult":
                await room.consult(call, target_of(desk, command), command.request, _line(desk, command.on))
            elif name == "add":
                await room.add(call, target_of(desk, command), command.request, _line(desk, command.on))
            elif name == "complete":
                await room.complete(call, command.on.identity, command.request)
            elif name == "end":
                await room.end(call, command.on.identity)
            else:
                await room.cancel(call, command.request)
        except ControlFailed as exc:
            raise refused(exc.status if exc.status in (400, 409, 502, 503) else 400, str(exc)) from exc
        return None

    return act


def _line(desk: Context, on: OnCall) -> str | None:
    """Return the key of the line whose hold music the customer hears (None without lines)."""
    lines = desk.settings.phone_lines
    return lines.get(on.call.route_line).key if lines.configured else None


CONTROLS: dict[str, Control] = {
    "hold": Control(_why_not_hold, _act("hold")),
    "resume": Control(_why_not_resume, _act("resume")),
    "transfer": Control(_why_not_invite, _act("transfer")),
    "consult": Control(_why_not_invite, _act("consult")),
    "complete": Control(_why_not_complete, _act("complete")),
    "cancel": Control(_why_not_cancel, _act("cancel")),
    "add": Control(_why_not_invite, _act("add")),
    "end": Control(_why_not_end, _act("end")),  # Hang up while out of the room: the customer on hold is let go
}


def view(on: OnCall) -> dict[str, Any]:
    """Return what the page shows of the call's room: on hold, the consultation, and whether the agent is in it.

    `join`: the call is still the agent's but they are out of its room (their ring ended when the call moved there):
    their softphone calls back into it to resume, consult or add someone. An agent who transferred it away is done.
    """
    seen = _spans(on)
    if seen is None:
        return {"on_hold": False, "consult": None, "room": False, "join": False, "in_room": False}
    inside = on.identity in seen.agents_now
    holder = (seen.last_agent or on.call.answered_agent) == on.identity  # the call is still theirs
    consult = None
    if seen.consulted is not None:
        consult = {"with": call_room.who_of(seen.consulted), "answered": seen.consulted not in seen.pending}
    return {
        "on_hold": seen.on_hold,
        "consult": consult,
        "room": True,
        # A call transferred to a line is the line's until one of its agents takes it: not the agent's to rejoin.
        "join": holder and not inside and seen.ended_at is None and seen.in_line is None,
        "in_room": inside,
        "calling": sorted(call_room.who_of(label) for label in seen.pending),
    }


def targets(
    agents: list[Agent], identity: str, now: datetime, policy: PresencePolicy, lines: Lines | None = None
) -> dict[str, Any]:
    """Return who the agent may transfer to: the colleagues offerable now, by name and status (GET transfer-targets).

    Only an agent a call could be offered to now is listed (available, not busy): anyone else would not answer.
    """
    listed = [
        {"identity": agent.identity, "name": agent.identity.removeprefix("client:"),
         "status": presence.status(agent, now, policy)}
        for agent in agents
        if agent.identity not in (identity, "") and is_client(agent.identity) and presence.offerable(agent, now, policy)
    ]  # fmt: skip
    named = (
        [{"key": line.key, "name": line.name or line.key} for line in lines.all] if lines and lines.configured else []
    )
    return {"agents": sorted(listed, key=lambda a: a["name"]), "lines": named}
