"""The stored JSON form of the actions (the outbox's `payload` column): `encode` one, `decode` it back.

Payloads written by earlier versions decode too: a field an action gained later has its default when absent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, assert_never

from bridge.core.actions import (
    Action,
    ActionKind,
    AddNote,
    AddVoiceComment,
    CreateCallRecord,
    CreateTicket,
    DisplayTicket,
    DisplayUser,
    FindCaller,
    LookUpCustomer,
    MoveCall,
    PlaceCallback,
    Timer,
    UpdateCallRecord,
    caller_phone,
)
from schemas.zendesk import CallComment, CallRecord, VoiceComment, VoiceTicket


def encode(action: Action) -> dict[str, Any]:
    """Return the stored JSON payload of an action (its key, kind, call and due time are columns)."""
    match action:
        case FindCaller(phone=phone):
            return {"phone": phone}
        case DisplayUser(agent_id=agent_id, phone=phone):
            return {"agent_id": agent_id, "phone": phone}
        case CreateTicket(ticket=ticket, requester_phone=phone, display_to_agent=agent, existing_ticket_id=existing):
            payload: dict[str, Any] = {"ticket": ticket.wire()}
            optional = {
                "requester_phone": phone,
                "display_to_agent": agent,
                "existing_ticket_id": existing,
                "group_id": action.group_id,
                "brand_id": action.brand_id,
            }
            return payload | {name: value for name, value in optional.items() if value is not None} | _parts(action)
        case AddVoiceComment(voice_comment=comment):
            return {"voice_comment": comment.wire()} | _parts(action)
        case DisplayTicket(agent_id=agent_id, ticket_id=ticket_id):
            return {"agent_id": agent_id, **({"ticket_id": ticket_id} if ticket_id is not None else {})}
        case LookUpCustomer(phone=phone):
            return {"phone": phone}
        case AddNote(name=name, body=body, tags=tags, assignee_id=assignee, group_id=group):
            extra = {"tags": list(tags)} if tags else {}
            moved = {
                name: value for name, value in (("assignee_id", assignee), ("group_id", group)) if value is not None
            }
            return {"name": name, "body": body, **extra, **moved}
        case Timer(name=name):
            return {"timer": name}
        case CreateCallRecord(
            record=record, comment=comment, customer_phone=phone, existing_ticket_id=existing, linked=linked
        ):
            stored: dict[str, Any] = {"record": record.wire()}
            if linked:
                stored["linked"] = True
            if comment is not None:
                stored["comment"] = comment.wire()
            if phone is not None:
                stored["customer_phone"] = phone
            if existing is not None:
                stored["existing_ticket_id"] = existing
            if action.brand_id is not None:
                stored["brand_id"] = action.brand_id
            if action.group_id is not None:
                stored["group_id"] = action.group_id
            if action.shown_on is not None:
                stored["shown_on"] = action.shown_on
            return stored | _parts(action)
        case UpdateCallRecord(name=name, fields=fields, cleared=cleared, after=after):
            update: dict[str, Any] = {"name": name, "fields": fields.wire()}
            if cleared:
                update["cleared"] = list(cleared)
            if after:
                update["after"] = after
            return update | _parts(action)
        case MoveCall(number=number, invite=invite, seconds=seconds):
            return {"number": number, **({"invite": list(invite), "seconds": seconds} if invite else {})}
        case PlaceCallback(turn=turn, agent=agent):
            return {"turn": turn, "agent": agent}
        case _:
            assert_never(action)


def decode(kind: str, key: str, call_sid: str, payload: dict[str, Any], due: datetime) -> Action:
    """Rebuild an action from its stored form; rows written before typed actions are read too.

    Those older rows named their dependency by key (`user_from`, `requester_from`, `ticket_from`)
    instead of deriving it, and kept a note's name only in its key.
    """
    match stored := ActionKind(kind):
        case ActionKind.FIND_CALLER:
            return FindCaller(call_sid, payload["phone"])
        case ActionKind.DISPLAY_USER:
            phone = payload.get("phone") or caller_phone(payload["user_from"])
            return DisplayUser(call_sid, int(payload["agent_id"]), phone)
        case ActionKind.CREATE_TICKET:
            requester = payload.get("requester_phone")
            if requester is None and payload.get("requester_from"):
                requester = caller_phone(payload["requester_from"])
            agent = payload.get("display_to_agent")
            existing = payload.get("existing_ticket_id")
            return CreateTicket(
                call_sid,
                VoiceTicket.model_validate(payload["ticket"]),
                requester_phone=requester,
                display_to_agent=int(agent) if agent is not None else None,
                existing_ticket_id=int(existing) if existing is not None else None,
                group_id=_maybe_int(payload.get("group_id")),
                brand_id=_maybe_int(payload.get("brand_id")),
                parts=_stored_parts(payload),
            )
        case ActionKind.ADD_VOICE_COMMENT:
            return AddVoiceComment(
                call_sid, VoiceComment.model_validate(payload["voice_comment"]), _stored_parts(payload)
            )
        case ActionKind.DISPLAY_TICKET:
            return DisplayTicket(call_sid, int(payload["agent_id"]), _maybe_int(payload.get("ticket_id")))
        case ActionKind.LOOK_UP_CUSTOMER:
            return LookUpCustomer(call_sid, payload["phone"])
        case ActionKind.ADD_NOTE:
            name = payload.get("name") or key.rsplit(":note:", 1)[-1]
            assignee, group = payload.get("assignee_id"), payload.get("group_id")
            return AddNote(call_sid, name, payload["body"], tuple(payload.get("tags", ())), _maybe_int(assignee),
                           _maybe_int(group))  # fmt: skip
        case ActionKind.TIMER:
            return Timer(call_sid, payload["timer"], due)
        case ActionKind.CREATE_CALL_RECORD:
            comment = payload.get("comment")
            return CreateCallRecord(
                call_sid,
                CallRecord.model_validate(payload["record"]),
                CallComment.model_validate(comment) if comment is not None else None,
                payload.get("customer_phone"),
                payload.get("existing_ticket_id"),
                linked=bool(payload.get("linked", False)),
                brand_id=_maybe_int(payload.get("brand_id")),
                group_id=_maybe_int(payload.get("group_id")),
                parts=_stored_parts(payload),
                shown_on=payload.get("shown_on"),
            )
        case ActionKind.UPDATE_CALL_RECORD:
            fields = CallRecord.model_validate(payload["fields"])
            cleared = tuple(payload.get("cleared", ()))
            return UpdateCallRecord(call_sid, payload["name"], fields, cleared, payload.get("after"),
                                    _stored_parts(payload))  # fmt: skip
        case ActionKind.MOVE_CALL:
            invite = tuple(payload.get("invite", ()))
            return MoveCall(call_sid, int(payload["number"]), invite, int(payload.get("seconds", 0)))
        case ActionKind.PLACE_CALLBACK:
            return PlaceCallback(call_sid, int(payload["turn"]), str(payload["agent"]))
        case _:
            assert_never(stored)


def _parts(action: CreateTicket | AddVoiceComment | CreateCallRecord | UpdateCallRecord) -> dict[str, Any]:
    """Return the stored form of a recording in parts: nothing for one in one part, as every row before parts."""
    return {"recording_parts": list(action.parts)} if action.parts else {}


def _stored_parts(payload: dict[str, Any]) -> tuple[str, ...]:
    """Return a stored action's recording parts (rows written before parts existed have none)."""
    return tuple(str(url) for url in payload.get("recording_parts", ()))


def _maybe_int(value: Any) -> int | None:
    """Return a stored id as an int (rows written before it existed have none)."""
    return int(value) if value is not None else None
