"""What a delivered action leaves for the actions that need it: one class per result, stored as JSON.

The `result` column holds each result's `encode()`, exactly the JSON earlier versions wrote, so rows
written before these classes existed decode to the same results (tests/test_outbox_results.py holds
literal rows). A row is decoded by its action's kind, since `{"ticket_id": 7}` is a ticket made by a
version that did not keep the via yet, or a comment added to ticket 7.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, assert_never

from bridge.core.actions import Action, ActionKind, call_record_key, caller_key, ticket_key
from bridge.store import DONE, ActionRow


@dataclass(frozen=True)
class CallerFound:
    """The caller's end-user, already in Zendesk (by the bridge's external id, or by phone)."""

    user_id: int

    def encode(self) -> dict[str, Any]:
        """Return the stored form."""
        return {"user_id": self.user_id}


@dataclass(frozen=True)
class CallerCreated:
    """The caller's end-user, created by the bridge, named after the number."""

    user_id: int

    def encode(self) -> dict[str, Any]:
        """Return the stored form."""
        return {"user_id": self.user_id, "created": True}


@dataclass(frozen=True)
class TicketMade:
    """The call's voice ticket, created; `via_id` is None in rows stored before the via was kept."""

    ticket_id: int
    via_id: int | None

    def encode(self) -> dict[str, Any]:
        """Return the stored form."""
        return {"ticket_id": self.ticket_id, **_via(self.via_id)}


@dataclass(frozen=True)
class TicketFound:
    """The call's voice ticket, which an earlier attempt created with its answer lost."""

    ticket_id: int
    via_id: int | None

    def encode(self) -> dict[str, Any]:
        """Return the stored form."""
        return {"ticket_id": self.ticket_id, "found": True, **_via(self.via_id)}


@dataclass(frozen=True)
class TicketReused:
    """The existing ticket an agent's call out was placed from, which took the call's comments."""

    ticket_id: int

    @property
    def via_id(self) -> int | None:
        """Return None: the bridge did not create this ticket."""
        return None

    def encode(self) -> dict[str, Any]:
        """Return the stored form."""
        return {"ticket_id": self.ticket_id, "existing": True}


@dataclass(frozen=True)
class CommentAdded:
    """A voice comment or note, added to the call's ticket."""

    ticket_id: int

    def encode(self) -> dict[str, Any]:
        """Return the stored form."""
        return {"ticket_id": self.ticket_id}


@dataclass(frozen=True)
class CommentFound:
    """A comment an earlier attempt added with its answer lost: on the call's ticket, or where it moved."""

    ticket_id: int

    def encode(self) -> dict[str, Any]:
        """Return the stored form."""
        return {"ticket_id": self.ticket_id, "found": True}


@dataclass(frozen=True)
class CommentMoved:
    """A comment the call's closed or deleted ticket refused, added where its conversation lives."""

    ticket_id: int
    moved_from: int

    def encode(self) -> dict[str, Any]:
        """Return the stored form."""
        return {"ticket_id": self.ticket_id, "moved_from": self.moved_from}


@dataclass(frozen=True)
class RecordMade:
    """The call's record, created on `ticket_id`, or without a ticket (None)."""

    call_id: int
    ticket_id: int | None

    def encode(self) -> dict[str, Any]:
        """Return the stored form."""
        return {"call_id": self.call_id, **({"ticket_id": self.ticket_id} if self.ticket_id is not None else {})}


@dataclass(frozen=True)
class RecordFound:
    """The call's record, which an earlier attempt created; found through the comments of `ticket_id`."""

    call_id: int
    ticket_id: int

    def encode(self) -> dict[str, Any]:
        """Return the stored form."""
        return {"call_id": self.call_id, "ticket_id": self.ticket_id, "found": True}


@dataclass(frozen=True)
class RecordUpdated:
    """The call's record, changed."""

    call_id: int

    def encode(self) -> dict[str, Any]:
        """Return the stored form."""
        return {"call_id": self.call_id}


@dataclass(frozen=True)
class Popped:
    """A screen-pop Zendesk accepted."""

    def encode(self) -> dict[str, Any]:
        """Return the stored form: nothing for dependants to read."""
        return {}


Caller = CallerFound | CallerCreated
Ticket = TicketMade | TicketFound | TicketReused
Comment = CommentAdded | CommentFound | CommentMoved
Record = RecordMade | RecordFound
Result = Caller | Ticket | Comment | Record | RecordUpdated | Popped


