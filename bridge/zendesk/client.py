"""Async Zendesk client over one injected aiohttp ClientSession, with errors typed by meaning."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
from aiohttp.client_middlewares import ClientHandlerType

from bridge.core.clock import Clock, system_clock
from bridge.core.phones import mask_text

log = logging.getLogger("bridge.zendesk")

READ_RETRY_PAUSES = (0.1, 0.5)  # seconds before each repeat of a failed read
MAX_READ_RETRY_WAIT = 2.0  # a read Zendesk asks us to hold off longer goes back to the outbox's retry


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

    @property
    def details(self) -> dict[str, list[str]]:
        """Return the fields at fault and Zendesk's descriptions (`details` of a RecordInvalid body)."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        raw = data.get("details") if isinstance(data, dict) else None
        if not isinstance(raw, dict):
            return {}
        return {
            str(name): [str(item.get("description", "")) if isinstance(item, dict) else str(item) for item in items]
            for name, items in raw.items()
            if isinstance(items, list)
        }

    @property
    def closed_ticket(self) -> bool:
        """Tell whether Zendesk refused an update because the ticket is closed (merged or archived)."""
        return any("closed prevents ticket update" in text for text in self.details.get("status", []))


class FieldsDropped(Invalid):
    """Zendesk answered 2xx but removed keys we need (X-Zendesk-API-Warn): that part did not happen."""


class Conflict(ZendeskError):
    """409 DatabaseConflict: somebody saved the record at the same moment; nothing was written, try again."""


class AuthFailed(ZendeskError):
    """401/403: the credentials are wrong or lack a permission (API token access, TPE licence)."""


class ServerBroken(ZendeskError):
    """5xx: Zendesk failed; a write may or may not have happened (if it did, it had already committed)."""

    uncertain = False


