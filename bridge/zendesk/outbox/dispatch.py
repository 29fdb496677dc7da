"""Dispatch: one action, by its type, to the piece that delivers it."""

from __future__ import annotations

from bridge.core.actions import (
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
)
from bridge.core.clock import Clock, system_clock
from bridge.ingest import Ingest
from bridge.store import ActionRow, Store
from bridge.zendesk.outbox.callers import find_caller
from bridge.zendesk.outbox.comments import add_note, add_voice_comment
from bridge.zendesk.outbox.context import Attempt, Context, RecordingLinks, TicketDefaults, ZendeskApi
from bridge.zendesk.outbox.customers import look_up_customer
from bridge.zendesk.outbox.errors import NotConfigured, NoTicket
from bridge.zendesk.outbox.pops import display_ticket, display_user, pop
from bridge.zendesk.outbox.records import create_call_record, update_call_record
from bridge.zendesk.outbox.results import Done, Needs, Outcome, Ticket
from bridge.zendesk.outbox.tickets import create_ticket
from bridge.zendesk.outbox.timers import fire_timer


class Deliverer:
    """Carry out one action against Zendesk (or, for timers, against the state machine)."""

    def __init__(
        self,
        zendesk: ZendeskApi,
        store: Store,
        ingest: Ingest,
        clock: Clock = system_clock,
        recordings: RecordingLinks | None = None,
        defaults: TicketDefaults | None = None,
        app_id: int | None = None,
    ) -> None:
        """Bind the client, the store that caches caller look-ups, and the ingest that timers feed back into.

        `app_id` (ZENDESK_APP_ID) is the app every call record belongs to, under ZENDESK_API=calls.
        """
        self.context = Context(zendesk, store, clock, defaults or TicketDefaults(), recordings, app_id)
        self._ingest = ingest

    async def deliver(self, row: ActionRow, deps: dict[str, ActionRow]) -> Outcome:
        """Perform the action; raise a ZendeskError when it failed."""
        ctx, needs = self.context, Needs(deps)
        attempt = Attempt(row.call_sid, retried=row.attempts > 0)
        match row.action:
            case Timer() as timer:
                return await fire_timer(self._ingest, ctx.clock, row.id, timer)
            case FindCaller(phone=phone):
                return Done(await find_caller(ctx, phone))
            case CreateTicket() as create:
                return await create_ticket(ctx, attempt, create, needs)
            case DisplayUser(agent_id=agent_id, phone=phone, call_sid=call_sid):
                return await display_user(ctx, agent_id, phone, needs, call_sid)
            case DisplayTicket(agent_id=agent_id, ticket_id=int() as open_ticket):
                return await pop(ctx.zendesk.display_ticket(agent_id, open_ticket))  # the caller's open ticket
            case DisplayTicket(agent_id=agent_id):
                return await display_ticket(ctx, agent_id, _ticket(row, needs))
            case LookUpCustomer() as look:
                return await look_up_customer(ctx, self._ingest, row.id, look, needs)
            case AddVoiceComment(voice_comment=comment, parts=parts):
                return await add_voice_comment(ctx, attempt, _ticket(row, needs), comment, parts)
            case AddNote(body=body, tags=tags, assignee_id=assignee, group_id=group):
                return await add_note(ctx, attempt, _ticket(row, needs), body, tags, assignee, group)
            case CreateCallRecord() as create:
                return await create_call_record(ctx, attempt, create, needs)
            case UpdateCallRecord() as update:
                return await update_call_record(ctx, row.call_sid, update.wire(), needs, update.parts)
            case MoveCall() | PlaceCallback():
                # Never claimed here (the store keeps the telephony worker's actions apart); a bug if it is.
                raise NotConfigured(f"{row.kind} is the telephony worker's, not Zendesk's")


def _ticket(row: ActionRow, needs: Needs) -> Ticket:
    """Return the call's ticket, which an update or a ticket pop needs."""
    ticket = needs.ticket(row.call_sid)
    if ticket is None:
        raise NoTicket(f"{row.kind}: the call's ticket was never created, so there is nothing to update")
    return ticket
