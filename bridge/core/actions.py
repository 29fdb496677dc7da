"""What the bridge intends to do in Zendesk: one frozen dataclass per kind, in one discriminated union.

Each action is unique by its `key` across the whole store; `needs` (the keys of the actions whose
results it uses) is derived from its typed fields. Their stored JSON form is bridge.core.action_codec.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from schemas.zendesk import CallComment, CallRecord, VoiceComment, VoiceTicket


class ActionKind(StrEnum):
    """The kinds of effect the outbox delivers (the stored `kind` column)."""

    FIND_CALLER = "find_caller"  # search by phone, create the end-user when unknown
    DISPLAY_USER = "display_user"  # pop the caller's profile to an agent
    CREATE_TICKET = "create_ticket"  # TPE voice ticket (via 44/45/46)
    ADD_VOICE_COMMENT = "add_voice_comment"
    DISPLAY_TICKET = "display_ticket"
    ADD_NOTE = "add_note"  # a private comment on the call's ticket
    TIMER = "timer"  # no Zendesk I/O: feeds a TIMER event back into the state machine
    CREATE_CALL_RECORD = "create_call_record"  # ZENDESK_API=calls: the call's TPE call record
    UPDATE_CALL_RECORD = "update_call_record"  # ZENDESK_API=calls: a PATCH of that record
    MOVE_CALL = "move_call"  # not Zendesk's: move a waiting caller to what routing decided (an offer, voicemail)
    LOOK_UP_CUSTOMER = "look_up_customer"  # the caller's organization, tags and open tickets, for routing
    PLACE_CALLBACK = "place_callback"  # not Zendesk's: a callback's turn: place the call to its agent


# The kinds delivered to the telephony provider (its REST API), not to Zendesk: a worker of their own claims them.
TELEPHONY_KINDS = frozenset({ActionKind.MOVE_CALL, ActionKind.PLACE_CALLBACK})


def caller_key(e164: str) -> str:
    """Key the caller look-up by number, so two calls from one number share one user."""
    return f"tel:{e164}:user"


def caller_phone(key: str) -> str:
    """Return the number a caller key (from `caller_key`) looks up."""
    return key.removeprefix("tel:").removesuffix(":user")


def ticket_key(call_sid: str) -> str:
    """Key the one ticket of a call."""
    return f"{call_sid}:ticket"


def call_record_key(call_sid: str) -> str:
    """Key the one call record of a call."""
    return f"{call_sid}:call_record"


def timer_key(call_sid: str, name: str) -> str:
    """Key one named durable wait of a call."""
    return f"{call_sid}:timer:{name}"


@dataclass(frozen=True)
class FindCaller:
    """Find the caller's end-user by phone, creating one when none exists."""

    kind: ClassVar[ActionKind] = ActionKind.FIND_CALLER
    call_sid: str
    phone: str  # E.164

    @property
    def key(self) -> str:
        """Share one look-up among every call from this number."""
        return caller_key(self.phone)

    @property
    def needs(self) -> tuple[str, ...]:
        """Need nothing."""
        return ()


@dataclass(frozen=True)
class DisplayUser:
    """Pop the caller (found by FindCaller for `phone`) to an agent."""

    kind: ClassVar[ActionKind] = ActionKind.DISPLAY_USER
    call_sid: str
    agent_id: int
    phone: str

    @property
    def key(self) -> str:
        """Pop each agent once per call."""
        return f"{self.call_sid}:display_user:{self.agent_id}"

    @property
    def needs(self) -> tuple[str, ...]:
        """Need the caller's user."""
        return (caller_key(self.phone),)


@dataclass(frozen=True)
class CreateTicket:
    """Create the call's voice ticket, with the caller found for `requester_phone` as requester."""

    kind: ClassVar[ActionKind] = ActionKind.CREATE_TICKET
    call_sid: str
    ticket: VoiceTicket
    requester_phone: str | None = None
    display_to_agent: int | None = None
    # Put the call on this ticket instead (an agent's call out from it), if it exists and is not closed:
    # its comments go there and `ticket` is only the fallback. Keyed as the call's ticket all the same,
    # so the voice comment, notes and pops that need "the call's ticket" find this one.
    existing_ticket_id: int | None = None
    # The call's line's group (for a ticket nobody is assigned) and brand; None: ZENDESK_GROUP_ID, ZENDESK_BRAND_ID.
    group_id: int | None = None
    brand_id: int | None = None
    parts: tuple[str, ...] = ()  # the voice comment's recording in parts, in order (see AddVoiceComment)

    @property
    def key(self) -> str:
        """Create one ticket per call."""
        return ticket_key(self.call_sid)

    @property
    def needs(self) -> tuple[str, ...]:
        """Need the requester's user, when the caller has a number."""
        return (caller_key(self.requester_phone),) if self.requester_phone else ()


