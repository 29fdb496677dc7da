"""Recording links: the one function that links a call's recording in whatever carries it, as RECORDINGS says.

A voice comment, a ticket created with its voice comment, and a call record all carry `recording_url`.
Under `twilio` (no RecordingLinks) it stays Twilio's URL; under `proxy` it becomes the bridge's signed
link; under `zendesk` the file is uploaded to Zendesk and attached to the ticket, and the link is the
attachment's. A recording in parts (a call held or transferred) is linked as one: the bridge's link plays the
parts one after another, and the upload is the parts one after another; Twilio's URLs cannot be joined, so under
`twilio` the payload keeps the first part's (the core names the others in a note on the ticket).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import aiohttp

from bridge.ops.recordings import CHUNK
from bridge.store import FiledRecording
from bridge.twilio.media import MediaError, TwilioMedia
from bridge.zendesk.outbox.context import Context
from bridge.zendesk.outbox.errors import MediaFailed, RecordingGone
from bridge.zendesk.outbox.landed import has_comment, holds

log = logging.getLogger("bridge.outbox")

# The bridge's TwiML records answered calls with record-from-answer-dual and voicemail with <Record>, mono.
DUAL, MONO = 2, 1
# Zendesk docs, "Attaching files to tickets via API": an upload's token expires after 60 minutes.
UPLOAD_FRESH = timedelta(minutes=50)
ATTACH_NOTE = "Call recording, stored in Zendesk."
NEW_TICKET: Literal["new"] = "new"  # the ticket about to be created with the voice comment

Where = int | Literal["new"] | None  # an existing ticket, the ticket being created, or none (the bridge's link)


@dataclass(frozen=True)
class Linked:
    """A payload with its recording linked; `upload` is the token a NEW_TICKET's create must attach."""

    payload: dict[str, Any]
    upload: str | None = None


async def link_recording(
    ctx: Context, call_sid: str, payload: dict[str, Any], channels: int, where: Where, parts: Sequence[str] = ()
) -> Linked:
    """Link the recording `payload` names: Twilio's URL, the bridge's signed link, or a Zendesk attachment.

    `parts`, when the recording is in several (the payload names the first), are linked as one recording.

    Under `zendesk` the file is attached to `where`: an existing ticket by a private note (once, even when
    an earlier attempt's answer was lost), or the ticket about to be created, whose create carries the
    upload. Without a ticket the bridge's own link is used. A write the ticket refuses raises, for the
    caller to tell with `errors.writing_to`.
    """
    links = ctx.recordings
    if links is None or not payload.get("recording_url"):
        return Linked(payload)
    if links.media is None or where is None:
        return Linked(await links.filer.proxied(call_sid, payload, channels, parts))
    filed_parts = await links.filer.file_parts(call_sid, parts, channels) if len(parts) > 1 else []
    filed = filed_parts[0] if filed_parts else await links.filer.file(call_sid, payload["recording_url"], channels)
    if filed is None:
        return Linked(payload)
    # A recording in parts is uploaded as one file, kept with its first part (attached once, as any other).
    filed_parts = filed_parts or [filed]
    if where == NEW_TICKET:
        token, attached = await _upload(ctx, filed_parts, links.media)
        return Linked({**payload, "recording_url": attached}, token)
    url = filed.upload_url
    # An earlier attempt may have attached the file and lost the answer: attach it once only.
    if url is None or not await has_comment(ctx, where, holds(url)):
        token, url = await _upload(ctx, filed_parts, links.media)
        note = {"body": ATTACH_NOTE, "public": False, "uploads": [token]}
        await ctx.zendesk.update_ticket(where, {"comment": note})
    return Linked({**payload, "recording_url": url})


async def _upload(ctx: Context, parts: list[FiledRecording], media: TwilioMedia) -> tuple[str, str]:
    """Stream a recording (its parts one after another) into one Zendesk upload, or reuse an unexpired earlier one."""
    now, filed = ctx.clock(), parts[0]
    if filed.upload_token and filed.upload_url and filed.uploaded_at and now - filed.uploaded_at < UPLOAD_FRESH:
        return filed.upload_token, filed.upload_url
    failed: list[tuple[FiledRecording, Exception]] = []
    try:
        async with media.fetch(filed) as source:
            # MP3 frames concatenate: the parts one after another are one file (every part asked for in two
            # channels). The total length is known only at the end, so a file in parts goes chunked.
            joined = len(parts) > 1
            upload = await ctx.zendesk.upload(
                f"{filed.sid}.mp3",
                _joined(source, parts[1:], media, failed) if joined else source.content,
                content_type=source.headers.get("Content-Type", "audio/mpeg"),
                length=None if joined else source.content_length,
            )
    except MediaError as exc:
        failed.append((filed, exc))
    if failed:
        # A part missing makes the upload (if any) incomplete: it is not attached, and expires unused in Zendesk.
        part, error = failed[0]
        status = error.status if isinstance(error, MediaError) else 0
        if status == 404:
            raise RecordingGone(
                f"recording {part.sid} is no longer at Twilio: nothing to upload", status=404
            ) from error
        raise MediaFailed(f"fetching recording {part.sid} from Twilio: {error}", status=status) from error
    token, url = str(upload["token"]), str(upload["attachment"]["content_url"])
    await ctx.store.save_upload(filed.sid, token, url, now=now)
    log.info("call %s: recording %s uploaded to Zendesk (%s bytes%s)", filed.call_sid, filed.sid,
             upload["attachment"].get("size"), f", {len(parts)} parts" if len(parts) > 1 else "")  # fmt: skip
    return token, url


async def _joined(
    first: Any, rest: list[FiledRecording], media: TwilioMedia, failed: list[tuple[FiledRecording, Exception]]
) -> AsyncIterator[bytes]:
    """Yield the first part's bytes, then each further part's as it is fetched; a part that fails ends the body.

    The failure is kept in `failed` for the caller to raise once the upload is over: raised here, in the middle
    of sending the body, it would only reach the caller as a broken request.
    """
    async for chunk in first.content.iter_chunked(CHUNK):
        yield chunk
    for part in rest:
        try:
            async with media.fetch(part) as source:
                async for chunk in source.content.iter_chunked(CHUNK):
                    yield chunk
        except (MediaError, aiohttp.ClientError, TimeoutError) as exc:
            failed.append((part, exc))
            return
