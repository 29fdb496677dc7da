"""Twilio's REST API as the bridge calls it, over its one session for Twilio (Twilio docs: Call resource).

Routing redirects waiting callers (bridge.twilio.mover), reconciliation reads what became of a call
(bridge.ops.reconcile), and `bridge doctor` asks whether the credentials work and where the lines' numbers
send their calls; the recording media
(bridge.twilio.media) shares the session, api.twilio.com being one service.

Errors are typed by what the caller should do: the call is gone (nothing to move), Twilio is busy or away
(try again), or the request itself is wrong (no retry helps: credentials, a refused parameter).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

TWILIO_API = "https://api.twilio.com"
# Twilio answers a Calls update of a call that is not in progress with 400 and code 21220 ("Call is not
# in-progress. Cannot redirect."), and an unknown CallSid with 404 and 20404 (Twilio docs: Errors 21220, 20404).
_GONE = frozenset({21220, 20404})
_TIMEOUT = aiohttp.ClientTimeout(total=10, sock_connect=5)
_CALL_EVENTS = ("initiated", "ringing", "answered", "completed")  # Twilio docs: Call resource, StatusCallbackEvent


class TwilioError(Exception):
    """Twilio refused or failed a request."""

    def __init__(self, message: str, status: int = 0, code: int | None = None) -> None:
        """Keep Twilio's HTTP status and error code."""
        super().__init__(message)
        self.status = status
        self.code = code


class CallGone(TwilioError):
    """The call has ended, or Twilio has no such call (or resource: 404): there is nothing to move or read."""


class TwilioBusy(TwilioError):
    """Twilio is limiting (429, 20429), failing (5xx) or out of reach: try again; `sent` says it may have acted."""

    def __init__(self, message: str, status: int = 0, code: int | None = None, *, sent: bool = False) -> None:
        """Say whether the request may have reached Twilio."""
        super().__init__(message, status, code)
        self.sent = sent


class TwilioRefused(TwilioError):
    """Twilio refused the request itself (credentials, a parameter): retrying the same request cannot help."""


class TwilioApi:
    """Twilio's REST API for one account: Basic auth with the API key or the auth token."""

    def __init__(
        self, session: aiohttp.ClientSession, account_sid: str, auth: tuple[str, str], base: str | None
    ) -> None:
        """Bind the session (Twilio's own), the account, its credentials and where the API is."""
        self._session = session
        self.account_sid = account_sid
        self._authorization = aiohttp.encode_basic_auth(*auth)
        self._base = (base or TWILIO_API).rstrip("/")

    async def redirect(self, call_sid: str, url: str) -> None:
        """Make a live call fetch `url` for its next TwiML (Twilio docs: Call resource, update: Url, Method)."""
        await self._send("POST", self._url(f"/Calls/{call_sid}.json"), form={"Url": url, "Method": "POST"})

    async def delete(self, path: str) -> None:
        """DELETE a resource of the account (Twilio answers 204, no body)."""
        await self._send("DELETE", self._url(path))

    async def create_call(self, to: str, from_: str, url: str, status_callback: str, *, ring_seconds: int) -> str:
        """Place a call that fetches `url` once answered; return its sid (Twilio docs: Call resource, create).

        Twilio places REST-created calls at the account's calls-per-second rate and queues the rest: the bridge
        paces its own first (bridge.twilio.dialer), so this call is not kept waiting there.
        """
        form = {"To": to, "From": from_, "Url": url, "Method": "POST", "StatusCallback": status_callback,
                "StatusCallbackMethod": "POST", "Timeout": str(ring_seconds)}  # fmt: skip
        body = await self._send("POST", self._url("/Calls.json"), form=form, events=_CALL_EVENTS)
        sid = body.get("sid")
        if not isinstance(sid, str) or not sid:
            raise TwilioBusy("Twilio answered a call's create without its sid", sent=True)
        return sid

    async def call(self, call_sid: str) -> dict[str, Any]:
        """Return a call (Twilio docs: Call resource, fetch)."""
        return await self.get(f"/Calls/{call_sid}.json")

    async def legs(self, call_sid: str) -> list[dict[str, Any]]:
        """Return the calls a call dialed (Twilio docs: Call resource, read with ParentCallSid)."""
        return await self.every("/Calls.json", "calls", {"ParentCallSid": call_sid})

    async def recordings(self, call_sid: str) -> list[dict[str, Any]]:
        """Return a call's recordings (Twilio docs: Recording resource, read with CallSid)."""
        return await self.every("/Recordings.json", "recordings", {"CallSid": call_sid})

    async def numbers(self, phone_number: str) -> list[dict[str, Any]]:
        """Return the account's numbers that are `phone_number` (Twilio docs: IncomingPhoneNumber, read)."""
        return await self.every("/IncomingPhoneNumbers.json", "incoming_phone_numbers", {"PhoneNumber": phone_number})

    async def post(self, path: str, form: Mapping[str, str]) -> dict[str, Any]:
        """POST a form to a resource of the account (`path` after its URL: "/Calls/CA….json", …)."""
        return await self._send("POST", self._url(path), form=form)

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET a resource of the account (`path` after its URL: "" for the account itself, "/Calls.json", …)."""
        return await self._send("GET", self._url(path), params=params)

    async def every(self, path: str, key: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """Return every item of a list, page after page (Twilio docs: "Paging", next_page_uri)."""
        items: list[dict[str, Any]] = []
        page = await self.get(path, params)
        while True:
            items += [item for item in page.get(key) or [] if isinstance(item, dict)]
            following = page.get("next_page_uri")
            if not isinstance(following, str) or not following.startswith("/"):
                return items
            page = await self._send("GET", self._base + following)  # the URI carries the query

    def _url(self, path: str) -> str:
        """Return the URL of a resource of the account."""
        return f"{self._base}/2010-04-01/Accounts/{self.account_sid}{path or '.json'}"

    async def _send(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        events: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Send a request and return the JSON answer, or raise a typed error (`events`: StatusCallbackEvent's)."""
        data = [*(form or {}).items(), *(("StatusCallbackEvent", event) for event in events)] if form else None
        try:
            headers = {aiohttp.hdrs.AUTHORIZATION: self._authorization}
            async with self._session.request(
                method, url, data=data, params=params, headers=headers, timeout=_TIMEOUT
            ) as response:
                body = await _json(response)
                if response.status < 300:
                    return body
                raise _error(response.status, body)
        except aiohttp.ClientConnectorError as exc:
            raise TwilioBusy(f"Twilio is out of reach: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TwilioBusy(f"Twilio did not answer: {type(exc).__name__}", sent=True) from exc


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """Read a JSON object answer; anything else is an empty one."""
    try:
        body = await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return {}
    return body if isinstance(body, dict) else {}


def _error(status: int, body: dict[str, Any]) -> TwilioError:
    """Type an error answer by what to do about it (Twilio docs: "Twilio API responses", error JSON)."""
    code = body.get("code") if isinstance(body.get("code"), int) else None
    message = f"Twilio answered {status}" + (f" ({code}: {body.get('message')})" if code else "")
    if code in _GONE or status == 404:
        return CallGone(message, status, code)
    if status == 429 or status >= 500:
        return TwilioBusy(message, status, code, sent=status >= 500)
    return TwilioRefused(message, status, code)
