"""Send Twilio's webhooks: signed as Twilio signs them, captured as recordings, shuffled and doubled when asked."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from twilio.request_validator import RequestValidator

from bridge.devtools.fake_twilio.clock import Activity
from bridge.devtools.fake_twilio.state import Sids

TWIML_TYPES = frozenset({"text/xml", "application/xml", "text/html"})
AUDIO_TYPES = frozenset({"audio/mpeg", "audio/mp3", "audio/wav", "audio/x-wav", "audio/wave"})
TIMEOUT_SECONDS = 15  # Twilio docs: error 11205, the whole response must arrive within 15 s


class FetchError(Exception):
    """A TwiML request that failed: `code` is Twilio's (11200 HTTP retrieval failure, 11205, 12300…)."""

    def __init__(self, code: int, message: str) -> None:
        """Keep Twilio's code with the reason."""
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class Sent:
    """One webhook as the stand-in sent it: what a recording line holds, and who it was about."""

    root: str  # the CallSid (or ConferenceSid) whose recording the line belongs to
    at: float  # seconds since that call started
    url: str
    method: str
    params: dict[str, str]
    headers: dict[str, str]
    status: int  # the answer's HTTP status (0: no connection)
    moment: datetime | None = None  # when it was sent, on the stand-in's clock

    @property
    def path(self) -> str:
        """Return the path and query, as a recording line names the route."""
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def line(self) -> str:
        """Return the recording line (tests/recordings/README.md): `at`, `path`, sorted params, the token."""
        item: dict[str, Any] = {"at": round(self.at, 3), "path": self.path, "params": dict(sorted(self.params.items()))}
        token = self.headers.get("I-Twilio-Idempotency-Token")
        if token:
            item["headers"] = {"I-Twilio-Idempotency-Token": token}
        return json.dumps(item, ensure_ascii=False)


@dataclass
class Delivery:
    """How fire-and-forget callbacks arrive: in order (the default), or shuffled with duplicates."""

    # Twilio sends status, recording and conference callbacks as separate requests that may overtake each
    # other and arrive twice (Twilio docs: Call resource, StatusCallback; Webhook connection overrides).
    shuffle: bool = False
    duplicates: float = 0.0  # the share of callbacks sent a second time, with the same idempotency token
    seed: int | None = None
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        """Seed the shuffle."""
        self._rng = random.Random(self.seed)

    @property
    def held(self) -> bool:
        """Tell whether callbacks are held back to be shuffled."""
        return self.shuffle or self.duplicates > 0

    def order(self, pending: list[Any]) -> list[Any]:
        """Return the held callbacks in the order they go out, some twice."""
        out = list(pending) + [item for item in pending if self._rng.random() < self.duplicates]
        if self.shuffle:
            self._rng.shuffle(out)
        return out


@dataclass
class _Pending:
    """A held fire-and-forget callback."""

    root: str
    started: datetime
    url: str
    method: str
    params: dict[str, str]
    token: str


class Sender:
    """The stand-in's one HTTP client for webhooks."""

    def __init__(
        self, auth_token: Callable[[], str], activity: Activity, clock: Callable[[], datetime], sids: Sids
    ) -> None:
        """Sign with the account's current auth token; time lines by the virtual clock."""
        self._auth_token = auth_token
        self._activity = activity
        self._clock = clock
        self._sids = sids
        self._session: aiohttp.ClientSession | None = None
        self.sent: list[Sent] = []
        self.delivery = Delivery()
        self._held: list[_Pending] = []

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()

    def _client(self) -> aiohttp.ClientSession:
        """Open the session on first use (inside the running loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS))
        return self._session

    async def fetch(self, root: str, started: datetime, url: str, method: str, params: dict[str, str]) -> str:
        """Request TwiML; return the document, or raise FetchError as Twilio's debugger would name it."""
        status, content_type, body = await self._send(root, started, url, method, params, self._sids.token())
        if status == 0:
            raise FetchError(11205, f"HTTP connection failure: {url}")
        if status >= 400:
            raise FetchError(11200, f"HTTP retrieval failure: {url} answered {status}")
        if content_type in AUDIO_TYPES:
            return f"<Response><Play>{url}</Play></Response>"  # Twilio docs: <Enqueue>, waitUrl may be MP3 or WAV
        if content_type not in TWIML_TYPES:
            raise FetchError(12300, f"Invalid Content-Type {content_type!r} from {url}")
        return body

    async def notify(self, root: str, started: datetime, url: str, method: str, params: dict[str, str]) -> None:
        """Send a callback whose answer Twilio ignores: now, or held for a shuffled delivery."""
        token = self._sids.token()
        if self.delivery.held:
            self._held.append(_Pending(root, started, url, method, params, token))
            return
        await self._send(root, started, url, method, params, token)

    def release(self, send: Callable[[Coroutine[Any, Any, Any]], object]) -> bool:
        """Send every held callback in the delivery's order (through `send`); tell whether there were any."""
        held, self._held = self._held, []
        for item in self.delivery.order(held):
            send(self._send(item.root, item.started, item.url, item.method, item.params, item.token))
        return bool(held)

    async def _send(
        self, root: str, started: datetime, url: str, method: str, params: dict[str, str], token: str
    ) -> tuple[int, str, str]:
        """Sign and send one request (one retry on a connection failure, as Twilio's default `rc=1`)."""
        target = url.split("#", 1)[0]  # Twilio docs: "Webhooks connection overrides" ride in the fragment
        if method == "GET":
            joiner = "&" if urlsplit(target).query else "?"
            target = target + joiner + urlencode(params)
            signed: dict[str, str] = {}
        else:
            signed = params
        headers = {
            # Twilio docs: Webhooks security. HMAC-SHA1 of the exact URL and the sorted POST parameters.
            "X-Twilio-Signature": RequestValidator(self._auth_token()).compute_signature(target, signed),
            "I-Twilio-Idempotency-Token": token,
            "User-Agent": "TwilioProxy/1.1",
        }
        self.sent.append(
            Sent(
                root, (self._clock() - started).total_seconds(), target, method, dict(params), headers, 0, self._clock()
            )
        )
        index = len(self.sent) - 1
        for attempt in range(2):
            try:
                if method == "GET":
                    request = self._client().get(target, headers=headers)
                else:
                    request = self._client().post(target, data=params, headers=headers)
                async with request as response:
                    body = await response.text()
                    sent = self.sent[index]
                    self.sent[index] = replace(sent, status=response.status)
                    return response.status, response.content_type, body
            except (aiohttp.ClientConnectionError, TimeoutError):
                if attempt:
                    return 0, "", ""
        return 0, "", ""  # pragma: no cover - the loop always returns

    def lines(self, root: str) -> list[str]:
        """Return one call's webhooks as recording lines, in the order they were sent."""
        return [sent.line() for sent in self.sent if sent.root == root]

    def write(self, path: Path, root: str) -> Path:
        """Write one call's webhooks as a recording file (one JSON object a line)."""
        path.write_text("".join(line + "\n" for line in self.lines(root)), encoding="utf-8")
        return path

    def write_together(self, path: Path, roots: Sequence[str], origin: datetime) -> Path:
        """Write several calls' and rooms' webhooks as one recording file, in the order sent, timed from `origin`."""
        chosen = [sent for sent in self.sent if sent.root in roots and sent.moment is not None]
        lines = [replace(sent, at=((sent.moment or origin) - origin).total_seconds()).line() for sent in chosen]
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return path
