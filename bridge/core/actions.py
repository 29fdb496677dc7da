"""What the bridge intends to do in Zendesk; the outbox worker carries these out."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ActionKind(StrEnum):
    """The kinds of effect the outbox delivers."""

    FIND_CALLER = "find_caller"  # search by phone, create the end-user when unknown
    DISPLAY_USER = "display_user"  # pop the caller's profile to an agent
    CREATE_TICKET = "create_ticket"  # TPE voice ticket (via 44/45/46)
    ADD_VOICE_COMMENT = "add_voice_comment"
    DISPLAY_TICKET = "display_ticket"
    ADD_NOTE = "add_note"  # a private comment on the call's ticket
    TIMER = "timer"  # no Zendesk I/O: feeds a TIMER event back into the state machine


class Action(BaseModel):
    """One intended effect, unique by key across the whole store."""

    model_config = ConfigDict(frozen=True)

    key: str
    kind: ActionKind
    call_sid: str
    payload: dict[str, Any] = Field(default_factory=dict)
    needs: tuple[str, ...] = ()  # keys of actions whose results this one uses
    not_before: datetime | None = None


def caller_key(e164: str) -> str:
    """Key the caller look-up by number, so two calls from one number share one user."""
    return f"tel:{e164}:user"


def caller_phone(key: str) -> str:
    """Return the number a caller key (from `caller_key`) looks up."""
    return key.removeprefix("tel:").removesuffix(":user")


def ticket_key(call_sid: str) -> str:
    """Key the one ticket of a call."""
    return f"{call_sid}:ticket"


def find_caller(call_sid: str, e164: str) -> Action:
    """Find the caller by phone, creating the end-user when none exists."""
    return Action(key=caller_key(e164), kind=ActionKind.FIND_CALLER, call_sid=call_sid, payload={"phone": e164})


def display_user(call_sid: str, agent_id: int, user_from: str) -> Action:
    """Pop the user found by `user_from` to an agent."""
    return Action(
        key=f"{call_sid}:display_user:{agent_id}",
        kind=ActionKind.DISPLAY_USER,
        call_sid=call_sid,
        payload={"agent_id": agent_id, "user_from": user_from},
        needs=(user_from,),
    )


def create_ticket(
    call_sid: str, ticket: dict[str, Any], *, requester_from: str | None, display_to_agent: int | None
) -> Action:
    """Create the call's voice ticket, with the caller found by `requester_from` as requester."""
    payload: dict[str, Any] = {"ticket": ticket}
    if display_to_agent is not None:
        payload["display_to_agent"] = display_to_agent
    if requester_from is not None:
        payload["requester_from"] = requester_from
    return Action(
        key=ticket_key(call_sid),
        kind=ActionKind.CREATE_TICKET,
        call_sid=call_sid,
        payload=payload,
        needs=(requester_from,) if requester_from else (),
    )


def add_voice_comment(call_sid: str, voice_comment: dict[str, Any]) -> Action:
    """Add the call's one voice comment to its ticket."""
    return Action(
        key=f"{call_sid}:voice_comment",
        kind=ActionKind.ADD_VOICE_COMMENT,
        call_sid=call_sid,
        payload={"voice_comment": voice_comment, "ticket_from": ticket_key(call_sid)},
        needs=(ticket_key(call_sid),),
    )


def display_ticket(call_sid: str, agent_id: int) -> Action:
    """Pop the call's ticket to an agent."""
    return Action(
        key=f"{call_sid}:display_ticket:{agent_id}",
        kind=ActionKind.DISPLAY_TICKET,
        call_sid=call_sid,
        payload={"agent_id": agent_id, "ticket_from": ticket_key(call_sid)},
        needs=(ticket_key(call_sid),),
    )


def add_note(call_sid: str, name: str, body: str) -> Action:
    """Add a private comment to the call's ticket."""
    return Action(
        key=f"{call_sid}:note:{name}",
        kind=ActionKind.ADD_NOTE,
        call_sid=call_sid,
        payload={"body": body, "ticket_from": ticket_key(call_sid)},
        needs=(ticket_key(call_sid),),
    )


def timer(call_sid: str, name: str, due: datetime) -> Action:
    """Wake the call's state machine at `due`, durably."""
    return Action(
        key=f"{call_sid}:timer:{name}",
        kind=ActionKind.TIMER,
        call_sid=call_sid,
        payload={"timer": name},
        not_before=due,
    )