@dataclass
class Done:
    """The action took effect; `result` is what dependants read, `follow_ups` are further actions to queue."""

    result: Result
    follow_ups: list[Action] = field(default_factory=list)


@dataclass
class Dropped:
    """The action was given up on purpose (a best-effort pop that cannot land)."""

    reason: str


@dataclass
class Settled:
    """The action settled itself inside its own transaction (timers)."""


Outcome = Done | Dropped | Settled


def _via(via_id: int | None) -> dict[str, Any]:
    """Return the via's stored field, absent when unknown."""
    return {"via_id": via_id} if via_id is not None else {}


def _int(data: Mapping[str, Any], name: str, kind: ActionKind) -> int:
    """Return a stored result's integer field, or say which row lacks it."""
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"a stored {kind.value} result has no integer {name}: {dict(data)!r}")
    return value


def _optional(data: Mapping[str, Any], name: str, kind: ActionKind) -> int | None:
    """Return a stored result's integer field, None when absent."""
    return _int(data, name, kind) if data.get(name) is not None else None


def decode(kind: ActionKind, data: Mapping[str, Any]) -> Result | None:
    """Return the result a row of this kind stored (None for a timer, which leaves none)."""
    match kind:
        case ActionKind.FIND_CALLER:
            user_id = _int(data, "user_id", kind)
            return CallerCreated(user_id) if data.get("created") else CallerFound(user_id)
        case ActionKind.CREATE_TICKET:
            ticket_id = _int(data, "ticket_id", kind)
            if data.get("existing"):
                return TicketReused(ticket_id)
            via_id = _optional(data, "via_id", kind)
            return TicketFound(ticket_id, via_id) if data.get("found") else TicketMade(ticket_id, via_id)
        case ActionKind.ADD_VOICE_COMMENT | ActionKind.ADD_NOTE:
            ticket_id = _int(data, "ticket_id", kind)
            if data.get("found"):
                return CommentFound(ticket_id)
            moved_from = _optional(data, "moved_from", kind)
            return CommentMoved(ticket_id, moved_from) if moved_from is not None else CommentAdded(ticket_id)
        case ActionKind.CREATE_CALL_RECORD:
            call_id = _int(data, "call_id", kind)
            if data.get("found"):
                return RecordFound(call_id, _int(data, "ticket_id", kind))
            return RecordMade(call_id, _optional(data, "ticket_id", kind))
        case ActionKind.UPDATE_CALL_RECORD:
            return RecordUpdated(_int(data, "call_id", kind))
        case ActionKind.DISPLAY_USER | ActionKind.DISPLAY_TICKET:
            return Popped()
        case ActionKind.TIMER | ActionKind.MOVE_CALL | ActionKind.LOOK_UP_CUSTOMER | ActionKind.PLACE_CALLBACK:
            # A move or a callback's turn is the telephony worker's; the caller's data goes into the call itself.
            return None
        case _:
            assert_never(kind)


def result_of(row: ActionRow) -> Result | None:
    """Return the result a row holds, whatever its status (None when it holds none)."""
    return decode(row.action.kind, row.result) if row.result else None


class Needs:
    """The results an action's dependencies left, read by type; a dependency not done reads as None."""

    def __init__(self, rows: Mapping[str, ActionRow]) -> None:
        """Wrap the rows the store returned for the action's `needs`."""
        self._rows = rows

    def status(self, key: str) -> str | None:
        """Return a dependency's status, None when it was never queued."""
        row = self._rows.get(key)
        return row.status if row is not None else None

    def result(self, key: str | None) -> Result | None:
        """Return a done dependency's result, or None."""
        row = self._rows.get(key) if key else None
        if row is None or row.status != DONE or not row.result:
            return None
        return result_of(row)

    def caller(self, phone: str | None) -> Caller | None:
        """Return the caller look-up's result for a number, or None (no number, not done)."""
        found = self.result(caller_key(phone)) if phone else None
        return found if isinstance(found, Caller) else None

    def ticket(self, call_sid: str) -> Ticket | None:
        """Return the call's ticket, or None while it does not exist."""
        found = self.result(ticket_key(call_sid))
        return found if isinstance(found, Ticket) else None

    def record(self, call_sid: str) -> Record | None:
        """Return the call's record, or None while it does not exist."""
        found = self.result(call_record_key(call_sid))
        return found if isinstance(found, Record) else None