@dataclass(frozen=True)
class AddVoiceComment:
    """Add the call's one voice comment to its ticket."""

    kind: ClassVar[ActionKind] = ActionKind.ADD_VOICE_COMMENT
    call_sid: str
    voice_comment: VoiceComment
    # A recording in several parts (a call held or transferred), in the order they play: the comment links the
    # first, and the outbox links them all as one where RECORDINGS can. Empty: one recording, or none.
    parts: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Add one voice comment per call."""
        return f"{self.call_sid}:voice_comment"

    @property
    def needs(self) -> tuple[str, ...]:
        """Need the call's ticket."""
        return (ticket_key(self.call_sid),)


@dataclass(frozen=True)
class DisplayTicket:
    """Pop the call's ticket to an agent, or the caller's open ticket (`ticket_id`) an offer rings its agent for."""

    kind: ClassVar[ActionKind] = ActionKind.DISPLAY_TICKET
    call_sid: str
    agent_id: int
    ticket_id: int | None = None

    @property
    def key(self) -> str:
        """Pop the ticket to each agent once."""
        return f"{self.call_sid}:display_ticket:{self.agent_id}"

    @property
    def needs(self) -> tuple[str, ...]:
        """Need the call's ticket, unless it is an open ticket of the caller's, which exists already."""
        return (ticket_key(self.call_sid),) if self.ticket_id is None else ()


@dataclass(frozen=True)
class LookUpCustomer:
    """Read what Zendesk says of the caller found for `phone`: organization, tags, open tickets (for routing)."""

    kind: ClassVar[ActionKind] = ActionKind.LOOK_UP_CUSTOMER
    call_sid: str
    phone: str  # E.164

    @property
    def key(self) -> str:
        """Look up once per call: open tickets change between one call and the next."""
        return f"{self.call_sid}:customer"

    @property
    def needs(self) -> tuple[str, ...]:
        """Need the caller's user."""
        return (caller_key(self.phone),)


@dataclass(frozen=True)
class AddNote:
    """Add a private comment, named `name` within the call, to the call's ticket, and `tags` to the ticket."""

    kind: ClassVar[ActionKind] = ActionKind.ADD_NOTE
    call_sid: str
    name: str
    body: str
    tags: tuple[str, ...] = ()  # added to the ticket's own (Zendesk's additional_tags: none of its tags is lost)
    assignee_id: int | None = None  # the agent the ticket goes to with the note (a transfer's receiver, a callback's)
    group_id: int | None = None  # the group the ticket goes to with the note (a transfer to a line: its group)

    @property
    def key(self) -> str:
        """Add each named note once."""
        return f"{self.call_sid}:note:{self.name}"

    @property
    def needs(self) -> tuple[str, ...]:
        """Need the call's ticket."""
        return (ticket_key(self.call_sid),)


@dataclass(frozen=True)
class Timer:
    """Wake the call's state machine at `due`, durably."""

    kind: ClassVar[ActionKind] = ActionKind.TIMER
    call_sid: str
    name: str
    due: datetime

    @property
    def key(self) -> str:
        """Keep one wait of each name per call."""
        return timer_key(self.call_sid, self.name)

    @property
    def needs(self) -> tuple[str, ...]:
        """Need nothing."""
        return ()


@dataclass(frozen=True)
class MoveCall:
    """Move the waiting call to what routing decided for it (the `number`th move of the call)."""

    kind: ClassVar[ActionKind] = ActionKind.MOVE_CALL
    call_sid: str
    number: int
    invite: tuple[str, ...] = ()  # a call in its room stays there: these agents are invited in instead
    seconds: int = 0  # how long the invitation rings

    @property
    def key(self) -> str:
        """Move the call once per decision."""
        return f"{self.call_sid}:move:{self.number}"

    @property
    def needs(self) -> tuple[str, ...]:
        """Need nothing: the caller is waiting."""
        return ()


