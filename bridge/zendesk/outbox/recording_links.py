"""Recording links: the one function that links a call's recording in whatever carries it, as RECORDINGS says.

A voice comment, a ticket created with its voice comment, and a call record all carry `recording_url`.
Under `twilio` (no RecordingLinks) it stays Twilio's URL; under `proxy` it becomes the bridge's signed
link; under `zendesk` the file is uploaded to Zendesk and attached to the ticket, and the link is the
attachment's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

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


async def link_recording(ctx: Context, call_sid: str, payload: dict[str, Any], channels: int, where: Where) -> Linked:
    """Link the recording `payload` names: Twilio's URL, the bridge's signed link, or a Zendesk attachment.

    Under `zendesk` the file is attached to `where`: an existing ticket by a private note (once, even when
    an earlier attempt's answer was lost), or the ticket about to be created, whose create carries the
    upload. Without a ticket the bridge's own link is used. A write the ticket refuses raises, for the
    caller to tell with `errors.writing_to`.
    """
    links = ctx.recordings
    if links is None or not payload.get("recording_url"):
        return Linked(payload)
    if links.media is None or where is None:
        return Linked(await links.filer.proxied(call_sid, payload, channels))
    filed = await links.filer.file(call_sid, payload["recording_url"], channels)
    if filed is None:
        return Linked(payload)
    if where == NEW_TICKET:
        token, attached = await _upload(ctx, filed, links.media)
        return Linked({**payload, "recording_url": attached}, token)
    url = filed.upload_url
    # An earlier attempt may have attached the file and lost the answer: attach it once only.
    if url is None or not await has_comment(ctx, where, holds(url)):
        token, url = await _upload(ctx, filed, links.media)
        note = {"body": ATTACH_NOTE, "public": False, "uploads": [token]}
        await ctx.zendesk.update_ticket(where, {"comment": note})
    return Linked({**payload, "recording_url": url})


async def _upload(ctx: Context, filed: FiledRecording, media: TwilioMedia) -> tuple[str, str]:
    """Stream a recording from Twilio into a Zendesk upload, or reuse an earlier attempt's unexpired one."""
    now = ctx.clock()
    if filed.upload_token and filed.upload_url and filed.uploaded_at and now - filed.uploaded_at < UPLOAD_FRESH:
        return filed.upload_token, filed.upload_url
    try:
        async with media.fetch(filed) as source:
            upload = await ctx.zendesk.upload(
                f"{filed.sid}.mp3",
                source.content,
                content_type=source.headers.get("Content-Type", "audio/mpeg"),
                length=source.content_length,
            )
    except MediaError as exc:
        if exc.status == 404:
            raise RecordingGone(f"recording {filed.sid} is no longer at Twilio: nothing to upload", status=404) from exc
        raise MediaFailed(f"fetching recording {filed.sid} from Twilio: {exc}", status=exc.status) from exc
    token, url = str(upload["token"]), str(upload["attachment"]["content_url"])
    await ctx.store.save_upload(filed.sid, token, url, now=now)
    log.info("call %s: recording %s uploaded to Zendesk (%s bytes)", filed.call_sid, filed.sid,
             upload["attachment"].get("size"))  # fmt: skip
    return token, url
