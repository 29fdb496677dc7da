"""The outbox worker: delivers queued actions to Zendesk with retries, backoff and durable timers.

All Zendesk I/O happens here, never in a webhook handler: Twilio gives a webhook 15 s (Twilio docs,
"Webhooks connection overrides": the default read timeout), Zendesk may be slow or down, and an
acknowledged event must survive either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from bridge.core.actions import (
    Action,
    AddNote,
    AddVoiceComment,
    CreateCallRecord,
    CreateTicket,
    DisplayTicket,
    DisplayUser,
    FindCaller,
    Timer,
    UpdateCallRecord,
    call_record_key,
    caller_key,
    caller_phone,
    ticket_key,
)
from bridge.core.clock import Clock, system_clock
from bridge.core.events import CallEvent, EventKind
from bridge.core.phones import mask_text, national_digits, same_number
from bridge.ingest import Ingest
from bridge.ops.metrics import Metrics
from bridge.ops.recordings import MediaError, RecordingFiler, TwilioMedia
from bridge.store import DEAD, DONE, DROPPED, ActionRow, FiledRecording, Store, is_pop
from bridge.zendesk.client import (
    AuthFailed,
    Conflict,
    Invalid,
    NotFound,
    RateLimited,
    ServerBroken,
    Unreachable,
    ZendeskClient,
    ZendeskError,
)
from bridge.zendesk.limiter import URGENT, Limiter

log = logging.getLogger("bridge.outbox")


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often a failed action is tried again (seconds)."""

    base: float = 1.0
    cap: float = 600.0
    max_age: float = 24 * 3600.0
    lease: float = 300.0  # longer than any one delivery, so a live worker never loses its claim
    # After a timeout or a dropped connection the write may still be running inside Zendesk: looking at
    # once ("did it land?") can miss a ticket committed a moment later and create it twice. Zendesk gives
    # no commit deadline; ten seconds is far past the sub-second commits Zendesk normally makes, and
    # short enough that a timed-out voice comment still lands within the call's minute.
    settle: float = 10.0

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """Return the next delay: exponential with full jitter, capped."""
        return rng.uniform(0, min(self.cap, self.base * 2 ** min(attempts, 30)))


@dataclass
class Done:
    """The action took effect; `result` is what dependants read."""

    result: dict[str, Any] = field(default_factory=dict)
    follow_ups: list[Action] = field(default_factory=list)


@dataclass
class Dropped:
    """The action was given up on purpose (a best-effort pop that cannot land)."""

    reason: str


@dataclass
class Settled:
    """The action settled itself inside its own transaction (timers)."""


Outcome = Done | Dropped | Settled


TPE_VOICE_COMMENT = "TpeVoiceComment"  # a call record's comment (Zendesk docs: TPE API, "Creating a voice comment")
VOICE_TYPES = ("VoiceComment", TPE_VOICE_COMMENT)
# The bridge's TwiML records answered calls with record-from-answer-dual and voicemail with <Record>, mono.
DUAL, MONO = 2, 1
VIA_VOICEMAIL = 44
# Zendesk docs, "Attaching files to tickets via API": an upload's token expires after 60 minutes.
UPLOAD_FRESH = timedelta(minutes=50)
ATTACH_NOTE = "Call recording, stored in Zendesk."
MOVED_RECORD = "The call's record is shown here: the ticket it was made for was closed or deleted meanwhile."


@dataclass(frozen=True)
class RecordingLinks:
    """How voice comments link their recording (RECORDINGS); a Deliverer without one keeps Twilio's URL."""

    filer: RecordingFiler
    media: TwilioMedia | None = None  # RECORDINGS=zendesk: upload the file, fetched from here, to Zendesk


def _holds(url: str) -> Callable[[dict[str, Any]], bool]:
    """Match a comment that carries the attachment at `url`."""
    return lambda comment: any(item.get("content_url") == url for item in comment.get("attachments") or [])


def _says(body: str) -> Callable[[dict[str, Any]], bool]:
    """Match a comment with this body."""
    return lambda comment: comment.get("body") == body


