"""The Twilio REST calls routing needs, over the bridge's one session for Twilio (Twilio docs: Call resource).

Errors are typed by what the caller should do: the call is gone (nothing to move), Twilio is busy or away
(try again), or the request itself is wrong (no retry helps: credentials, a refused parameter).
"""

from __future__ import annotations

from typing import Any

import aiohttp

TWILIO_API = "https://api.twilio.com"
# Twilio answers a Calls update of a call that is not in progress with 400 and code 21220 ("Call is not
# in-progress. Cannot redirect."), and an unknown CallSid with 404 and 20404 (Twilio docs: Errors 21220, 20404).
_GONE = frozenset({21220, 20404})
_TIMEOUT = aiohttp.ClientTimeout(total=10, sock_connect=5)


class TwilioError(Exception):
    """Twilio refused or failed a request."""

    def __init__(self, message: str, status: int = 0, code: int | None = None) -> None:
        """Keep Twilio's HTTP status and error code."""
        super().__init__(message)
        self.status = status
        self.code = code


class CallGone(TwilioError):
    """The call has ended (or never existed): there is nothing to move."""


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
        await self._post(f"Calls/{call_sid}.json", {"Url": url, "Method": "POST"})

    async def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        """POST a form to the account's resource and return the JSON answer, or raise a typed error."""
        url = f"{self._base}/2010-04-01/Accounts/{self.account_sid}/{path}"
        try:
            headers = {aiohttp.hdrs.AUTHORIZATION: self._authorization}
            async with self._session.post(url, data=form, headers=headers, timeout=_TIMEOUT) as response:
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
