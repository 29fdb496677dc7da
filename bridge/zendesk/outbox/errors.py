"""The outbox's own refusals, typed, and the one place that tells a deleted or closed ticket from other refusals.

Each refusal subclasses the client's error of the same meaning, so the worker settles it the same way:
an `Invalid` is a dead letter carrying its message, a `ServerBroken` is retried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bridge.zendesk.client import Invalid, NotFound, ServerBroken


class NotConfigured(Invalid):
    """A setting the action needs is missing (call records without ZENDESK_APP_ID)."""


class NoTicket(Invalid):
    """The call's ticket was never created, so an action that needs it has nowhere to go."""


class NoRecord(Invalid):
    """The call's record was never created, so there is nothing to update."""


class StillRefused(Invalid):
    """Zendesk kept refusing a ticket after the fields it blamed were dropped."""


class RecordingGone(Invalid):
    """Twilio no longer holds the recording (404), so there is nothing to upload."""


class MediaFailed(ServerBroken):
    """Fetching a recording from Twilio failed; it may work next time."""


class TicketGone(Exception):
    """Zendesk refused a write because the ticket was deleted (404) or closed (merged, or solved long ago)."""

    def __init__(self, ticket_id: int, cause: NotFound | Invalid) -> None:
        """Keep the ticket and Zendesk's refusal; the message is the refusal's, as logs showed it before."""
        super().__init__(str(cause))
        self.ticket_id = ticket_id
        self.cause = cause

    @property
    def closed(self) -> bool:
        """Tell whether the ticket still exists, closed (a 404 means it was deleted)."""
        return not isinstance(self.cause, NotFound)


@asynccontextmanager
async def writing_to(ticket_id: int) -> AsyncIterator[None]:
    """Turn Zendesk's refusal of a write to a deleted or closed ticket into TicketGone; other errors pass."""
    try:
        yield
    except NotFound as exc:
        raise TicketGone(ticket_id, exc) from exc
    except Invalid as exc:
        # Zendesk refuses any update to a closed ticket with 422, status "closed prevents ticket update"
        # (Zendesk help, "Merging tickets": a merged ticket is closed).
        if not exc.closed_ticket:
            raise
        raise TicketGone(ticket_id, exc) from exc