def _same_call(wire: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Match this call's voice comment among others on a ticket: same from, start and length."""

    def same(comment: dict[str, Any]) -> bool:
        data = comment.get("data")
        return (
            comment.get("type") in VOICE_TYPES
            and isinstance(data, dict)
            and all(data.get(key) == wire.get(key) for key in ("from", "started_at", "call_duration"))
        )

    return same


def _shows_record(comment: dict[str, Any], call_sid: str) -> bool:
    """Tell whether a ticket comment is the TPE voice comment of this call's record (its data names the call)."""
    data = comment.get("data")
    return comment.get("type") == TPE_VOICE_COMMENT and isinstance(data, dict) and data.get("external_id") == call_sid


def _ticket_gone(exc: NotFound | Invalid) -> bool:
    """Tell whether Zendesk refused a write because the ticket was deleted or closed (merged, solved long ago)."""
    return isinstance(exc, NotFound) or exc.closed_ticket


def describe(row: ActionRow) -> str:
    """Name an action for logs, with phone numbers masked."""
    return mask_text(f"{row.kind} #{row.id} ({row.key})")


def _dependency(deps: dict[str, ActionRow], key: str | None, field_name: str) -> Any:
    """Return a field of a done dependency's result, or None."""
    row = deps.get(key) if key else None
    if row is None or row.status != DONE or not row.result:
        return None
    return row.result.get(field_name)


def _ticket_of(row: ActionRow, deps: dict[str, ActionRow]) -> int:
    """Return the id of the call's ticket, which an update or a ticket pop needs."""
    ticket_id = _dependency(deps, ticket_key(row.call_sid), "ticket_id")
    if ticket_id is None:
        raise Invalid(f"{row.kind}: the call's ticket was never created, so there is nothing to update")
    return int(ticket_id)


VOICE_VIA_DEFAULT = 45  # an answered call's ticket; rows stored before the via was kept are inbound calls
REQUESTER_FIELDS = ("requester_id", "requester")
ASSIGNEE_FIELDS = ("assignee_id", "assignee")
RETRYABLE_FIELDS = frozenset({"display_to_agent", *REQUESTER_FIELDS, *ASSIGNEE_FIELDS})
# Zendesk's default comment on a merged ticket (Zendesk help, "Merging tickets"): "This request was closed
# and merged into request #123".
MERGED_INTO = re.compile(r"merged into (?:request|ticket) #(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class TicketDefaults:
    """Where new voice tickets go: ZENDESK_GROUP_ID (tickets nobody is assigned) and ZENDESK_BRAND_ID."""

    group_id: int | None = None
    brand_id: int | None = None

    def apply(self, ticket: dict[str, Any]) -> None:
        """Put the brand on the ticket, and the group when no agent is assigned."""
        if self.brand_id is not None:
            ticket.setdefault("brand_id", self.brand_id)
        # With an assignee, Zendesk picks the agent's group itself; without one, and without a group, a
        # voicemail or missed-call ticket sits where no team looks (Zendesk help, "Assigning tickets").
        if self.group_id is not None and ticket.get("assignee_id") is None:
            ticket.setdefault("group_id", self.group_id)


@dataclass(frozen=True)
class Candidate:
    """A user whose stored number is the caller's, and whether it is their own line."""

    user: dict[str, Any]
    direct: bool

    def rank(self) -> tuple[bool, str, int]:
        """Order: a direct line before a shared number, then the most recently updated, then the newest id."""
        return (self.direct, str(self.user.get("updated_at") or ""), int(self.user.get("id") or 0))


def _merge_target(ticket: dict[str, Any], comments: list[dict[str, Any]]) -> int | None:
    """Return the ticket a closed ticket was merged into, or None when it was not merged."""
    if "closed_by_merge" not in (ticket.get("tags") or []):
        return None
    for comment in reversed(comments):
        match = MERGED_INTO.search(str(comment.get("body") or ""))
        if match:
            return int(match.group(1))
    return None


def _refused_fields(exc: Invalid) -> set[str] | None:
    """Return the fields a 422 blames when dropping them may fix it, else None (a dead letter)."""
    fields = set(exc.details)
    if exc.status != 422 or not fields or not fields <= RETRYABLE_FIELDS:
        return None
    return fields


class Deliverer:
    """Carry out one action against Zendesk (or, for timers, against the state machine)."""

    def __init__(
        self,
        zendesk: ZendeskClient,
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
        self._app_id = app_id
        self._recordings = recordings
        self._zendesk = zendesk
        self._store = store
        self._ingest = ingest
        self._clock = clock
        self._defaults = defaults or TicketDefaults()
        self._caller_locks: dict[str, asyncio.Lock] = {}

    async def deliver(self, row: ActionRow, deps: dict[str, ActionRow]) -> Outcome:
        """Perform the action; raise a ZendeskError when it failed."""
        match row.action:
            case Timer() as timer:
                return await self._fire_timer(row.id, timer)
            case FindCaller(phone=phone):
                return await self._find_caller(phone)
            case CreateTicket() as create:
                return await self._create_ticket(create, row.attempts, deps)
            case DisplayUser(agent_id=agent_id, phone=phone, call_sid=call_sid):
                return await self._display_user(agent_id, caller_key(phone), deps, call_sid)
            case DisplayTicket(agent_id=agent_id, call_sid=call_sid):
                ticket_id = _ticket_of(row, deps)
                return await self._pop(self._zendesk.display_ticket(agent_id, ticket_id))
            case AddVoiceComment(voice_comment=comment):
                ticket_id = _ticket_of(row, deps)
                # The recording link (or Zendesk attachment) is made once per attempt, before the write.
                try:
                    wire = await self._comment_recording(row.call_sid, comment.wire(), ticket_id)
                except (NotFound, Invalid) as exc:
                    if not _ticket_gone(exc):
                        raise
                    # The ticket was merged, closed or deleted before the file could be attached there: the
                    # voice comment still goes where the conversation now lives, with Twilio's own link.
                    log.warning("call %s: ticket %s took no attachment (%s); linking the recording at Twilio",
                                row.call_sid, ticket_id, exc)  # fmt: skip
                    wire = comment.wire()

                same = _same_call(wire)

                def ours(found: dict[str, Any], own_ticket: bool) -> bool:
                    # On the call's own ticket any voice comment is ours (a ticket gets exactly one); on a
                    # merge target or follow-up, match the call's data, as other calls' comments live there.
                    if found.get("type") not in VOICE_TYPES:
                        return False
                    return same(found) if isinstance(found.get("data"), dict) else own_ticket

                return await self._comment(row, deps, {"voice_comment": wire}, ours)
            case AddNote(body=body):
                note = {"comment": {"body": body, "public": False}}
                return await self._comment(row, deps, note, lambda found, own: found.get("body") == body)
            case CreateCallRecord() as create:
                return await self._create_call_record(row, create, deps)
            case UpdateCallRecord() as update:
                return await self._update_call_record(row.call_sid, update.wire(), deps)

    async def _create_call_record(
        self, row: ActionRow, create: CreateCallRecord, deps: dict[str, ActionRow]
    ) -> Outcome:
        """Create the call's record once: on its ticket, an earlier attempt whose answer was lost is found there."""
        if self._app_id is None:
            raise Invalid("call records need ZENDESK_APP_ID, the id of the installed app they belong to")
        call_sid = create.call_sid
        call: dict[str, Any] = {**create.record.wire(), "app_id": self._app_id}
        end_user = _dependency(deps, caller_key(create.customer_phone), "user_id") if create.customer_phone else None
        if end_user is not None:
            call["end_user_id"] = int(end_user)
        if self._defaults.brand_id is not None:
            call["brand_id"] = self._defaults.brand_id
        comment = create.comment.wire() if create.comment is not None else None
        if comment is not None and create.existing_ticket_id is not None:
            return await self._create_record_on(row, create.existing_ticket_id, call, comment)
        ticket_id = _dependency(deps, ticket_key(call_sid), "ticket_id") if comment is not None else None
        if comment is not None and ticket_id is None:
            ticket = deps.get(ticket_key(call_sid))
            if ticket is None or ticket.status != DEAD:
                raise Invalid(
                    f"call {call_sid}: the call's ticket was never created, so its record has nowhere to show"
                )
            # The ticket's action died (an outage past OUTBOX_MAX_AGE, a refusal): the call still counts in
            # Zendesk's reporting, as a record without a ticket.
            log.warning("call %s: its ticket was never created; creating its call record without one", call_sid)
            comment = None
        if ticket_id is None:
            return await self._create_lone_record(call_sid, call, row.attempts)
        if row.attempts > 0:
            # The Calls API has no look-up by external_id (Zendesk docs: TPE API, Calls): the record's voice
            # comment, on the ticket or where its conversation moved, is where an earlier attempt's record shows.
            found = await self._find_record(call_sid, int(ticket_id))
            if found is not None:
                return Done(found)
        home = int(ticket_id)
        call = await self._record_recording(call_sid, call, home)
        try:
            created = await self._zendesk.create_call({**call, "ticket_id": home}, comment)
        except (NotFound, Invalid) as exc:
            if not _ticket_gone(exc):
                raise
            # An agent merged, closed or deleted the ticket meanwhile: the record goes where the conversation
            # lives (the merge target, or a follow-up ticket), so it shows, and a retry finds it there.
            home = await self._new_home(row, deps, home, exc)
            created = await self._zendesk.create_call({**call, "ticket_id": home}, comment)
        return Done({"call_id": int(created["id"]), "ticket_id": home})

    async def _create_record_on(
        self, row: ActionRow, ticket_id: int, call: dict[str, Any], comment: dict[str, Any]
    ) -> Outcome:
        """Show a call out nobody answered on the ticket it was placed from; alone if that ticket closed or went."""
        if row.attempts > 0:
            found = await self._record_on(ticket_id, row.call_sid)
            if found is not None:
                return Done({"call_id": found, "ticket_id": ticket_id, "found": True})
        try:
            created = await self._zendesk.create_call({**call, "ticket_id": ticket_id}, comment)
        except (NotFound, Invalid) as exc:
            if not _ticket_gone(exc):
                raise
            # No follow-up ticket for an attempt that reached nobody: tickets mode makes no ticket of it either.
            return await self._create_lone_record(row.call_sid, call, row.attempts)
        return Done({"call_id": int(created["id"]), "ticket_id": ticket_id})

    async def _create_lone_record(self, call_sid: str, call: dict[str, Any], attempts: int) -> Outcome:
        """Create a record that has no ticket: nothing can find it again, so a lost answer may mean a copy."""
        if attempts > 0:
            log.warning("call %s: an earlier create of its call record (no ticket) may have landed unseen; Zendesk "
                        "may hold it twice", call_sid)  # fmt: skip
        call = await self._record_recording(call_sid, call, None)
        created = await self._zendesk.create_call(call, None)
        return Done({"call_id": int(created["id"])})

    async def _find_record(self, call_sid: str, ticket_id: int) -> dict[str, Any] | None:
        """Return the result of an earlier attempt's record: the call's ticket, its merge target, or a follow-up."""

        seen: list[int] = []  # the record's id, read off the comment that matched, so no second look is needed

        def ours(comment: dict[str, Any], _own_ticket: bool) -> bool:
            if not _shows_record(comment, call_sid):
                return False
            seen.append(int(comment["data"]["call_id"]))
            return True

        home = await self._landed(call_sid, ticket_id, ours)
        return {"call_id": seen[-1], "ticket_id": home, "found": True} if home is not None and seen else None

    async def _new_home(self, row: ActionRow, deps: dict[str, ActionRow], ticket_id: int, exc: ZendeskError) -> int:
        """Return the ticket where a closed or deleted ticket's conversation continues, making a follow-up once."""
        closed = None if isinstance(exc, NotFound) else await self._zendesk.ticket(ticket_id)
        owners = [closed.get("requester_id")] if closed is not None else []
        for ticket in await self._tickets_of(row.call_sid, owners):
            if int(ticket["id"]) != ticket_id and ticket.get("status") != "closed":
                return int(ticket["id"])  # an earlier attempt made the follow-up
        note = {"comment": {"body": MOVED_RECORD, "public": False}}
        return await self._move(row, deps, ticket_id, closed, note)

    async def _update_call_record(self, call_sid: str, fields: dict[str, Any], deps: dict[str, ActionRow]) -> Outcome:
        """Change the call's record; a PATCH sets the same values however often it is sent."""
        key = call_record_key(call_sid)
        call_id = _dependency(deps, key, "call_id")
        if call_id is None:
            raise Invalid(f"call {call_sid}: the call's record was never created, so there is nothing to update")
        ticket_id = _dependency(deps, key, "ticket_id")
        fields = await self._record_recording(call_sid, fields, int(ticket_id) if ticket_id is not None else None)
        try:
            await self._zendesk.update_call(int(call_id), fields)
        except NotFound:
            return Dropped(f"call record {call_id} no longer exists in Zendesk")
        return Done({"call_id": int(call_id)})

    async def _record_on(self, ticket_id: int, call_sid: str) -> int | None:
        """Return the id of the call's record shown on the ticket, or None when none is."""
        try:
            comments = await self._zendesk.ticket_comments(ticket_id)
        except NotFound:
            return None
        for comment in comments:
            if _shows_record(comment, call_sid):
                return int(comment["data"]["call_id"])
        return None

    async def _record_recording(self, call_sid: str, call: dict[str, Any], ticket_id: int | None) -> dict[str, Any]:
        """Link a record's recording as RECORDINGS says (attached to its ticket in zendesk mode, when it has one)."""
        if self._recordings is None or not call.get("recording_url"):
            return call
        channels = MONO if call.get("voicemail") else DUAL
        if self._recordings.media is None or ticket_id is None:
            return await self._recordings.filer.proxied(call_sid, call, channels)
        try:
            return await self._comment_recording(call_sid, call, ticket_id, channels)
        except (NotFound, Invalid) as exc:
            if not _ticket_gone(exc):
                raise
            # The ticket took no attachment (closed or deleted meanwhile): the record links the bridge's copy.
            log.warning("call %s: ticket %s took no attachment (%s); the call record links the recording through "
                        "the bridge", call_sid, ticket_id, exc)  # fmt: skip
            return await self._recordings.filer.proxied(call_sid, call, channels)

    async def _comment(
        self,
        row: ActionRow,
        deps: dict[str, ActionRow],
        payload: dict[str, Any],
        ours: Callable[[dict[str, Any], bool], bool],
    ) -> Outcome:
        """Add a comment to the call's ticket, or where its conversation now lives if it was closed or deleted."""
        ticket_id = _ticket_of(row, deps)
        if row.attempts > 0:
            # An earlier attempt may have landed with its answer lost (a timeout, a drop, a late commit).
            landed = await self._landed(row.call_sid, ticket_id, ours)
            if landed is not None:
                return Done({"ticket_id": landed, "found": True})
        try:
            await self._zendesk.update_ticket(ticket_id, payload)
        except (NotFound, Invalid) as exc:
            if not _ticket_gone(exc):
                raise
            closed = None if isinstance(exc, NotFound) else await self._zendesk.ticket(ticket_id)
            moved = await self._move(row, deps, ticket_id, closed, payload)
        else:
            return Done({"ticket_id": ticket_id})
        return Done({"ticket_id": moved, "moved_from": ticket_id})

    async def _move(
        self,
        row: ActionRow,
        deps: dict[str, ActionRow],
        ticket_id: int,
        closed: dict[str, Any] | None,
        payload: dict[str, Any],
    ) -> int:
        """Put a comment the call's closed (or deleted, `closed` None) ticket refused where the conversation lives.

        An agent merging the call's ticket into an earlier one closes it (Zendesk help, "Merging tickets"),
        and Zendesk refuses updates to closed tickets; the recording must not be lost: it goes to the merge
        target, or else to a follow-up ticket linked to the closed one (Zendesk docs, Tickets,
        `via_followup_source_id`).
        """
        if closed is not None:
            target = _merge_target(closed, await self._zendesk.ticket_comments(ticket_id))
            if target is not None:
                try:
                    await self._zendesk.update_ticket(target, payload)
                    log.info("call %s: ticket %s was merged into %s; comment added there", row.call_sid, ticket_id,
                             target)  # fmt: skip
                    return target
                except (NotFound, Invalid) as exc:
                    # The target went too (deleted, or closed in turn): a follow-up keeps the recording.
                    if not _ticket_gone(exc):
                        raise
        via = _dependency(deps, ticket_key(row.call_sid), "via_id") or VOICE_VIA_DEFAULT
        ticket: dict[str, Any] = {"via_id": int(via), "external_id": row.call_sid, **payload}
        if closed is not None:
            ticket["via_followup_source_id"] = ticket_id
            ticket["subject"] = f"Follow-up: {closed.get('subject') or 'call'}"
            if closed.get("requester_id") is not None:
                ticket["requester_id"] = closed["requester_id"]
        else:
            ticket["subject"] = "Call (its ticket was deleted)"
        self._defaults.apply(ticket)
        created = await self._zendesk.create_voice_ticket(ticket, None)
        why = "closed" if closed is not None else "deleted"
        log.info("call %s: ticket %s was %s; comment added to follow-up ticket %s", row.call_sid, ticket_id, why,
                 created["id"])  # fmt: skip
        return int(created["id"])

    async def _landed(self, call_sid: str, ticket_id: int, ours: Callable[[dict[str, Any], bool], bool]) -> int | None:
        """Return the ticket an earlier attempt's comment landed on: the call's, its merge target, or a follow-up."""
        try:
            comments = await self._zendesk.ticket_comments(ticket_id)
            ticket: dict[str, Any] | None = await self._zendesk.ticket(ticket_id)
        except NotFound:
            comments, ticket = [], None
        if any(ours(comment, True) for comment in comments):
            return ticket_id
        if ticket is not None and ticket.get("status") != "closed":
            return None  # the ticket takes updates, so an earlier attempt went nowhere else
        if ticket is not None:
            target = _merge_target(ticket, comments)
            if target is not None and await self._has_comment(target, lambda c: ours(c, False)):
                return target
        owners = [ticket.get("requester_id")] if ticket is not None else []
        for candidate in await self._tickets_of(call_sid, owners):
            if int(candidate["id"]) != ticket_id and await self._has_comment(
                int(candidate["id"]), lambda c: ours(c, False)
            ):
                return int(candidate["id"])
        return None

    async def _comment_recording(
        self, call_sid: str, voice: dict[str, Any], ticket_id: int, channels: int = DUAL
    ) -> dict[str, Any]:
        """Link an answered call's recording as RECORDINGS says, attaching it to the ticket first in zendesk mode."""
        if self._recordings is None or not voice.get("recording_url"):
            return voice
        filer, media = self._recordings.filer, self._recordings.media
        if media is None:
            return await filer.proxied(call_sid, voice, channels)
        filed = await filer.file(call_sid, voice["recording_url"], channels)
        if filed is None:
            return voice
        url = filed.upload_url
        # An earlier attempt may have attached the file and lost the answer: attach it once only.
        if url is None or not await self._has_comment(ticket_id, _holds(url)):
            token, url = await self._upload(filed, media)
            note = {"body": ATTACH_NOTE, "public": False, "uploads": [token]}
            await self._zendesk.update_ticket(ticket_id, {"comment": note})
        return {**voice, "recording_url": url}

    async def _ticket_recording(self, create: CreateTicket, ticket: dict[str, Any]) -> dict[str, Any]:
        """Link the recording of a ticket created with its voice comment (voicemail, TICKET_ON=end)."""
        voice = ticket.get("voice_comment")
        if self._recordings is None or not isinstance(voice, dict) or not voice.get("recording_url"):
            return ticket
        channels = MONO if create.ticket.via_id == VIA_VOICEMAIL else DUAL
        filer, media = self._recordings.filer, self._recordings.media
        if media is None:
            return {**ticket, "voice_comment": await filer.proxied(create.call_sid, voice, channels)}
        filed = await filer.file(create.call_sid, voice["recording_url"], channels)
        if filed is None:
            return ticket
        token, url = await self._upload(filed, media)
        comment = {**(ticket.get("comment") or {"body": ATTACH_NOTE, "public": False}), "uploads": [token]}
        return {**ticket, "comment": comment, "voice_comment": {**voice, "recording_url": url}}

    async def _upload(self, filed: FiledRecording, media: TwilioMedia) -> tuple[str, str]:
        """Stream a recording from Twilio into a Zendesk upload, or reuse an earlier attempt's unexpired one."""
        now = self._clock()
        if filed.upload_token and filed.upload_url and filed.uploaded_at and now - filed.uploaded_at < UPLOAD_FRESH:
            return filed.upload_token, filed.upload_url
        try:
            async with media.fetch(filed) as source:
                upload = await self._zendesk.upload(
                    f"{filed.sid}.mp3",
                    source.content,
                    content_type=source.headers.get("Content-Type", "audio/mpeg"),
                    length=source.content_length,
                )
        except MediaError as exc:
            if exc.status == 404:
                raise Invalid(f"recording {filed.sid} is no longer at Twilio: nothing to upload", status=404) from exc
            raise ServerBroken(f"fetching recording {filed.sid} from Twilio: {exc}", status=exc.status) from exc
        token, url = str(upload["token"]), str(upload["attachment"]["content_url"])
        await self._store.save_upload(filed.sid, token, url, now=now)
        log.info("call %s: recording %s uploaded to Zendesk (%s bytes)", filed.call_sid, filed.sid,
                 upload["attachment"].get("size"))  # fmt: skip
        return token, url

    async def _has_comment(self, ticket_id: int, same: Callable[[dict[str, Any]], bool]) -> bool:
        """Tell whether an earlier attempt's comment is already on the ticket (its answer may have been lost)."""
        try:
            return any(same(comment) for comment in await self._zendesk.ticket_comments(ticket_id))
        except NotFound:
            return False

    async def _tickets_of(
        self, call_sid: str, requesters: list[Any], assignee: int | None = None
    ) -> list[dict[str, Any]]:
        """Return the call's tickets through endpoints an agent may call, immediate first.

        List Tickets (`GET /api/v2/tickets?external_id=`) is allowed for admins only (Zendesk docs, Tickets,
        "Listing Tickets"), and the bridge runs as an agent. A user's requested and assigned tickets are
        exact and immediate, and agents may list them; a ticket without a requester belongs to the API
        user. Search also finds a ticket whose requester and assignee an agent changed, but only once
        indexed (the Search API lags writes by up to minutes).
        """
        # Cheapest and likeliest first, stopping at the first list that holds it: one request in the usual case.
        lists: list[tuple[Literal["requested", "assigned"], int | None]] = [
            *(("requested", int(r)) for r in requesters if r is not None),
            ("assigned", assignee),
            ("requested", None),  # the API user, requester of a ticket created without one
        ]
        asked: set[tuple[str, int]] = set()
        for relation, user_id in lists:
            if relation == "assigned" and user_id is None:
                continue
            owner = user_id if user_id is not None else await self._zendesk.my_id()
            if (relation, owner) in asked:
                continue
            asked.add((relation, owner))
            try:
                found = [
                    t for t in await self._zendesk.user_tickets(owner, relation) if t.get("external_id") == call_sid
                ]
            except NotFound:
                continue  # the user was deleted or merged since
            if found:
                return found
        return [
            t for t in await self._zendesk.search_tickets_by_external_id(call_sid) if t.get("external_id") == call_sid
        ]

    async def _fire_timer(self, action_id: int, timer: Timer) -> Outcome:
        """Feed the timer's event back into the call, settling the timer in the same transaction."""
        event = CallEvent(kind=EventKind.TIMER, call_sid=timer.call_sid, at=self._clock(), timer=timer.name)
        await self._ingest([f"timer:{timer.key}"], event, finish_action=action_id)
        return Settled()

    async def _find_caller(self, e164: str) -> Outcome:
        """Find the caller's end-user by phone, creating one named after the number only when none has it."""
        # The external_id look-up is exact and immediate, unlike the search index, which lags writes by
        # seconds to minutes: a user an earlier call (or attempt) created is found here at once.
        external_id = f"bridge-phone:{e164}"
        ours = await self._zendesk.users_by_external_id(external_id)
        if ours:
            return Done({"user_id": int(ours[0]["id"])})
        user = await self._pick_user(e164)
        if user is not None:
            return Done({"user_id": int(user["id"])})
        try:
            created = await self._zendesk.create_user(f"Caller {e164}", e164, external_id)
        except Invalid as exc:
            if "external_id" not in exc.details:
                raise
            # "External: … has already been taken": an earlier attempt's create landed after all; read it.
            ours = await self._zendesk.users_by_external_id(external_id)
            if not ours:
                raise
            return Done({"user_id": int(ours[0]["id"])})
        return Done({"user_id": int(created["id"]), "created": True})

    async def _pick_user(self, e164: str) -> dict[str, Any] | None:
        """Search by the national number, then keep the users whose stored number really is the caller's.

        Zendesk's `phone:*DIGITS` matches stored numbers ending in DIGITS (Zendesk TPE guide, "Retrieving
        the Zendesk user id of a caller"): searching the national number finds "(503) 555-0147" as well as
        "+1 503-555-0147", and parsing each candidate drops a foreign number that merely ends the same way.
        """
        results = await self._zendesk.search_users_by_phone(national_digits(e164))
        candidates: list[Candidate] = []
        for user in results[:20]:
            if same_number(user.get("phone"), e164):
                candidates.append(Candidate(user, direct=not user.get("shared_phone_number")))
                continue
            # The search hit an extra phone identity, not the primary phone; an identity is the user's own.
            try:
                phones = await self._zendesk.user_phones(int(user["id"]))
            except NotFound:
                continue
            if any(same_number(phone, e164) for phone in phones):
                candidates.append(Candidate(user, direct=True))
        if not candidates:
            return None
        return max(candidates, key=Candidate.rank).user

    async def _create_ticket(self, create: CreateTicket, attempts: int, deps: dict[str, ActionRow]) -> Outcome:
        """Create the voice ticket once, even when an earlier attempt's answer was lost."""
        call_sid, agent = create.call_sid, create.display_to_agent
        if create.existing_ticket_id is not None:
            used = await self._use_ticket(create, create.existing_ticket_id, attempts)
            if used is not None:
                return used
        requester_key = caller_key(create.requester_phone) if create.requester_phone else None
        requester = _dependency(deps, requester_key, "user_id")
        ticket = create.ticket.wire()
        if requester is not None:
            ticket["requester_id"] = requester
        self._defaults.apply(ticket)
        via = {"via_id": create.ticket.via_id}
        if attempts > 0:
            # An earlier attempt started (and maybe crashed or timed out) after sending: look before creating.
            existing = await self._tickets_of(call_sid, [requester], create.ticket.assignee_id)
            if existing:
                return Done({"ticket_id": int(existing[0]["id"]), "found": True, **via})
        ticket = await self._ticket_recording(create, ticket)
        follow_ups: list[Action] = []
        for _ in range(len(RETRYABLE_FIELDS)):
            try:
                created = await self._zendesk.create_voice_ticket(ticket, agent)
            except Invalid as exc:
                fields = _refused_fields(exc)
                if fields is None:
                    raise
                if "display_to_agent" in fields and agent is not None:
                    # Zendesk validates display_to_agent before creating anything (Zendesk Talk Partner Edition
                    # API, "Create Ticket"): the ticket matters more than the pop, so create it bare and pop
                    # separately.
                    log.warning("call %s: display_to_agent %s refused; creating the ticket without it", call_sid, agent)
                    follow_ups.append(DisplayTicket(call_sid, agent))
                    agent = None
                if fields & set(ASSIGNEE_FIELDS):
                    # A suspended agent, or one downgraded to end-user: the ticket goes unassigned, to the group.
                    log.warning("call %s: assignee %s refused (%s); creating the ticket unassigned", call_sid,
                                ticket.pop("assignee_id", None), mask_text(str(exc.details)))  # fmt: skip
                    self._defaults.apply(ticket)
                if fields & set(REQUESTER_FIELDS):
                    await self._fix_requester(ticket, requester_key, call_sid, exc)
                continue
            return Done({"ticket_id": int(created["id"]), **via}, follow_ups)
        raise Invalid(f"call {call_sid}: Zendesk kept refusing the ticket after dropping the fields it blamed")

    async def _fix_requester(self, ticket: dict[str, Any], key: str | None, call_sid: str, exc: Invalid) -> None:
        """Replace a requester Zendesk refused: look the caller up again, or leave the requester to Zendesk."""
        stale = ticket.get("requester_id")
        if key is not None and stale is not None:
            fresh = await self._refresh_caller(key, int(stale), call_sid)
            if fresh != stale:
                ticket["requester_id"] = fresh  # the cached caller was merged or deleted since we looked
                return
        # A suspended caller: Zendesk makes the API user the requester when none is given.
        log.warning("call %s: requester %s refused (%s); creating the ticket without it", call_sid, stale,
                    mask_text(str(exc.details)))  # fmt: skip
        ticket.pop("requester_id", None)

    async def _use_ticket(self, create: CreateTicket, ticket_id: int, attempts: int) -> Outcome | None:
        """Put an agent's call out on the ticket it was placed from; None when that ticket cannot take it.

        A ticket that is gone or closed (Zendesk refuses updates to closed tickets) gets no comment: the
        call then becomes its own via 46 ticket, as any call out does.
        """
        try:
            ticket = await self._zendesk.ticket(ticket_id)
        except NotFound:
            ticket = {"status": "deleted"}
        if ticket.get("status") in ("closed", "deleted"):
            log.info("call %s: ticket %s is %s; creating a new ticket instead", create.call_sid, ticket_id,
                     ticket.get("status"))  # fmt: skip
            return None
        # Each comment once, even when an earlier attempt's answer was lost: look before adding. The ticket
        # holds other calls' voice comments too, so only this call's own (same from, start and length) counts.
        note, voice = create.ticket.comment, create.ticket.voice_comment
        try:
            if note is not None and not (attempts > 0 and await self._has_comment(ticket_id, _says(note.body))):
                await self._zendesk.update_ticket(ticket_id, {"comment": note.model_dump(mode="json")})
            if voice is not None and not (
                attempts > 0 and await self._has_comment(ticket_id, _same_call(voice.wire()))
            ):
                linked = await self._comment_recording(create.call_sid, voice.wire(), ticket_id)
                await self._zendesk.update_ticket(ticket_id, {"voice_comment": linked})
        except (NotFound, Invalid) as exc:
            if not _ticket_gone(exc):
                raise
            log.info("call %s: ticket %s closed or went meanwhile; creating a new ticket instead", create.call_sid,
                     ticket_id)  # fmt: skip
            return None
        agent = create.display_to_agent
        pops: list[Action] = [DisplayTicket(create.call_sid, agent)] if agent is not None else []
        return Done({"ticket_id": ticket_id, "existing": True}, pops)

    async def _display_user(self, agent_id: int, user_key: str, deps: dict[str, ActionRow], call_sid: str) -> Outcome:
        """Pop the caller's profile; if Zendesk no longer knows the cached user, look the caller up again."""
        user_id = _dependency(deps, user_key, "user_id")
        if user_id is None:
            return Dropped("no Zendesk user for the caller")
        try:
            await self._zendesk.display_user(agent_id, user_id)
        except NotFound:
            fresh = await self._refresh_caller(user_key, user_id, call_sid)
            if fresh == user_id:
                return Dropped(f"screen-pop to agent {agent_id} not delivered: 404")
            return await self._pop(self._zendesk.display_user(agent_id, fresh))
        return Done()

    async def _refresh_caller(self, key: str, stale_id: int, call_sid: str) -> int:
        """Search again for a caller whose cached user id Zendesk no longer knows, once per number."""
        async with self._caller_locks.setdefault(key, asyncio.Lock()):
            cached = _dependency(await self._store.results([key]), key, "user_id")
            if cached is not None and cached != stale_id:
                return int(cached)  # another delivery refreshed it meanwhile
            phone = caller_phone(key)
            found = await self._find_caller(phone)
            assert isinstance(found, Done)
            fresh = int(found.result["user_id"])
            if fresh != stale_id:
                await self._store.update_result(key, found.result, now=self._clock())
                log.info("call %s: caller %s was user %s, merged or deleted in Zendesk; now user %s", call_sid,
                         mask_text(phone), stale_id, fresh)  # fmt: skip
            return fresh

    @staticmethod
    async def _pop(request: Awaitable[None]) -> Outcome:
        """Send a screen-pop; a 404 (agent offline, wrong id) is dropped, not retried."""
        try:
            await request
        except NotFound as exc:
            return Dropped(f"screen-pop not delivered: {exc}")
        return Done()


class Worker:
    """Claim due actions and deliver them, pops first, within Zendesk's budget, until stopped."""

    def __init__(
        self,
        store: Store,
        deliverer: Deliverer,
        *,
        retry: RetryPolicy | None = None,
        limiter: Limiter | None = None,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        concurrency: int = 32,
        background: int | None = None,
        pop_deadline: float = 30.0,
        probe: Callable[[], Awaitable[object]] | None = None,
        probe_every: float = 5.0,
        metrics: Metrics | None = None,
    ) -> None:
        """Bind the store and deliverer; nothing runs until `start`.

        At most `background` of the `concurrency` deliveries in flight are background work (voice
        comments, notes), so the rest are always free for pops. `probe` is a harmless request sent every
        `probe_every` seconds while Zendesk is failing, to notice the moment it answers again.
        """
        self._metrics = metrics
        self._store = store
        self._deliverer = deliverer
        self._retry = retry or RetryPolicy()
        self._limiter = limiter
        self._clock = clock
        self._rng = rng or random.Random()
        self._concurrency = concurrency
        # A quarter for background work: 8 slots carry 40 requests a second at 200 ms, far above any plan's
        # limit, and leave 24 for pops, so a ring-all burst during a drain (6 to 10 pops per call, calls a few
        # hundred ms apart) never waits for a slot; with 8 free, two calls ringing together queued a round trip.
        self._background = max(1, min(concurrency - 1, background if background is not None else concurrency // 4))
        self._pop_deadline = timedelta(seconds=pop_deadline)
        self._probe = probe
        self._probe_every = probe_every
        self._wake = asyncio.Event()
        self._inflight: dict[asyncio.Task[None], bool] = {}  # each delivery, and whether it is urgent
        self._helpers: set[asyncio.Task[None]] = set()
        self._failing = False
        self._prober: asyncio.Task[None] | None = None  # at most one probe loop at a time
        self._catch_up_every = 30.0
        self._caught_up_at = float("-inf")
        self._catch_up_waiting = False  # a catch-up is scheduled for when the last one is old enough
        self.held = 0  # rounds the loop claimed nothing because a 429 paused everything
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Tell whether the loop is alive."""
        return self._task is not None and not self._task.done()

    @property
    def failing(self) -> bool:
        """Tell whether Zendesk's last answer was a failure (5xx or none)."""
        return self._failing

    def wake(self) -> None:
        """Look for work now (new actions were committed)."""
        self._wake.set()

    def answered(self, status: int) -> None:
        """Follow Zendesk's health from every answer (0: none): probe while failing, catch up when it is back."""
        if status == 0 or status >= 500:
            if not self._failing:
                self._failing = True
                self._start_probing(first_wait=True)
        elif self._failing:
            self._failing = False
            self._schedule_catch_up()

    def _start_probing(self, *, first_wait: bool) -> None:
        """Probe Zendesk while it fails, unless a probe loop already runs (one would double the traffic)."""
        if self._prober is None or self._prober.done():
            self._prober = self._spawn(self._probing(first_wait=first_wait))

    def _schedule_catch_up(self) -> None:
        """Bring the backlog forward now, or once the last catch-up is `_catch_up_every` old.

        A partial outage (one endpoint failing, others answering) flips Zendesk's health often: catching up
        on every flip would retry the backlog every few seconds instead of on its backoff. A recovery that
        comes too soon is postponed, never dropped, or the backlog would wait out its whole backoff.
        """
        if self._catch_up_waiting:
            return
        self._catch_up_waiting = True
        delay = max(0.0, self._caught_up_at + self._catch_up_every - asyncio.get_running_loop().time())
        self._spawn(self._catch_up_after(delay))

    async def _catch_up_after(self, delay: float) -> None:
        """Wait `delay` seconds, then catch up unless Zendesk is failing again (its recovery will)."""
        try:
            if delay > 0:
                await asyncio.sleep(delay)
        finally:
            self._catch_up_waiting = False
        if self._failing:
            return
        self._caught_up_at = asyncio.get_running_loop().time()
        await self._catch_up()

    def start(self) -> None:
        """Start the loop as a tracked task."""
        self._task = asyncio.create_task(self._run(), name="outbox-worker")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming, let in-flight deliveries finish for up to `grace` seconds, then cancel them."""
        self._stopping = True
        self._wake.set()
        for helper in list(self._helpers):
            helper.cancel()
        await asyncio.gather(*self._helpers, return_exceptions=True)
        if self._task is not None:
            await self._task
        if self._inflight:
            _, pending = await asyncio.wait(self._inflight, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None] | None:
        """Run a helper (probe, catch-up) as a tracked task; None once stopping."""
        if self._stopping:
            if asyncio.iscoroutine(work):
                work.close()
            return None
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)
        return task

    async def _probing(self, *, first_wait: bool) -> None:
        """Send the probe now and then while Zendesk fails; its answer (via `answered`) ends the outage."""
        wait = first_wait
        URGENT.set(False)  # a probe is background work, whichever delivery's answer started the loop
        while self._failing and not self._stopping and self._probe is not None:
            if wait:
                # Jittered, so several instances do not probe in step.
                await asyncio.sleep(self._probe_every * self._rng.uniform(0.5, 1.0))
                if not self._failing:
                    return
            wait = True
            try:
                with contextlib.suppress(ZendeskError):  # a failure's status already reached `answered`
                    await self._probe()
            except Exception:
                log.exception("outbox: probing Zendesk failed unexpectedly")

    async def _catch_up(self) -> None:
        """Bring every action waiting out an outage's backoff forward; the limiter and pops-first order pace it."""
        try:
            count = await self._store.bring_forward(self._clock())
        except Exception:
            log.exception("outbox: bringing waiting actions forward failed; they go at their backoff")
            return
        if count:
            log.info("outbox: Zendesk answers again; %d waiting action(s) brought forward", count)
        self._wake.set()

    async def _restarted(self) -> None:
        """After a restart, probe before the backlog's backoff runs out: Zendesk may be back already."""
        try:
            stats = await self._store.stats(self._clock())
        except Exception:
            return
        if stats.pending and self._probe is not None:
            self._failing = True  # not known to be up: the probe's answer decides, and may bring them forward
            self._start_probing(first_wait=False)

    async def _run(self) -> None:
        """Claim and dispatch until stopped; sleep until the next due action or a wake-up."""
        await self._restarted()
        while not self._stopping:
            self._wake.clear()
            paused = self._limiter.paused_for() if self._limiter is not None else 0.0
            if paused > 0:
                # Zendesk refuses every request until Retry-After: claiming would only burn attempts.
                self.held += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(paused, 1.0))
                continue
            try:
                rows = await self._claim()
            except Exception:
                log.exception("outbox: claiming work failed; trying again shortly")
                rows = []
            for row in rows:
                task = asyncio.create_task(self._process(row))
                self._inflight[task] = row.urgent
                task.add_done_callback(self._finished)
            if rows:
                continue
            await self._sleep()

    async def _claim(self) -> list[ActionRow]:
        """Claim urgent work into any free slot, background work only into its own share."""
        free = self._concurrency - len(self._inflight)
        if free <= 0:
            return []
        now = self._clock()
        room = self._background - sum(1 for urgent in self._inflight.values() if not urgent)
        if room >= free:  # one claim, urgent first, cannot overfill the background share
            return await self._store.claim(now, free, self._retry.lease)
        rows = await self._store.claim(now, free, self._retry.lease, urgent_only=True)
        room = min(free - len(rows), room)
        if room > 0:
            rows += await self._store.claim(now, room, self._retry.lease)
        return rows

    def _finished(self, task: asyncio.Task[None]) -> None:
        """Forget a finished delivery and look for more work."""
        self._inflight.pop(task, None)
        self._wake.set()

    async def _sleep(self) -> None:
        """Wait for a wake-up or until the next claimable action is due (at most a second)."""
        timeout = 1.0
        if len(self._inflight) < self._concurrency:
            try:
                due = await self._store.next_due()
            except Exception:
                due = None
            if due is not None:
                timeout = min(timeout, max(0.01, (due - self._clock()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _process(self, row: ActionRow) -> None:
        """Deliver one action and record the outcome; never let an exception escape."""
        URGENT.set(row.urgent)  # this task's own context: its requests take tokens with the action's priority
        try:
            await self._attempt(row)
        except asyncio.CancelledError:
            # Stopping mid-delivery: hand the claim back now rather than when its lease runs out, so
            # another instance (or this one restarted) retries at once; the attempt was already counted.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.release(row.id))
            raise
        except Exception:
            log.exception("outbox: recording the outcome of %s failed", describe(row))

    def _expired(self, row: ActionRow, at: datetime) -> bool:
        """Tell whether a screen-pop would land after it stops mattering (POP_DEADLINE_SECONDS)."""
        return is_pop(row.action) and at - row.created_at > self._pop_deadline

    async def _expire(self, row: ActionRow) -> None:
        """Drop a pop that can no longer land while the agent's phone rings."""
        reason = f"past its deadline of {self._pop_deadline.total_seconds():.0f} s"
        await self._store.finish(row.id, DROPPED, result=None, error=reason, now=self._clock())
        self._count(row, "expired")
        log.info("outbox: %s for call %s dropped: %s", describe(row), row.call_sid, reason)

    async def _attempt(self, row: ActionRow) -> None:
        """Try the action once and settle, retry or bury it."""
        now = self._clock()
        if self._expired(row, now):
            await self._expire(row)
            return
        if now - row.created_at > timedelta(seconds=self._retry.max_age):
            error = f"gave up after {self._retry.max_age:.0f} s; last error: {row.last_error or 'none'}"
            await self._store.finish(row.id, DEAD, result=None, error=error, now=now)
            self._count(row, "dead")
            log.error("outbox: %s for call %s is a dead letter: %s", describe(row), row.call_sid, error)
            return
        try:
            deps = await self._store.results(row.needs)
            outcome = await self._deliverer.deliver(row, deps)
        except RateLimited as exc:
            if self._limiter is not None:
                self._limiter.pause(exc.retry_after)  # the whole account is refused, not just this row
            await self._later(row, exc.retry_after, exc)
        except (ServerBroken, Unreachable) as exc:
            # 5xx and timeouts are transient. When the request may have reached Zendesk, the write may still
            # commit after we gave up, so the next attempt's "did it land?" look-up waits for that.
            delay = self._retry.backoff(row.attempts, self._rng)
            if getattr(exc, "uncertain", False):
                delay = max(delay, self._retry.settle)
            await self._later(row, delay, exc)
        except (Conflict, AuthFailed) as exc:
            # 409: an agent saved the ticket at the same moment and nothing was written; try again. A
            # credentials problem is fixed by an operator, after which the backlog must still go out.
            await self._later(row, self._retry.backoff(row.attempts, self._rng), exc)
        except ZendeskError as exc:
            error = f"{exc} {exc.body}".strip()
            await self._store.finish(row.id, DEAD, result=None, error=error, now=self._clock())
            self._count(row, "dead")
            log.error("outbox: %s for call %s is a dead letter: %s", describe(row), row.call_sid, mask_text(error))
        except Exception as exc:  # a bug must not lose the action: keep it and retry later
            log.exception("outbox: %s for call %s failed unexpectedly", describe(row), row.call_sid)
            await self._later(row, self._retry.backoff(row.attempts, self._rng), exc)
        else:
            await self._settle(row, outcome)

    async def _later(self, row: ActionRow, delay: float, exc: Exception) -> None:
        """Schedule another attempt after `delay` seconds, unless a pop would be past its deadline by then."""
        now = self._clock()
        next_at = now + timedelta(seconds=delay)
        if self._expired(row, next_at):
            await self._expire(row)
            return
        await self._store.retry_later(row.id, next_at=next_at, error=str(exc), now=now)
        self._count(row, "retry")
        log.warning("outbox: %s for call %s failed (%s); retry in %.1f s", describe(row), row.call_sid, exc, delay)

    async def _settle(self, row: ActionRow, outcome: Outcome) -> None:
        """Record a delivered or dropped action."""
        now = self._clock()
        if isinstance(outcome, Done):
            if outcome.follow_ups:
                await self._store.add_actions(outcome.follow_ups, now=now)
            await self._store.finish(row.id, DONE, result=outcome.result, error=None, now=now)
            self._count(row, "delivered")
            if self._metrics is not None:
                self._metrics.delivery.labels(row.kind).observe(max(0.0, (now - row.created_at).total_seconds()))
            log.info("outbox: %s for call %s delivered", describe(row), row.call_sid)
        elif isinstance(outcome, Dropped):
            await self._store.finish(row.id, DROPPED, result=None, error=outcome.reason, now=now)
            self._count(row, "dropped")
            log.info("outbox: %s for call %s dropped: %s", describe(row), row.call_sid, outcome.reason)
        else:
            self._count(row, "delivered")
        self._wake.set()

    def _count(self, row: ActionRow, outcome: str) -> None:
        """Count one attempt's outcome."""
        if self._metrics is not None:
            self._metrics.actions.labels(row.kind, outcome).inc()