class Unreachable(ZendeskError):
    """No answer (timeout, refused or dropped connection); a write may or may not have happened."""

    def __init__(self, message: str, *, uncertain: bool = True) -> None:
        """Say whether the request may have reached Zendesk (a refused connection sent nothing)."""
        super().__init__(message)
        self.uncertain = uncertain


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
        before_send: Callable[[], Awaitable[None]] | None = None,
        clock: Clock = system_clock,
    ) -> None:
        """Bind to a base URL (`https://acme.zendesk.com` or the sandbox) and an Authorization header."""
        self._on_answer = on_answer
        self._on_headers = on_headers  # every answer's status and headers, for the outbox's rate limiter
        self._before_send = before_send  # awaited before each request goes out: the rate limiter's token
        self._clock = clock
        self._session = session
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": authorization, "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._me: int | None = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        required: tuple[str, ...] = (),
    ) -> Any:
        """Send one request and return its JSON, raising the ZendeskError that matches the answer.

        `required` names body keys that must not be dropped: Zendesk answers 2xx even when it removed a key
        it does not accept, and says so only in X-Zendesk-API-Warn.
        """
        if method != "GET":
            return await self._send(method, path, body, params, required)
        # A read is safe to repeat. A delivery may need several (the look-ups before a create), and one
        # failed read would cost the whole attempt and a growing backoff, so a brief hiccup is retried here.
        for pause in READ_RETRY_PAUSES:
            try:
                return await self._send(method, path, body, params, required)
            except RateLimited as exc:
                if exc.retry_after > MAX_READ_RETRY_WAIT:
                    raise
                await asyncio.sleep(max(pause, exc.retry_after))
            except (ServerBroken, Conflict):
                await asyncio.sleep(pause)
        return await self._send(method, path, body, params, required)

    async def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
        required: tuple[str, ...],
    ) -> Any:
        """Send one request once."""
        url = self._base + path
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = {}  # Zendesk expects a JSON content type on writes, even without a payload
        if self._before_send is not None:
            await self._before_send()
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
                warning = response.headers.get("X-Zendesk-API-Warn")
                self._on_headers(status, response.headers)
        except TimeoutError as exc:
            self._on_answer(0)
            raise Unreachable(f"{method} {path}: timed out", uncertain=method != "GET") from exc
        except aiohttp.ClientConnectorError as exc:
            self._on_answer(0)
            raise Unreachable(f"{method} {path}: {type(exc).__name__}: {exc}", uncertain=False) from exc
        except aiohttp.ClientError as exc:
            self._on_answer(0)
            # A read that went unanswered changed nothing; only a write may still be committing.
            raise Unreachable(f"{method} {path}: {type(exc).__name__}: {exc}", uncertain=method != "GET") from exc
        self._on_answer(status)
        if warning:
            log.warning("zendesk: %s %s: X-Zendesk-API-Warn: %s", method, path, mask_text(warning))
        if 200 <= status < 300:
            lost = [key for key in required if warning and f'"{key}"' in warning]
            if lost:
                message = f"{method} {path}: Zendesk dropped {lost}: {warning}"
                raise FieldsDropped(message, status=status, body=text)
            return json.loads(text) if text.strip() else {}
        message = f"{method} {path}: HTTP {status}"
        if status == 429:
            # Zendesk's 429 body is often text/plain, so only the header is trusted.
            raise RateLimited(message, retry_after=parse_retry_after(retry_after, now=self._clock()), body=text)
        if status == 404:
            raise NotFound(message, status=status, body=text)
        if status in (401, 403):
            raise AuthFailed(message, status=status, body=text)
        if status == 409:
            raise Conflict(message, status=status, body=text)
        if status in (400, 422):
            raise Invalid(message, status=status, body=text)
        if status >= 500:
            raise ServerBroken(message, status=status, body=text)
        raise Invalid(message, status=status, body=text)

    async def me(self) -> dict[str, Any]:
        """Return the user the credentials act as."""
        data = await self.request("GET", "/api/v2/users/me.json")
        return dict(data["user"])

    async def my_id(self) -> int:
        """Return the id of the user the credentials act as, asking Zendesk once."""
        if self._me is None:
            self._me = int((await self.me())["id"])
        return self._me

    async def user_phones(self, user_id: int) -> list[str]:
        """Return a user's phone identities (the primary phone and the extra ones)."""
        data = await self.request("GET", f"/api/v2/users/{user_id}/identities.json")
        return [str(i["value"]) for i in data.get("identities", []) if i.get("type") == "phone_number"]

    async def user_tickets(self, user_id: int, relation: Literal["requested", "assigned"]) -> list[dict[str, Any]]:
        """Return a user's requested or assigned tickets, newest first: exact, immediate, allowed for agents."""
        params = {"sort_by": "created_at", "sort_order": "desc"}
        data = await self.request("GET", f"/api/v2/users/{user_id}/tickets/{relation}.json", params=params)
        return [dict(item) for item in data.get("tickets", [])]

    async def search_tickets_by_external_id(self, external_id: str) -> list[dict[str, Any]]:
        """Search tickets by external_id (allowed for agents, but lagging writes by up to minutes)."""
        data = await self.request(
            "GET", "/api/v2/search.json", params={"query": f"type:ticket external_id:{external_id}"}
        )
        return [dict(item) for item in data.get("results", []) if item.get("result_type") == "ticket"]

    async def group(self, group_id: int) -> dict[str, Any]:
        """Return one group."""
        data = await self.request("GET", f"/api/v2/groups/{group_id}.json")
        return dict(data["group"])

    async def brand(self, brand_id: int) -> dict[str, Any]:
        """Return one brand."""
        data = await self.request("GET", f"/api/v2/brands/{brand_id}.json")
        return dict(data["brand"])

    async def schedule(self, schedule_id: int) -> dict[str, Any]:
        """Return one business-hours schedule (Zendesk docs, Schedules, "Show Schedule": allowed for agents)."""
        data = await self.request("GET", f"/api/v2/business_hours/schedules/{schedule_id}.json")
        return dict(data["schedule"])

    async def schedule_holidays(self, schedule_id: int, start_date: str) -> list[dict[str, Any]]:
        """Return a schedule's holidays from `start_date` on, and any in progress then (admins only, per the docs)."""
        path = f"/api/v2/business_hours/schedules/{schedule_id}/holidays.json"
        data = await self.request("GET", path, params={"start_date": start_date})
        return [dict(item) for item in data.get("holidays", [])]

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
        # A dropped voice_comment raises FieldsDropped: never record a voicemail as delivered without it.
        data = await self.request("POST", "/api/v2/channels/voice/tickets.json", body=body, required=("voice_comment",))
        return dict(data["ticket"])

    async def update_ticket(self, ticket_id: int, ticket: dict[str, Any]) -> dict[str, Any]:
        """Update a ticket (voice comment, private note); a key Zendesk drops raises FieldsDropped."""
        data = await self.request(
            "PUT", f"/api/v2/tickets/{ticket_id}.json", body={"ticket": ticket}, required=tuple(ticket)
        )
        return dict(data["ticket"])

    async def ticket(self, ticket_id: int) -> dict[str, Any]:
        """Return one ticket (raises NotFound when there is none)."""
        data = await self.request("GET", f"/api/v2/tickets/{ticket_id}.json")
        return dict(data["ticket"])

    async def tickets_by_external_id(self, external_id: str) -> list[dict[str, Any]]:
        """Find tickets carrying an external_id with List Tickets: allowed for admins only (doctor's probe)."""
        data = await self.request("GET", "/api/v2/tickets.json", params={"external_id": external_id})
        return [dict(item) for item in data.get("tickets", [])]

    async def ticket_comments(self, ticket_id: int) -> list[dict[str, Any]]:
        """Return a ticket's comments (first page, oldest first), to check what an earlier attempt added."""
        data = await self.request("GET", f"/api/v2/tickets/{ticket_id}/comments.json")
        return [dict(item) for item in data.get("comments", [])]

    async def create_call(self, call: dict[str, Any], comment: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create a TPE call record; with a comment section, also its ticket (when no ticket_id) and voice comment."""
        body: dict[str, Any] = {"call": call}
        if comment is not None:
            body["comment"] = comment
        # A 201 made the record even when Zendesk dropped a field with only a warning (logged): treating it as a
        # failure would send the create again and, for a record without a ticket, make a second one.
        data = await self.request("POST", "/api/v2/calls.json", body=body)
        return dict(data["call"])

    async def update_call(self, call_id: int, call: dict[str, Any]) -> dict[str, Any]:
        """Update the fields given of a TPE call record (PATCH); a field Zendesk drops is only logged."""
        data = await self.request("PATCH", f"/api/v2/calls/{call_id}.json", body={"call": call})
        return dict(data["call"])

    async def call_record(self, call_id: int) -> dict[str, Any]:
        """Return one TPE call record (raises NotFound when there is none)."""
        data = await self.request("GET", f"/api/v2/calls/{call_id}.json")
        return dict(data["call"])

    async def add_call_comment(self, call_id: int, comment: dict[str, Any]) -> dict[str, Any]:
        """Add a TPE voice comment to the call's ticket (Zendesk makes one if the call has none); return it."""
        # The body is flat and the answer unwrapped (zenpy cassette TestCallPE.test_add_comment). Zendesk always
        # warns that it removed `comment` (its own wrapper), so only the keys we sent count as required.
        data = await self.request(
            "POST", f"/api/v2/calls/{call_id}/comments.json", body=comment, required=tuple(comment)
        )
        return dict(data)

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

    async def agent_availability(self, agent_id: int) -> dict[str, Any]:
        """Return an agent's availability, a JSON:API document (Zendesk docs, Agent Availability API: admins only)."""
        return dict(await self.request("GET", f"/api/v2/agent_availabilities/{agent_id}"))

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
        if self._before_send is not None:
            await self._before_send()
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
