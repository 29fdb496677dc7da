"""create_app(settings) -> web.Application: its resources in the order they open (bridge.resources), its routes."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST

from bridge import resources
from bridge.appkeys import CLIENTS, CLOCK, DESK, INGEST, METRICS, ROUTES, SETTINGS, STORE
from bridge.core import presence
from bridge.core.clock import Clock, system_clock
from bridge.dispatch import Routes
from bridge.live import routes as live
from bridge.live.callbacks import QueuedCallbacks
from bridge.live.routes import LIVE
from bridge.ops.clients import ClientAddresses
from bridge.ops.connections import authorization, open_store
from bridge.ops.frontdoor import ServerLog, front_door, name_the_server
from bridge.ops.metrics import Metrics
from bridge.ops.recordings import ROUTE as RECORDING_ROUTE
from bridge.ops.rejections import Rejections
from bridge.ops.settings import Settings
from bridge.resources import RECORDING_PROXY, WORKER
from bridge.softphone import routes as softphone
from bridge.store import Store
from bridge.zendesk.limiter import Limiter
from bridge.zendesk.outbox import RetryPolicy
from webhooks import routes
from webhooks.routes import MAX_BODY

log = logging.getLogger("bridge.app")

# open_store and authorization live in bridge.ops.connections; named here too for older imports.
__all__ = ["authorization", "create_app", "open_store"]


def create_app(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    retry: RetryPolicy | None = None,
    limiter: Limiter | None = None,
    store: Callable[[Settings], Awaitable[Store]] = open_store,
) -> web.Application:
    """Build the bridge application; resources open when it starts and close when it stops.

    `store` opens the store from the settings (a test may wrap the real one to make it fail).
    """
    settings.check_serving()
    metrics = Metrics()
    rejections = Rejections(metrics.rejected)
    clients = ClientAddresses(settings.forwarded_allow_ips)
    door = front_door(rejections, clients, body_timeout=settings.body_timeout_seconds, max_body=MAX_BODY)
    # handler_args reach aiohttp's request handler whether run_app or an AppRunner serves the app.
    app = web.Application(client_max_size=MAX_BODY, middlewares=[door], handler_args={"logger": ServerLog(rejections)})
    app.on_response_prepare.append(name_the_server)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[METRICS] = metrics
    app[CLIENTS] = clients
    app[ROUTES] = Routes(settings.routing_policy(), dict(settings.agents))
    # Each opens in this order when the app starts, using those before it, and closes in the reverse order.
    app.cleanup_ctx.extend(
        [
            resources.capture,
            resources.store(store),
            resources.zendesk_session,
            resources.twilio_session,
            resources.recordings,
            resources.worker(retry, limiter),
            resources.desk,
            resources.mover,
            resources.room_control,
            resources.held_watch,
            resources.availability,
            resources.schedules,
            resources.reconciler,
        ]
    )
    routes.setup(app, settings)
    softphone.setup(app, settings, authorization(settings))
    # The live view reads who a user is from Zendesk through the one client (its session, its request budget).
    live.setup(app, settings, lambda app: app.get(resources.ZENDESK), callbacks=_callbacks)
    app.router.add_get(RECORDING_ROUTE, recording)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    return app


def _callbacks(app: web.Application) -> QueuedCallbacks:
    """Return the callbacks the live view lists and cancels: the queue's (docs/callbacks.md)."""
    return QueuedCallbacks(app[STORE], app[INGEST], app[CLOCK])


async def recording(request: web.Request) -> web.StreamResponse:
    """Serve a signed recording link (RECORDINGS=proxy)."""
    return await request.app[RECORDING_PROXY].respond(request)


async def healthz(request: web.Request) -> web.Response:
    """Report liveness and the outbox's depth."""
    stats = await request.app[STORE].stats(request.app[CLOCK]())
    return web.json_response(
        {
            "status": "ok",
            "outbox": {
                "pending": stats.pending,
                "dead": stats.dead,
                "oldest_pending_age_seconds": stats.oldest_pending_age,
            },
        }
    )


async def metrics_view(request: web.Request) -> web.Response:
    """Serve Prometheus metrics; with METRICS_TOKEN set, only to `Authorization: Bearer METRICS_TOKEN`."""
    token = request.app[SETTINGS].metrics_token
    if token is not None:
        scheme, _, given = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        expected = token.get_secret_value().encode()
        # Header text can hold anything (even lone surrogates): compare bytes, in constant time.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected):
            raise web.HTTPUnauthorized(
                reason="/metrics needs Authorization: Bearer METRICS_TOKEN", headers={hdrs.WWW_AUTHENTICATE: "Bearer"}
            )
    now = request.app[CLOCK]()
    stats = await request.app[STORE].stats(now)
    desk = request.app[DESK]
    policy = desk.routes.policy.presence
    request.app[METRICS].routing(
        [presence.status(agent, now, policy) for agent in await desk.agents()], await desk.waiting(), now
    )
    request.app[METRICS].today((await request.app[LIVE].view.board())["lines"])
    body = request.app[METRICS].render(stats)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def readyz(request: web.Request) -> web.Response:
    """Report readiness: the store answers and the worker runs."""
    problems = []
    try:
        await request.app[STORE].ping()
    except Exception as exc:
        problems.append(f"store: {type(exc).__name__}")
    if not request.app[WORKER].running:
        problems.append("outbox worker is not running")
    if problems:
        return web.json_response({"status": "unavailable", "problems": problems}, status=503)
    return web.json_response({"status": "ready"})
