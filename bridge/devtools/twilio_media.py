"""A fake of Twilio's recording media API, over real HTTP, for the demo and the tests.

It behaves as an account with "Enforce HTTP Auth on Media URLs" on: the media URL on the API host wants
HTTP Basic auth (the AccountSid and auth token, or an API key) and answers with a redirect to a second
"media host" server, which serves the bytes (with Range) only from a short-lived signed URL and refuses a
request that still carries an Authorization header, as a pre-signed storage URL does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from aiohttp import hdrs, web

from bridge.ops.recordings import CHUNK

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TAG_AT = 100  # past the header and side information of silent_mp3's first frame (4 + 32 bytes at most)


def silent_mp3(seconds: float = 3.0, channels: int = 1) -> bytes:
    """Return an MP3 of silence: MPEG-1 Layer III frames at 32 kbit/s, 32 kHz, with all-zero side info.

    Each frame is a 4-byte header (ISO/IEC 11172-3 §2.4.1.3) and 140 zero bytes: side information of zero
    means no Huffman data, which every decoder plays as silence. About 4 KB a second; no encoder needed.
    """
    mode = 0xC0 if channels == 1 else 0x00  # single channel, or stereo
    frame = bytes([0xFF, 0xFB, 0x18, mode]) + bytes(140)  # 144 * 32000 / 32000 bytes a frame
    frames = max(1, round(seconds * 32000 / 1152))
    return frame * frames


@dataclass
class FakeTwilio:
    """The fake's state: credentials it accepts, recordings it lacks, and what it was asked."""

    auth_token: str
    api_keys: dict[str, str] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)  # recordings deleted at Twilio (404)
    audio: dict[int, bytes] = field(default_factory=lambda: {1: silent_mp3(3, 1), 2: silent_mp3(3, 2)})
    api_requests: list[str] = field(default_factory=list)  # paths asked of the API host
    media_requests: list[dict[str, str]] = field(default_factory=list)  # what the media host served
    media_base: str = ""
    # When set, the media host sends one chunk and waits for it: shows a proxy streams rather than buffers.
    gate: asyncio.Event | None = None
    # When set, each recording's audio carries its own sid (in its first frame's ancillary data, which decoders skip),
    # so a test can tell which recording's bytes it was given, and in which order.
    tagged: bool = False
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def audio_of(self, sid: str, channels: int) -> bytes:
        """Return the bytes served for one recording in one channel layout."""
        data = self.audio[channels]
        if not self.tagged:
            return data
        tag = sid.encode()
        return data[:_TAG_AT] + tag + data[_TAG_AT + len(tag) :]

    def authorised(self, header: str | None, account_sid: str) -> bool:
        """Tell whether Basic credentials are the account's with its token, or a known API key."""
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if user == account_sid:
            return hmac.compare_digest(password, self.auth_token)
        return user in self.api_keys and hmac.compare_digest(password, self.api_keys[user])

    def sign(self, path: str) -> str:
        """Sign a media-host path, as the redirect's pre-signed URL is."""
        return hmac.new(self._key, path.encode(), hashlib.sha256).hexdigest()[:32]


FAKE_TWILIO = web.AppKey("fake_twilio", FakeTwilio)


async def _media_file(request: web.Request) -> web.Response:
    """GET /2010-04-01/Accounts/{AC}/Recordings/{RE}.mp3: check Basic auth, then redirect to the media host."""
    fake = request.app[FAKE_TWILIO]
    account, sid = request.match_info["account"], request.match_info["sid"]
    fake.api_requests.append(request.path)
    if not fake.authorised(request.headers.get(hdrs.AUTHORIZATION), account):
        return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
    if sid in fake.missing:
        return web.json_response({"code": 20404, "message": "not found", "status": 404}, status=404)
    channels = "2" if request.query.get("RequestedChannels") == "2" else "1"
    path = f"/media/{sid}/{channels}.mp3"
    raise web.HTTPFound(f"{fake.media_base}{path}?sig={fake.sign(path)}")


async def _recordings_list(request: web.Request) -> web.Response:
    """GET /2010-04-01/Accounts/{AC}/Recordings.json: the credential check `bridge doctor` makes."""
    fake = request.app[FAKE_TWILIO]
    fake.api_requests.append(request.path)
    if not fake.authorised(request.headers.get(hdrs.AUTHORIZATION), request.match_info["account"]):
        return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
    return web.json_response({"recordings": [], "page_size": 1})


async def _media_host(request: web.Request) -> web.StreamResponse:
    """Serve the bytes of a pre-signed media URL, with Range, refusing a second authentication."""
    fake = request.app[FAKE_TWILIO]
    if hdrs.AUTHORIZATION in request.headers:
        return web.Response(status=400, text="Only one auth mechanism allowed")
    if not hmac.compare_digest(request.query.get("sig", ""), fake.sign(request.path)):
        return web.Response(status=403, text="Request has expired or its signature does not match")
    data = fake.audio_of(request.match_info["sid"], int(request.match_info["channels"]))
    byte_range = request.headers.get(hdrs.RANGE, "")
    fake.media_requests.append({"path": request.path, "range": byte_range})
    headers = {hdrs.CONTENT_TYPE: "audio/mpeg", hdrs.ACCEPT_RANGES: "bytes", hdrs.ETAG: '"fake"'}
    start, end, status = 0, len(data) - 1, 200
    match = _RANGE.match(byte_range)
    if match and (match[1] or match[2]):
        if match[1]:
            start, end = int(match[1]), min(int(match[2]) if match[2] else end, end)
        else:
            start = max(0, len(data) - int(match[2]))
        if start >= len(data) or start > end:
            return web.Response(status=416, headers={hdrs.CONTENT_RANGE: f"bytes */{len(data)}"})
        status = 206
        headers[hdrs.CONTENT_RANGE] = f"bytes {start}-{end}/{len(data)}"
    headers[hdrs.CONTENT_LENGTH] = str(end - start + 1)
    response = web.StreamResponse(status=status, headers=headers)
    await response.prepare(request)
    for offset in range(start, end + 1, CHUNK):
        await response.write(data[offset : min(offset + CHUNK, end + 1)])
        if fake.gate is not None:
            await fake.gate.wait()
    await response.write_eof()
    return response


ACCOUNT_PATH = "/2010-04-01/Accounts/{account:AC[0-9a-fA-F]{32}}"


def add_media_routes(api: web.Application, fake: FakeTwilio) -> None:
    """Serve the recording media URL (`…/Recordings/RE….mp3`) on an API host app."""
    api[FAKE_TWILIO] = fake
    api.router.add_get(f"{ACCOUNT_PATH}/Recordings/{{sid:RE[0-9a-fA-F]{{32}}}}.mp3", _media_file)


def create_fake_twilio_apps(fake: FakeTwilio) -> tuple[web.Application, web.Application]:
    """Build the API host and the media host; serve both, then set `fake.media_base` to the second's URL."""
    api = web.Application()
    add_media_routes(api, fake)
    api.router.add_get(f"{ACCOUNT_PATH}/Recordings.json", _recordings_list)
    media = web.Application()
    media[FAKE_TWILIO] = fake
    media.router.add_get(r"/media/{sid}/{channels:[12]}.mp3", _media_host)
    return api, media