@dataclass(frozen=True)
class PlaceCallback:
    """Place the call to the agent of the `turn`th turn of calling the caller back (docs/callbacks.md)."""

    kind: ClassVar[ActionKind] = ActionKind.PLACE_CALLBACK
    call_sid: str  # the call that asked to be called back
    turn: int
    agent: str  # the agent's identity: client:NAME, a number, or sip:…

    @property
    def key(self) -> str:
        """Place each turn once: one decision, one call."""
        return f"{self.call_sid}:callback:{self.turn}"

    @property
    def needs(self) -> tuple[str, ...]:
        """Need nothing: the ticket pops when the agent's phone rings, not before."""
        return ()


@dataclass(frozen=True)
class CreateCallRecord:
    """Create the call's TPE call record; with `comment`, on the call's ticket, where it shows as a voice comment.

    A record on a ticket can be found again through that ticket's comments (`data.external_id`), which
    is what makes its create safe to retry; a record without one cannot (docs/call-records.md).
    """

    kind: ClassVar[ActionKind] = ActionKind.CREATE_CALL_RECORD
    call_sid: str
    record: CallRecord
    comment: CallComment | None = None  # None: a record without a ticket (an abandoned call)
    customer_phone: str | None = None  # the end-user, found by FindCaller
    # With a comment: show it on this existing ticket (a call out placed from it) instead of the call's own.
    existing_ticket_id: int | None = None
    # Without a comment, still on the call's ticket: a voicemail, whose ticket's voice comment already plays the
    # message (a record shown by a TPE voice comment too would play it twice).
    linked: bool = False
    brand_id: int | None = None  # the call's line's brand; None: ZENDESK_BRAND_ID
    # The call's line's group; None: ZENDESK_GROUP_ID. Its name is the record's ivr_destination_group_name when the
    # line's menu led the caller to a line (only Zendesk knows the name: the outbox reads it).
    group_id: int | None = None
    parts: tuple[str, ...] = ()  # the record's recording in parts, in order (see AddVoiceComment)
    # The call whose ticket shows the record, when not its own: a callback's call shows on the ticket of the call
    # that asked to be called back (docs/callbacks.md).
    shown_on: str | None = None

    @property
    def key(self) -> str:
        """Create one record per call."""
        return call_record_key(self.call_sid)

    @property
    def needs(self) -> tuple[str, ...]:
        """Need the ticket it goes on, and the caller's user when the customer has a number."""
        own = (self.comment is not None or self.linked) and self.existing_ticket_id is None
        ticket = (ticket_key(self.shown_on or self.call_sid),) if own else ()
        return ticket + ((caller_key(self.customer_phone),) if self.customer_phone else ())


@dataclass(frozen=True)
class UpdateCallRecord:
    """Change the fields of the call's record, in the update named `name` within the call (`ended`, `transcript`).

    `cleared` names fields to set to null: a record made when a leg picked up must stop naming an agent
    who never talked, and a field left out of a PATCH keeps its value.
    """

    kind: ClassVar[ActionKind] = ActionKind.UPDATE_CALL_RECORD
    call_sid: str
    name: str
    fields: CallRecord
    cleared: tuple[str, ...] = ()
    after: str | None = None  # the key of an update this one must follow (a correction of it)
    parts: tuple[str, ...] = ()  # the record's recording in parts, in order (see AddVoiceComment)

    def wire(self) -> dict[str, Any]:
        """Return the `call` object of the PATCH."""
        return {**dict.fromkeys(self.cleared), **self.fields.wire()}

    @property
    def key(self) -> str:
        """Send each named update once."""
        return f"{call_record_key(self.call_sid)}:{self.name}"

    @property
    def needs(self) -> tuple[str, ...]:
        """Need the record, and the update this one corrects."""
        return (call_record_key(self.call_sid),) + ((self.after,) if self.after else ())


Action = (
    FindCaller
    | DisplayUser
    | CreateTicket
    | AddVoiceComment
    | DisplayTicket
    | AddNote
    | Timer
    | CreateCallRecord
    | UpdateCallRecord
    | MoveCall
    | LookUpCustomer
    | PlaceCallback
)
