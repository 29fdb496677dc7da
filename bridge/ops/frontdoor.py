"""What every request goes through around its route: the body's deadline, errors as JSON, rejections counted.

A route sees only a request whose body arrived whole within BODY_TIMEOUT_SECONDS and the size limit.
Whatever it raises leaves as a JSON error: a 4xx naming what the client got wrong, 503 while the database
cannot be reached, 500 (its traceback in the log) for a fault of the bridge's own. Nothing a client sends
puts a traceback in the log, and a client that goes away mid-request is a debug line.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

import asyncpg
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware

from bridge.ops.clients import ClientAddresses
from bridge.ops.rejections import GONE, UNPARSED, Rejections

log = logging.getLogger("bridge.app")

REASON = web.RequestKey("rejection_reason", str)  # what a route's own refusal said, for the log line
SERVER = "twilio-zendesk-bridge"  # the Server header: the product, never aiohttp's or Python's version
_KEPT_HEADERS = (hdrs.ALLOW, hdrs.WWW_AUTHENTICATE, hdrs.RETRY_AFTER)
_LONGEST_PATH = 200
# The database (or the network under it) cannot be reached or cannot write just now (a lost connection, a
# full or locked disk): the same request may succeed later, so 503, which Twilio may retry (Twilio docs:
# Webhooks (HTTP callbacks): Connection Overrides, `rp`), and no traceback: the line names the failure.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    sqlite3.OperationalError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.OperatorInterventionError,
)


class BadField(web.HTTPBadRequest):
    """A request whose field is missing or malformed (400 naming the field)."""

    def __init__(self, field: str, problem: str) -> None:
        """Name the field at fault."""
        super().__init__(reason=f"{problem}: {field}")
        self.field = field
        self.problem = problem


def path_of(request: web.BaseRequest) -> str:
    """Return the request's path as it came (still percent-encoded), without its query: it may carry a signature."""
    path = request.raw_path.partition("?")[0]
    return path if len(path) <= _LONGEST_PATH else path[:_LONGEST_PATH] + "…"


def route_of(request: web.Request) -> str:
    """Name the route that matched by its pattern (a bounded label), or `unmatched`."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def json_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """Answer an HTTP error with its JSON body: `{"error": …}`, and `"field"` where a field is at fault."""
    body: dict[str, Any] = {"error": exc.reason}
    if isinstance(exc, BadField):
        body = {"error": exc.problem, "field": exc.field}
    request[REASON] = exc.reason
    headers = {name: exc.headers[name] for name in _KEPT_HEADERS if name in exc.headers}
    return web.json_response(body, status=exc.status, headers=headers or None)


def front_door(rejections: Rejections, clients: ClientAddresses, *, body_timeout: float, max_body: int) -> Middleware:
    """Return the root app's middleware: read the body within its deadline, run the route, answer errors."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Read the body within its deadline, run the route, answer errors as JSON, count every rejection."""
        try:
            if await _arrived(request, body_timeout, max_body):
                response = await handler(request)
            else:
                response = await _close_late(request, f"request body not complete within {body_timeout:g} s")
        except _Gone as gone:
            rejections.rejected(route_of(request), GONE, f"{request.method} {path_of(request)}: {gone}")
            return web.Response(status=400)  # nobody is left to read it
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = json_error(request, exc)
        except UNAVAILABLE as exc:
            log.error("%s %s: temporarily unavailable, the database or the network failed (%s: %s)",
                      request.method, path_of(request), type(exc).__name__, exc)  # fmt: skip
            response = web.json_response(
                {"error": "temporarily unavailable"}, status=503, headers={hdrs.RETRY_AFTER: "5"}
            )
        except Exception:
            log.exception("unhandled error on %s %s", request.method, path_of(request))
            response = web.json_response({"error": "internal error"}, status=500)
        if 400 <= response.status < 500:
            reason = request.get(REASON) or response.reason
            what = f"{request.method} {path_of(request)} from {clients.of(request)}: {response.status} {reason}"
            rejections.rejected(route_of(request), response.status, what)
        return response

    return middleware


class _Gone(Exception):
    """The client went away before its request body was complete."""


async def _arrived(request: web.Request, seconds: float, max_body: int) -> bool:
    """Read the whole body within `seconds` (routes then read it from memory); False when it came too late."""
    if not request.body_exists:
        return True
    if request.content_length is not None and request.content_length > max_body:
        raise web.HTTPRequestEntityTooLarge(max_size=max_body, actual_size=request.content_length)
    try:
        async with asyncio.timeout(seconds):
            await request.read()  # past the app's client_max_size (a chunked body), a 413
    except TimeoutError:
        return False
    except (ConnectionError, HttpProcessingError, web.RequestPayloadError) as exc:
        # RequestPayloadError: aiohttp's wrapper of a body it could not decode (chunks, compression).
        if request.transport is None or request.transport.is_closing():
            raise _Gone(f"the client went away mid-body ({type(exc).__name__})") from None
        raise web.HTTPBadRequest(reason=f"malformed request body ({type(exc).__name__})") from None
    return True


async def _close_late(request: web.Request, reason: str) -> web.StreamResponse:
    """Answer 408 and close the connection: a body not complete within its deadline is given no more time."""
    request[REASON] = reason
    response = web.json_response({"error": reason}, status=408)
    response.force_close()
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        pass  # gone already: closing is all that is left
    if request.transport is not None:
        request.transport.close()
    return response


async def name_the_server(request: web.Request, response: web.StreamResponse) -> None:
    """Name the product in the Server header, not the aiohttp and Python versions (on_response_prepare)."""
    response.headers[hdrs.SERVER] = SERVER


class ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server log (handler_args `logger`): a request its parser refused is a rejection, not an error.

    aiohttp answers such a request 400 itself and logs it with a traceback at ERROR; here it is counted and
    logged like every other rejection. Its debug lines never carry a traceback: what they hold came from the client.
    """

    def __init__(self, rejections: Rejections) -> None:
        """Count rejections into `rejections`."""
        super().__init__(logging.getLogger("bridge.http"), {})
        self._rejections = rejections

    def exception(
        self,
        msg: object,
        *args: object,
        exc_info: Any = True,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **kwargs: object,
    ) -> None:
        """Count a parser's refusal as a rejection; log anything else as aiohttp would."""
        if isinstance(exc_info, web.RequestPayloadError):
            # Reading what was left of a body the front door already refused as malformed: nothing new.
            super().debug("%s: %s", msg, exc_info)
            return
        if isinstance(exc_info, HttpProcessingError):
            first = str(exc_info.message).strip().splitlines()[0] if exc_info.message else ""
            peer = args[0] if args else "?"
            what = f"a request from {peer} that could not be parsed: {type(exc_info).__name__} {first}"
            self._rejections.rejected(UNPARSED, exc_info.code, what)
            return
        super().exception(msg, *args, exc_info=exc_info, stack_info=stack_info, stacklevel=stacklevel, extra=extra)

    def debug(
        self,
        msg: object,
        *args: object,
        exc_info: Any = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **kwargs: object,
    ) -> None:
        """Log a debug line without the traceback aiohttp attaches."""
        super().debug(msg, *args, stacklevel=stacklevel, extra=extra)
