"""Twilio's recording media: what a RecordingUrl names, and the MP3 fetched with Basic auth.

With "Enforce HTTP Auth on Media URLs" on (Twilio docs: "Prevent unauthorized access to your Programmable
Voice Media with HTTP Basic Auth"; on by default for accounts created since July 2023) the media URL wants
the account's credentials and redirects to a media host. The requests go over the bridge's one session for
Twilio, the one its REST API (bridge.twilio.rest) uses: both are api.twilio.com.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import hdrs

from bridge.ops.settings import Settings
from bridge.store import FiledRecording
from bridge.twilio.rest import TWILIO_API

# Twilio's RecordingUrl: https://api.twilio.com/2010-04-01/Accounts/{AC}/Recordings/{RE}, no extension
# (Twilio docs: "Recordings resource", RecordingUrl; the media file is that URL plus .mp3 or .wav).
_TWILIO_RECORDING = re.compile(
    r"^(?P<origin>https://[A-Za-z0-9.-]+)/2010-04-01/Accounts/(?P<account>AC[0-9a-fA-F]{32})"
    r"/Recordings/(?P<sid>RE[0-9a-fA-F]{32})(?:\.(?:mp3|wav))?(?:\?.*)?$"
)
_MEDIA_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10, sock_read=30)


@dataclass(frozen=True)
class TwilioRecording:
    """A recording named by Twilio's RecordingUrl."""

    origin: str
    account_sid: str
    sid: str


def parse_recording_url(url: str | None) -> TwilioRecording | None:
    """Return the account and recording a Twilio RecordingUrl names, or None for anything else."""
    match = _TWILIO_RECORDING.match(url or "")
    if match is None:
        return None
    host = urlsplit(match["origin"]).hostname or ""
    if host != "twilio.com" and not host.endswith(".twilio.com"):
        return None  # a signed webhook named it, but the bridge only ever sends Twilio's credentials to Twilio
    return TwilioRecording(match["origin"], match["account"], match["sid"])


class MediaError(Exception):
    """Twilio did not hand over a recording; `status` is its HTTP status, 0 when it did not answer."""

    def __init__(self, message: str, status: int = 0) -> None:
        """Keep Twilio's status."""
        super().__init__(message)
        self.status = status


class TwilioMedia:
    """Fetch recordings from Twilio's media API over the bridge's own session for Twilio."""

    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        """Bind the session and the credentials."""
        self._session = session
        self._settings = settings

    def url(self, recording: FiledRecording) -> str:
        """Return where the MP3 is: TWILIO_API_URL when set (a proxy, the tests' fake), else Twilio's host."""
        parsed = parse_recording_url(recording.media_url)
        origin = parsed.origin if parsed else TWILIO_API
        base = (self._settings.twilio_api_url or origin).rstrip("/")
        return f"{base}/2010-04-01/Accounts/{recording.account_sid}/Recordings/{recording.sid}.mp3"

    @asynccontextmanager
    async def fetch(self, recording: FiledRecording, byte_range: str | None = None) -> AsyncIterator[Any]:
        """Open the MP3 at Twilio with Basic auth, following the redirect to its media host.

        aiohttp drops the Authorization header when a redirect leaves the origin (aiohttp docs, "Client
        reference": redirects to another origin strip it), so the credentials go to
        api.twilio.com only and never to the media host. A dual-channel recording is asked for as one
        stereo file with RequestedChannels=2, the media-fetch parameter Twilio's changelog "Dual-channel
        Voice Conference Recordings" (2024-07-09) describes: it chooses a dual-channel file or a mono mix.
        The bytes are passed on as Twilio sent them (no decompression), so their length and ranges hold.
        """
        params = {"RequestedChannels": "2"} if recording.channels == 2 else {}
        headers = {hdrs.AUTHORIZATION: self._authorization(recording.account_sid)}
        if byte_range:
            headers[hdrs.RANGE] = byte_range
        opened = False
        try:
            async with self._session.get(
                self.url(recording), params=params, headers=headers, timeout=_MEDIA_TIMEOUT, auto_decompress=False
            ) as response:
                if response.status not in (200, 206, 416):
                    message = f"Twilio answered {response.status} for recording {recording.sid}"
                    raise MediaError(message, response.status)
                opened = True
                yield response
        except (aiohttp.ClientError, TimeoutError) as exc:
            if opened:
                raise  # a failure while the caller read the body is the caller's to handle
            raise MediaError(f"Twilio's media API did not answer for {recording.sid}: {type(exc).__name__}") from exc

    def _authorization(self, account_sid: str) -> str:
        """Return the Basic Authorization header for an account's media."""
        return aiohttp.encode_basic_auth(*self._settings.twilio_media_auth(account_sid))
