"""Recording links: file what a voice comment links to, sign the link, and stream the audio from Twilio.

Zendesk stores a voice comment's `recording_url` and the agent's browser fetches it. With "Enforce HTTP
Auth on Media URLs" on (Twilio docs: "Prevent unauthorized access to your Programmable Voice Media with
HTTP Basic Auth"; on by default for accounts created since July 2023) Twilio's own media URL answers 401
to that browser. With RECORDINGS=proxy the link points at the bridge instead: it carries a signature bound
to one recording, and the bridge streams the file from Twilio with Basic auth (bridge.twilio.media). Only
recordings the bridge filed (linked in a voice comment) can be fetched, and every refusal is decided
without contacting Twilio.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import hdrs, web

from bridge.core.clock import Clock, system_clock
from bridge.ops.clients import ClientAddresses, ClientLimiter
from bridge.ops.frontdoor import REASON
from bridge.ops.settings import Settings
from bridge.store import FiledRecording, Store
from bridge.twilio.media import MediaError, TwilioMedia, parse_recording_url

log = logging.getLogger("bridge.recordings")

ROUTE = "/recordings/{sid}.mp3"
SECRET_BYTES = 32
RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
# Headers of Twilio's answer that the player needs: what the bytes are, how many, which range, and
# what lets it resume or seek (RFC 9110 §14 and §15.3.7).
_PASSED_HEADERS = (hdrs.CONTENT_TYPE, hdrs.CONTENT_LENGTH, hdrs.CONTENT_RANGE, hdrs.ACCEPT_RANGES, hdrs.ETAG,
                   hdrs.LAST_MODIFIED)  # fmt: skip
# Agents' browsers may cache the audio, shared caches may not: it is a customer's voice.
CACHE_CONTROL = "private, max-age=3600"
CHUNK = 64 * 1024
# Per client address: a player asks for a few ranges per recording; 60 at once then one a second is far
# above any agent's use and far below what guessing signatures would need.
BURST, PER_SECOND = 60, 1.0
# A recording in parts (a call held or transferred) is one link: `?then=` names the parts after the first. A call
# moves into a fresh room at each cold transfer, so a part per transfer; far fewer than this bound on a request.
THEN = "then"
MAX_PARTS = 100


class LinkSigner:
    """Sign and check recording links with the secret kept in the database."""

    def __init__(self, secret: bytes, public_url: str, ttl_days: float | None = None) -> None:
        """Bind the secret, the bridge's public URL and the optional lifetime of a link."""
        self._secret = secret
        self._public_url = public_url.rstrip("/")
        self._ttl = timedelta(days=ttl_days) if ttl_days else None

    def signature(self, sid: str, then: Sequence[str] = ()) -> str:
        """Return the signature that binds a link to this one recording, or to these parts in this order.

        HMAC-SHA256, 256 bits, over the recordings one a line: a single recording's is what it always was.
        """
        message = "\n".join(("recording-link", sid, *then))
        mac = hmac.new(self._secret, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def link(self, sid: str, then: Sequence[str] = ()) -> str:
        """Return the public link to a recording, or to a recording in parts (`then`: the parts after the first)."""
        parts = f"{THEN}={','.join(then)}&" if then else ""
        return f"{self._public_url}/recordings/{sid}.mp3?{parts}sig={self.signature(sid, then)}"

    def valid(self, sid: str, signature: str, then: Sequence[str] = ()) -> bool:
        """Tell whether a signature is this recording's, or these parts' (compared in constant time)."""
        return hmac.compare_digest(self.signature(sid, then).encode(), signature.encode("utf-8", "replace"))

    def expired(self, recording: FiledRecording, now: datetime) -> bool:
        """Tell whether RECORDING_LINK_TTL_DAYS has run out since the recording was filed."""
        return self._ttl is not None and now >= recording.filed_at + self._ttl


async def load_signer(store: Store, settings: Settings) -> LinkSigner:
    """Return the signer, creating the database's secret the first time any instance starts."""
    secret = await store.link_secret(secrets.token_bytes(SECRET_BYTES))
    return LinkSigner(secret, settings.public_url, settings.recording_link_ttl_days)


def _refuse(status: int, error: str) -> web.Response:
    """Answer a refusal with a JSON body and no caching."""
    return web.json_response({"error": error}, status=status, headers={hdrs.CACHE_CONTROL: "no-store"})


class RecordingProxy:
    """Serve `GET /recordings/{sid}.mp3?sig=…`: check, then stream the recording from Twilio."""

    def __init__(
        self,
        store: Store,
        signer: LinkSigner,
        media: TwilioMedia,
        *,
        clients: ClientAddresses | None = None,
        clock: Clock = system_clock,
        limiter: ClientLimiter | None = None,
        on_answer: Callable[[int], None] = lambda status: None,
    ) -> None:
        """Bind what a request needs; `clients` names a request's client; `on_answer` counts each answer (metrics)."""
        self._on_answer = on_answer
        self._clients = clients or ClientAddresses(None)
        self._store = store
        self._signer = signer
        self._media = media
        self._clock = clock
        self._limiter = limiter or ClientLimiter(BURST, PER_SECOND)

    async def respond(self, request: web.Request) -> web.StreamResponse:
        """Answer a recording link, counting the answer."""
        response = await self._respond(request)
        self._on_answer(response.status)
        return response

    async def _respond(self, request: web.Request) -> web.StreamResponse:
        """Refuse what was not issued (403/404) before contacting Twilio; otherwise stream the audio.

        A refusal is logged by the front door, once a second at most, never with the signature.
        """
        client = self._clients.of(request)
        sid = request.match_info.get("sid", "")
        if not self._limiter.allow(client):
            request[REASON] = "too many requests"
            return web.json_response({"error": "too many requests"}, status=429, headers={hdrs.RETRY_AFTER: "1"})
        then = tuple(part for part in request.query.get(THEN, "").split(",") if part)
        if not all(RECORDING_SID.match(part) for part in (sid, *then)) or len(then) >= MAX_PARTS:
            return self._refused(request, 404, "no such recording")
        if not self._signer.valid(sid, request.query.get("sig", ""), then):
            return self._refused(request, 403, "invalid signature")
        recordings = [await self._store.filed_recording(part) for part in (sid, *then)]
        filed = [recording for recording in recordings if recording is not None]
        if len(filed) < len(recordings):
            return self._refused(request, 404, "no such recording")
        if any(self._signer.expired(recording, self._clock()) for recording in filed):
            return self._refused(request, 403, "link expired")
        if then:
            return await self._stream_parts(request, filed, client)
        return await self._stream(request, filed[0], client)

    @staticmethod
    def _refused(request: web.Request, status: int, reason: str) -> web.Response:
        """Answer a refusal, saying why for the front door's log line."""
        request[REASON] = reason
        return _refuse(status, reason)

    async def _stream(self, request: web.Request, recording: FiledRecording, client: str) -> web.StreamResponse:
        """Pass Twilio's bytes (and its status: 200, 206 or 416) through as they arrive, never buffering."""
        byte_range = request.headers.get(hdrs.RANGE)
        try:
            async with self._media.fetch(recording, byte_range) as upstream:
                headers = {name: upstream.headers[name] for name in _PASSED_HEADERS if name in upstream.headers}
                headers.setdefault(hdrs.CONTENT_TYPE, "audio/mpeg")
                headers.setdefault(hdrs.ACCEPT_RANGES, "bytes")
                headers[hdrs.CACHE_CONTROL] = CACHE_CONTROL
                response = web.StreamResponse(status=upstream.status, headers=headers)
                await response.prepare(request)
                log.info("recording %s of call %s for %s: %s%s", recording.sid, recording.call_sid, client,
                         upstream.status, f" ({byte_range})" if byte_range else "")  # fmt: skip
                try:
                    if request.method != hdrs.METH_HEAD:
                        async for chunk in upstream.content.iter_chunked(CHUNK):
                            await response.write(chunk)
                    await response.write_eof()
                except (ConnectionError, aiohttp.ClientError, TimeoutError) as exc:
                    # The player went away (it often does, to seek) or Twilio broke off: nothing left to answer.
                    log.info("recording %s for %s: stream ended early (%s)", recording.sid, client, type(exc).__name__)
                return response
        except MediaError as exc:
            return _media_refusal(recording, exc)

    async def _stream_parts(self, request: web.Request, parts: list[FiledRecording], client: str) -> web.StreamResponse:
        """Play a recording in parts as one MP3: each part's bytes after the last's, as Twilio sends them.

        MP3 is a sequence of self-contained frames, so parts one after another play as one file; every part is
        asked for in two channels (`channels` is 2 for each part of a conversation), so the channel count never
        changes in the stream. Its length is known only once the last part is in: the answer is the whole body
        (200, chunked, `Accept-Ranges: none`) whatever Range the player asked for. A part Twilio fails to give
        once the stream began ends it early (logged): the status went out with the first part.
        """
        response: web.StreamResponse | None = None
        for number, part in enumerate(parts, start=1):
            try:
                async with self._media.fetch(part) as upstream:
                    if response is None:
                        headers = {hdrs.CONTENT_TYPE: "audio/mpeg", hdrs.ACCEPT_RANGES: "none",
                                   hdrs.CACHE_CONTROL: CACHE_CONTROL}  # fmt: skip
                        response = web.StreamResponse(status=200, headers=headers)
                        await response.prepare(request)
                        log.info("recording %s of call %s in %d parts for %s: 200", part.sid, part.call_sid,
                                 len(parts), client)  # fmt: skip
                        if request.method == hdrs.METH_HEAD:
                            break
                    async for chunk in upstream.content.iter_chunked(CHUNK):
                        await response.write(chunk)
            except MediaError as exc:
                if response is None:
                    return _media_refusal(part, exc)
                log.warning("recording %s: part %d of %d failed at Twilio (%s); the stream ends early", parts[0].sid,
                            number, len(parts), exc)  # fmt: skip
                break
            except (ConnectionError, aiohttp.ClientError, TimeoutError) as exc:
                log.info("recording %s for %s: stream ended early (%s)", parts[0].sid, client, type(exc).__name__)
                return response or _refuse(502, "Twilio's media API failed")
        assert response is not None  # the first part either opened or was refused
        await response.write_eof()
        return response


def _media_refusal(recording: FiledRecording, exc: MediaError) -> web.Response:
    """Answer what Twilio's media API said of a recording, before any of its bytes went out."""
    if exc.status in (401, 403):
        log.error("recording %s: Twilio refused the bridge's credentials (%s); check TWILIO_AUTH_TOKEN or "
                  "TWILIO_API_KEY_SID/SECRET", recording.sid, exc.status)  # fmt: skip
        return _refuse(502, "Twilio refused the bridge's credentials")
    if exc.status == 404:
        log.warning("recording %s: Twilio no longer has it (deleted?)", recording.sid)
        return _refuse(404, "the recording is no longer at Twilio")
    log.warning("recording %s: %s", recording.sid, exc)
    return _refuse(502, "Twilio's media API failed")


class RecordingFiler:
    """File a voice comment's recording and rewrite its link for RECORDINGS=proxy (the outbox's side)."""

    def __init__(self, store: Store, signer: LinkSigner, clock: Clock = system_clock) -> None:
        """Bind the store that remembers filed recordings and the signer of their links."""
        self._store = store
        self._signer = signer
        self._clock = clock

    async def file(self, call_sid: str, url: str | None, channels: int) -> FiledRecording | None:
        """Remember the recording a Twilio media URL names; None when it names none."""
        parsed = parse_recording_url(url)
        if parsed is None or url is None:
            return None
        media_url = url.split("?", 1)[0].removesuffix(".mp3").removesuffix(".wav")
        filed = FiledRecording(parsed.sid, parsed.account_sid, call_sid, media_url, channels, self._clock())
        return await self._store.file_recording(filed)

    async def file_parts(self, call_sid: str, parts: Sequence[str], channels: int) -> list[FiledRecording]:
        """Remember each part of a recording in parts, in order (what names no recording is left out)."""
        filed = [await self.file(call_sid, url, channels) for url in parts]
        return [recording for recording in filed if recording is not None]

    async def proxied(
        self, call_sid: str, voice_comment: dict[str, Any], channels: int, parts: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Return the voice comment with its Twilio URL replaced by the bridge's signed link (to all its parts)."""
        if len(parts) > 1:
            filed_parts = await self.file_parts(call_sid, parts, channels)
            if filed_parts:
                first, *then = (recording.sid for recording in filed_parts)
                return {**voice_comment, "recording_url": self._signer.link(first, then)}
        filed = await self.file(call_sid, voice_comment.get("recording_url"), channels)
        if filed is None:
            return voice_comment
        return {**voice_comment, "recording_url": self._signer.link(filed.sid)}
