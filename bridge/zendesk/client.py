"""Async Zendesk client over one injected aiohttp ClientSession, with errors typed by meaning."""

from __future__ import annotations

import base64
import email.utils
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp.client_middlewares import ClientHandlerType

from bridge.core.clock import Clock, system_clock


class ZendeskError(Exception):
    """A Zendesk request failed; `status` is 0 when no HTTP answer came back."""

    def __init__(self, message: str, *, status: int = 0, body: str = "") -> None:
        """Keep the status and (truncated) body for logs and dead letters."""
        super().__init__(message)
        self.status = status
        self.body = body[:2000]


class RateLimited(ZendeskError):
    """429: wait `retry_after` seconds before the next request."""

    def __init__(self, message: str, *, retry_after: float, body: str = "") -> None:
        """Keep how long Zendesk asked us to wait."""
        super().__init__(message, status=429, body=body)
        self.retry_after = retry_after


class NotFound(ZendeskError):
    """404: the user, ticket or agent does not exist (deleted, merged, or a wrong id)."""


class Invalid(ZendeskError):
    """400/422: Zendesk refused the request as it stands; repeating it will not help."""


class AuthFailed(ZendeskError):
    """401/403: the credentials are wrong or lack a permission (API token access, TPE licence)."""


class ServerBroken(ZendeskError):
    """5xx: Zendesk failed; a write may or may not have happened."""


class Unreachable(ZendeskError):
    """No answer (timeout, refused or dropped connection); a write may or may not have happened."""


class UncertainWrite(aiohttp.ClientError):
    """The connection dropped after the request went out; it may have taken effect."""


async def no_silent_resend(request: aiohttp.ClientRequest, handler: ClientHandlerType) -> aiohttp.ClientResponse:
    """Surface a dropped connection instead of letting aiohttp resend the request by itself.

    aiohttp resends "idempotent" methods (PUT included) once when the server disconnects, but a
    Zendesk PUT that adds a voice comment is not idempotent: resent blindly, it adds a second one.
    """
    try:
        return await handler(request)
    except aiohttp.ClientConnectorError:
        raise  # no connection was made, so nothing was sent: not uncertain
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise UncertainWrite(f"{type(exc).__name__}: {exc}") from exc


