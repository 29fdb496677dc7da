"""The HTTP server: log, fault, authenticate and rate-limit each `/api` request; the /sandbox control endpoints."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from bridge.devtools.sandbox import faults
from bridge.devtools.sandbox.access import set_rate_headers, too_many_requests
from bridge.devtools.sandbox.account import SANDBOX, Sandbox
from bridge.devtools.sandbox.config import SandboxConfig
from bridge.devtools.sandbox.errors import SandboxError
from bridge.devtools.sandbox.routes import API_ROUTES, download_attachment, json_body, json_reply, unknown_endpoint

_log = logging.getLogger(__name__)


def _log_body(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _unsupported_media(request: web.Request) -> bool:
    # Uploads are the one exception: their body is the file itself (Zendesk docs: Attachments, "Upload Files").
    if request.path.startswith("/api/v2/uploads"):
        return False
    return request.method in ("POST", "PUT", "PATCH") and request.content_type != "application/json"


async def _serve(request: web.Request, handler: Handler, sandbox: Sandbox) -> web.StreamResponse:
    response: web.StreamResponse
    if not sandbox.access.authenticate(request.headers.get(hdrs.AUTHORIZATION)):
        response = json_reply({"error": "Couldn't authenticate you"}, 401)
    elif (retry_after := sandbox.access.consume_rate_limit()) is not None:
        response = too_many_requests(retry_after)
    elif _unsupported_media(request):
        response = json_reply({"error": "UnsupportedMediaType", "description": "Send a JSON body"}, 415)
    else:
        try:
            response = await handler(request)
        except SandboxError as exc:
            response = json_reply(exc.payload, exc.status)
    set_rate_headers(response, sandbox.access)
    return response


async def _late(request: web.Request, handler: Handler, sandbox: Sandbox, entry: dict[str, Any]) -> web.StreamResponse:
    await asyncio.sleep(sandbox.config.late_commit_seconds)
    response = await _serve(request, handler, sandbox)
    entry["status"] = response.status
    return response


@web.middleware
async def _sandbox_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log, fault, authenticate and rate-limit `/api` requests; map SandboxError to JSON everywhere."""
    if not request.path.startswith("/api/"):
        try:
            return await handler(request)
        except SandboxError as exc:
            return json_reply(exc.payload, exc.status)

    sandbox = request.app[SANDBOX]
    raw = await request.read()
    entry = sandbox.record_request(request.method, request.path, dict(request.query), _log_body(raw))
    if sandbox.config.latency_seconds > 0:
        await asyncio.sleep(sandbox.config.latency_seconds)
    fault = sandbox.faults.next_fault(request.method, request.path)
    if fault is None:
        response = await _serve(request, handler, sandbox)
        entry["status"] = response.status
        return response

    _log.debug("sandbox fault %s on %s %s", fault.kind, request.method, request.path)
    entry["fault"] = fault.kind
    if fault.kind == "drop_after":
        # The request really happens (a ticket may be created); only the answer is lost.
        await _serve(request, handler, sandbox)
        return faults.drop(request)
    if fault.kind == "drop":
        return faults.drop(request)
    if fault.kind == "hang":
        return await faults.hang(request, sandbox.faults)
    if fault.kind == "late" and request.method == "GET":
        # A slow read: it sees the state at arrival, and its answer comes late (maybe after a write).
        response = await _serve(request, handler, sandbox)
        entry["status"] = response.status
        await asyncio.sleep(sandbox.config.late_commit_seconds)
        return response
    if fault.kind == "late":
        # Zendesk is still working on it when the client gives up: the write commits later, then answers.
        # Shielded, because the client hanging up must not stop a write the server already accepted.
        task = asyncio.ensure_future(_late(request, handler, sandbox, entry))
        sandbox.faults.background.add(task)
        task.add_done_callback(sandbox.faults.background.discard)
        return await asyncio.shield(task)
    response = faults.error_response(fault)
    set_rate_headers(response, sandbox.access)
    entry["status"] = response.status
    return response


# -- control endpoints: /sandbox/... (never faulted, no credentials) ------------------------------


async def _control_state(request: web.Request) -> web.Response:
    return json_reply(request.app[SANDBOX].snapshot())


async def _control_reset(request: web.Request) -> web.Response:
    request.app[SANDBOX].reset()
    return json_reply({"reset": True})


async def _control_set_faults(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    body = await json_body(request)
    try:
        raw_rules = body.get("rules") or []
        if not isinstance(raw_rules, list):
            raise TypeError("rules must be a list")
        rules = [faults.rule_from_json(raw) for raw in raw_rules]
        settings = body.get("random")
        if settings is not None:
            if not isinstance(settings, dict):
                raise TypeError("random must be an object")
            rate = float(settings["rate"])
            kinds = [str(kind) for kind in settings["kinds"]]
            seed = int(settings.get("seed", 0))
            faults.check_random(rate, kinds)  # before add, so a bad request applies nothing
    except (KeyError, TypeError, ValueError) as exc:
        raise SandboxError(400, {"error": "InvalidFault", "description": str(exc)}) from exc
    sandbox.faults.add(rules)
    if settings is not None:
        sandbox.faults.set_random(rate, kinds, seed)
    return json_reply(sandbox.faults.state())


async def _control_clear_faults(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    sandbox.faults.clear()
    return json_reply(sandbox.faults.state())


async def _release_hangs_on_shutdown(app: web.Application) -> None:
    # aiohttp's graceful shutdown waits for in-flight handlers; a hang fault would stall it for a minute.
    app[SANDBOX].faults.release_hangs()


def create_sandbox_app(config: SandboxConfig | None = None) -> web.Application:
    """Build an aiohttp app serving one fresh Sandbox, reachable as `app[SANDBOX]`."""
    app = web.Application(middlewares=[_sandbox_middleware], client_max_size=64 * 1024 * 1024)  # uploads
    app[SANDBOX] = Sandbox(config)
    for method, path, handler in API_ROUTES:
        # Zendesk serves every endpoint both with and without the .json suffix.
        for suffix in ("", ".json"):
            app.router.add_route(method, path + suffix, handler)
    app.router.add_route("*", "/api/{tail:.*}", unknown_endpoint)
    app.router.add_get("/attachments/token/{token}/", download_attachment)
    app.router.add_get("/sandbox/state", _control_state)
    app.router.add_post("/sandbox/reset", _control_reset)
    app.router.add_post("/sandbox/faults", _control_set_faults)
    app.router.add_delete("/sandbox/faults", _control_clear_faults)
    app.on_shutdown.append(_release_hangs_on_shutdown)
    return app
