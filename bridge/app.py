"""create_app(settings) -> web.Application, with every resource opened and closed in cleanup_ctx."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST

from bridge.appkeys import (
    CAPTURE,
    CLIENTS,
    CLOCK,
    DESK,
    INGEST,
    LINK_SIGNER,
    METRICS,
    MOVER,
    RECONCILER,
    RECORDING_PROXY,
    SESSION,
    SETTINGS,
    STORE,
    TWILIO_MEDIA,
    TWILIO_SESSION,
    WORKER,
)
from bridge.core import presence
from bridge.core.clock import Clock, system_clock
from bridge.core.phones import is_client
from bridge.devtools.capture import Capture
from bridge.dispatch import Desk, Routes
from bridge.ingest import Ingest
from bridge.ops.clients import ClientAddresses
from bridge.ops.frontdoor import ServerLog, front_door, name_the_server
from bridge.ops.metrics import Metrics
from bridge.ops.reconcile import Reconciler, TwilioRest
from bridge.ops.recordings import ROUTE as RECORDING_ROUTE
from bridge.ops.recordings import RecordingFiler, RecordingProxy, TwilioMedia, load_signer
from bridge.ops.rejections import Rejections
from bridge.ops.settings import ConfigError, Settings
from bridge.softphone import routes as softphone
from bridge.store import Store
from bridge.store.postgres import PostgresStore
from bridge.store.sqlite import SqliteStore
from bridge.twilio.mover import Mover
from bridge.twilio.rest import TwilioApi
from bridge.zendesk.client import ZendeskClient, basic_auth
from bridge.zendesk.limiter import Limiter, rate_info
from bridge.zendesk.outbox import Deliverer, RecordingLinks, RetryPolicy, TicketDefaults, Worker
from webhooks import routes
from webhooks.routes import MAX_BODY

log = logging.getLogger("bridge.app")


async def open_store(settings: Settings) -> Store:
    """Open the store DATABASE_URL names, applying migrations."""
    url = settings.database_url
    if url.startswith("sqlite:"):
        return await SqliteStore.open(settings.sqlite_path)
    if url.startswith(("postgresql://", "postgres://")):
        return await PostgresStore.open(url)
    raise ConfigError(f"DATABASE_URL {url!r}: use sqlite:///file.db or postgresql://user@host/db")


def authorization(settings: Settings) -> str:
    """Return the Zendesk Authorization header: OAuth when given, else API token."""
    if settings.zendesk_oauth_token is not None:
        return f"Bearer {settings.zendesk_oauth_token.get_secret_value()}"
    if settings.zendesk_email is None or settings.zendesk_api_token is None:
        raise ConfigError("set ZENDESK_EMAIL and ZENDESK_API_TOKEN, or ZENDESK_OAUTH_TOKEN")
    return basic_auth(settings.zendesk_email, settings.zendesk_api_token.get_secret_value())


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
    if settings.record_dir:
        ours = [identity for identity in settings.agents if not is_client(identity)]
        app[CAPTURE] = Capture(Path(settings.record_dir), keep=[*ours, *filter(None, [settings.caller_id])])

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        opened = await store(settings)
        if isinstance(opened, SqliteStore):
            await opened.release_leases()  # one process owns a SQLite file: earlier leases died with it
        app[STORE] = opened
        await opened.add_agents(settings.agents, clock())
        app[INGEST] = Ingest(opened, settings.policy(), clock, routing)
        yield
        await opened.close()

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        session = aiohttp.ClientSession(headers={"User-Agent": "twilio-zendesk-bridge"})
        app[SESSION] = session
        yield
        await session.close()

    async def recordings_ctx(app: web.Application) -> AsyncIterator[None]:
        # Its own session: one per remote service, and Twilio's media must never share Zendesk's headers.
        session = aiohttp.ClientSession(headers={"User-Agent": "twilio-zendesk-bridge"}, auto_decompress=False)
        app[TWILIO_SESSION] = session
        media = app[TWILIO_MEDIA] = TwilioMedia(session, settings)
        signer = app[LINK_SIGNER] = await load_signer(app[STORE], settings)
        app[RECORDING_PROXY] = RecordingProxy(
            app[STORE], signer, media, clients=clients, clock=clock, on_answer=metrics.recording_served
        )
        yield
        await session.close()

    async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
        base_url = settings.zendesk_base_url
        assert base_url is not None  # check_serving made sure
        # The reserve's floor, never lent to background work: one call's worth of urgent requests, a pop
        # per agent it rings (Twilio dials at most 10) and the caller look-up's (external id, search, create).
        floor = min(len(settings.agents), 10) + 3
        budget = limiter or Limiter(settings.zendesk_rate_limit, floor=floor, quiet=settings.pop_deadline_seconds)
        health: list[Worker] = []  # the worker follows Zendesk's health from the client's answers

        def answered(status: int) -> None:
            metrics.zendesk_answered(status)
            budget.answered()
            for watcher in health:
                watcher.answered(status)

        zendesk = ZendeskClient(
            app[SESSION],
            base_url,
            authorization(settings),
            timeout=settings.zendesk_timeout_seconds,
            on_answer=answered,
            on_headers=lambda status, headers: budget.observe(rate_info(headers)),
            before_send=budget.acquire,  # one token per request, with the running delivery's priority
            clock=clock,
        )
        worker = Worker(
            app[STORE],
            Deliverer(
                zendesk,
                app[STORE],
                app[INGEST],
                clock,
                recording_links(app),
                TicketDefaults(group_id=settings.zendesk_group_id, brand_id=settings.zendesk_brand_id),
                app_id=settings.zendesk_app_id if settings.zendesk_api == "calls" else None,
            ),
            retry=retry or RetryPolicy(max_age=settings.outbox_max_age),
            limiter=budget,
            clock=clock,
            pop_deadline=settings.pop_deadline_seconds,
            probe=zendesk.me,
            metrics=metrics,
        )
        health.append(worker)
        app[WORKER] = worker
        app[INGEST].on_queued(worker.wake)
        worker.start()
        yield
        await worker.stop()

    async def reconciler_ctx(app: web.Application) -> AsyncIterator[None]:
        twilio = None
        if settings.twilio_account_sid and settings.twilio_auth_token:
            token = settings.twilio_auth_token.get_secret_value()
            twilio = TwilioRest(settings.twilio_account_sid, token, settings.twilio_api_url)
        reconciler = Reconciler(
            app[STORE],
            app[INGEST],
            stale_after=settings.call_stale_minutes * 60,
            twilio=twilio,
            policy=settings.policy(),
            clock=clock,
        )
        app[RECONCILER] = reconciler
        reconciler.start()
        yield
        await reconciler.stop()
        if twilio is not None:
            await twilio.close()

    async def routing_ctx(app: web.Application) -> AsyncIterator[None]:
        desk = app[DESK] = Desk(app[STORE], routing, clock)
        mover = None
        if settings.twilio_account_sid:
            auth = settings.twilio_media_auth(settings.twilio_account_sid)
            api = TwilioApi(app[TWILIO_SESSION], settings.twilio_account_sid, auth, settings.twilio_api_url)
            mover = app[MOVER] = Mover(app[STORE], api, app[INGEST], settings.public_url, clock=clock, metrics=metrics)
            mover.start()  # the store hands it this instance's moves as they commit
        desk.start()
        yield
        await desk.stop()
        if mover is not None:
            await mover.stop()

    routing = Routes(settings.routing_policy(), dict(settings.agents))
    app.cleanup_ctx.extend([store_ctx, session_ctx, recordings_ctx, worker_ctx, routing_ctx, reconciler_ctx])
    routes.setup(app, settings)
    softphone.setup(app, settings, authorization(settings))
    app.router.add_get(RECORDING_ROUTE, recording)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    return app


def recording_links(app: web.Application) -> RecordingLinks | None:
    """Return how the outbox links recordings under RECORDINGS (None for twilio: Twilio's own URL)."""
    mode = app[SETTINGS].recordings
    if mode == "twilio":
        return None
    filer = RecordingFiler(app[STORE], app[LINK_SIGNER], app[CLOCK])
    return RecordingLinks(filer, app[TWILIO_MEDIA] if mode == "zendesk" else None)


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