def parse_retry_after(value: str | None, *, now: datetime, default: float = 60.0) -> float:
    """Read Retry-After as seconds, or as an HTTP date counted from `now` (RFC 9110 allows both)."""
    if not value:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:  # "-0000" means UTC with no claim about local time (RFC 5322)
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def basic_auth(email_address: str, api_token: str) -> str:
    """Build the Authorization header of Zendesk API-token auth (`{email}/token:{token}`)."""
    raw = f"{email_address}/token:{api_token}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class ZendeskClient:
    """The Zendesk endpoints the bridge calls, each returning parsed JSON or raising a ZendeskError."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        authorization: str,
        *,
        timeout: float = 15.0,
        on_answer: Callable[[int], None] = lambda status: None,
        on_headers: Callable[[int, Mapping[str, str]], None] = lambda status, headers: None,
        clock: Clock = system_clock,
    ) -> None:
        """Bind to a base URL (`https://acme.zendesk.com` or the sandbox) and an Authorization header."""
        self._on_answer = on_answer
        self._on_headers = on_headers  # every answer's status and headers, for the outbox's rate limiter
        self._clock = clock
        self._session = session
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": authorization, "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def request(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, params: dict[str, str] | None = None
    ) -> Any:
        """Send one request and return its JSON, raising the ZendeskError that matches the answer."""
        url = self._base + path
        try:
            async with self._session.request(
                method,
                url,
                json=body,
                params=params,
                headers=self._headers,
                timeout=self._timeout,
                middlewares=(no_silent_resend,),
            ) as response:
                text = await response.text()
                status = response.status
                retry_after = response.headers.get("Retry-After")
                self._on_headers(status, response.headers)
        except TimeoutError as exc:
            self._on_answer(0)
            raise Unreachable(f"{method} {path}: timed out") from exc
        except aiohttp.ClientError as exc:
            self._on_answer(0)
            raise Unreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        self._on_answer(status)
        if 200 <= status < 300:
            return json.loads(text) if text.strip() else {}
        message = f"{method} {path}: HTTP {status}"
        if status == 429:
            # Zendesk's 429 body is often text/plain, so only the header is trusted.
            raise RateLimited(message, retry_after=parse_retry_after(retry_after, now=self._clock()), body=text)
        if status == 404:
            raise NotFound(message, status=status, body=text)
        if status in (401, 403):
            raise AuthFailed(message, status=status, body=text)
        if status in (400, 409, 422):
            raise Invalid(message, status=status, body=text)
        if status >= 500:
            raise ServerBroken(message, status=status, body=text)
        raise Invalid(message, status=status, body=text)

    async def me(self) -> dict[str, Any]:
        """Return the user the credentials act as."""
        data = await self.request("GET", "/api/v2/users/me.json")
        return dict(data["user"])

    async def search_users_by_phone(self, digits: str) -> list[dict[str, Any]]:
        """Search end-users by phone, `*` first so other stored formats of the number match too."""
        data = await self.request("GET", "/api/v2/search.json", params={"query": f"role:end-user phone:*{digits}"})
        return [dict(item) for item in data.get("results", []) if item.get("result_type", "user") == "user"]

    async def create_user(self, name: str, phone: str, external_id: str) -> dict[str, Any]:
        """Create an end-user for a caller, tagged with an external_id that finds it again at once."""
        body = {"user": {"name": name, "phone": phone, "external_id": external_id}}
        data = await self.request("POST", "/api/v2/users.json", body=body)
        return dict(data["user"])

    async def users_by_external_id(self, external_id: str) -> list[dict[str, Any]]:
        """Look users up by external_id: exact and immediate, unlike the search index."""
        data = await self.request("GET", "/api/v2/users/search.json", params={"external_id": external_id})
        return [dict(item) for item in data.get("users", [])]

    async def create_voice_ticket(self, ticket: dict[str, Any], display_to_agent: int | None) -> dict[str, Any]:
        """Create a TPE voice ticket (via 44/45/46), optionally popping it to an agent."""
        body: dict[str, Any] = {"ticket": ticket}
        if display_to_agent is not None:
            body["display_to_agent"] = display_to_agent
        data = await self.request("POST", "/api/v2/channels/voice/tickets.json", body=body)
        return dict(data["ticket"])

    async def update_ticket(self, ticket_id: int, ticket: dict[str, Any]) -> dict[str, Any]:
        """Update a ticket (voice comment, private note)."""
        data = await self.request("PUT", f"/api/v2/tickets/{ticket_id}.json", body={"ticket": ticket})
        return dict(data["ticket"])

    async def tickets_by_external_id(self, external_id: str) -> list[dict[str, Any]]:
        """Find tickets carrying an external_id (the CallSid), to avoid creating one twice."""
        data = await self.request("GET", "/api/v2/tickets.json", params={"external_id": external_id})
        return [dict(item) for item in data.get("tickets", [])]

    async def ticket_comments(self, ticket_id: int) -> list[dict[str, Any]]:
        """Return a ticket's comments (first page, oldest first), to check what an earlier attempt added."""
        data = await self.request("GET", f"/api/v2/tickets/{ticket_id}/comments.json")
        return [dict(item) for item in data.get("comments", [])]

    async def display_user(self, agent_id: int, user_id: int) -> None:
        """Pop a user's profile in the agent's browser."""
        await self.request("POST", f"/api/v2/channels/voice/agents/{agent_id}/users/{user_id}/display.json")

    async def display_ticket(self, agent_id: int, ticket_id: int) -> None:
        """Pop a ticket in the agent's browser."""
        await self.request("POST", f"/api/v2/channels/voice/agents/{agent_id}/tickets/{ticket_id}/display.json")

    async def user(self, user_id: int) -> dict[str, Any]:
        """Return one user."""
        data = await self.request("GET", f"/api/v2/users/{quote(str(user_id))}.json")
        return dict(data["user"])

    async def delete_upload(self, token: str) -> None:
        """Delete an upload that no comment uses (Zendesk docs, "Ticket Attachments": Delete Upload)."""
        await self.request("DELETE", f"/api/v2/uploads/{quote(token)}.json")

    async def upload(self, filename: str, data: Any, *, content_type: str, length: int | None) -> dict[str, Any]:
        """Upload a file, streamed from `data`, and return Zendesk's `upload` (its token and attachment).

        Zendesk docs, "Ticket Attachments": POST /api/v2/uploads?filename=…, the raw bytes as the body; the
        token must then be put in a comment's `uploads`, or Zendesk deletes the file when it expires.
        """
        path = "/api/v2/uploads.json"
        headers = {**self._headers, "Content-Type": content_type}
        if length is not None:
            headers["Content-Length"] = str(length)  # a known length, so the body is not sent chunked
        # A recording takes longer to send than a JSON body: bound the wait for each read, not the whole.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout.total, sock_read=self._timeout.total)
        try:
            async with self._session.post(
                self._base + path, params={"filename": filename}, data=data, headers=headers, timeout=timeout
            ) as response:
                text = await response.text()
                status = response.status
                retry_after = response.headers.get("Retry-After")
                self._on_headers(status, response.headers)
        except TimeoutError as exc:
            self._on_answer(0)
            raise Unreachable(f"POST {path}: timed out") from exc
        except aiohttp.ClientError as exc:
            self._on_answer(0)
            raise Unreachable(f"POST {path}: {type(exc).__name__}: {exc}") from exc
        self._on_answer(status)
        if 200 <= status < 300:
            return dict(json.loads(text)["upload"])
        message = f"POST {path}: HTTP {status}"
        if status == 429:
            raise RateLimited(message, retry_after=parse_retry_after(retry_after, now=self._clock()), body=text)
        if status in (401, 403):
            raise AuthFailed(message, status=status, body=text)
        if status >= 500:
            raise ServerBroken(message, status=status, body=text)
        raise Invalid(message, status=status, body=text)
