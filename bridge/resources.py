"""The resources an application holds, each a cleanup_ctx: opened when it starts, closed when it stops.

create_app (bridge.app) lists them in the order they open; aiohttp closes them in the reverse order, so a
resource may use any opened before it. Each reads the settings, the clock and the metrics from the app,
and leaves what it opened under its key: the keys adapters read are in bridge.appkeys, the keys of what
only the app wires together are here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from bridge.appkeys import (
    CAPTURE,
    CLIENTS,
    CLOCK,
    CUSTOMERS,
    DESK,
    HELD_WATCH,
    INGEST,
    METRICS,
    ROOM_CONTROL,
    ROUTES,
    SCHEDULES,
    SETTINGS,
    STORE,
    TWILIO_API,
)
from bridge.core.phones import is_client
from bridge.devtools.capture import Capture
from bridge.dispatch import Desk
from bridge.dispatch.customers import Customers
from bridge.dispatch.held import HeldWatch
from bridge.dispatch.room import RoomControl
from bridge.ingest import Ingest
from bridge.ops.connections import authorization
from bridge.ops.reconcile import Reconciler
from bridge.ops.recordings import LinkSigner, RecordingFiler, RecordingProxy, load_signer
from bridge.ops.settings import Settings
from bridge.store import Store
from bridge.store.sqlite import SqliteStore
from bridge.twilio.dialer import Dialer, Dialing
from bridge.twilio.media import TwilioMedia
from bridge.twilio.mover import Mover
from bridge.twilio.rest import TwilioApi
from bridge.twilio.room import RoomApi
from bridge.zendesk.availability import AvailabilityPoller
from bridge.zendesk.client import ZendeskClient
from bridge.zendesk.limiter import Limiter, rate_info
from bridge.zendesk.outbox import Deliverer, RecordingLinks, RetryPolicy, TicketDefaults, Worker
from bridge.zendesk.schedules import ScheduleReader, schedule_ids

Resource = Callable[[web.Application], AsyncIterator[None]]

SESSION = web.AppKey("session", aiohttp.ClientSession)  # Zendesk's
TWILIO_SESSION = web.AppKey("twilio_session", aiohttp.ClientSession)  # Twilio's: its REST API and its media
TWILIO_MEDIA = web.AppKey("twilio_media", TwilioMedia)
LINK_SIGNER = web.AppKey("link_signer", LinkSigner)
RECORDING_PROXY = web.AppKey("recording_proxy", RecordingProxy)
ZENDESK = web.AppKey("zendesk", ZendeskClient)  # the one client: its session and rate limiter shared
WORKER = web.AppKey("worker", Worker)
MOVER = web.AppKey("mover", Mover)  # moves of waiting callers, sent to Twilio (only with TWILIO_ACCOUNT_SID)
AVAILABILITY = web.AppKey("availability", AvailabilityPoller)  # agents' availability in Zendesk, when read
RECONCILER = web.AppKey("reconciler", Reconciler)
USER_AGENT = {"User-Agent": "twilio-zendesk-bridge"}


async def capture(app: web.Application) -> AsyncIterator[None]:
    """Capture accepted webhooks as recordings, numbers scrubbed but ours (RECORD_DIR; developer tooling)."""
    settings = app[SETTINGS]
    if settings.record_dir:
        ours = [identity for identity in settings.agents if not is_client(identity)]
        app[CAPTURE] = Capture(Path(settings.record_dir), keep=[*ours, *filter(None, [settings.caller_id])])
    yield


def store(opener: Callable[[Settings], Awaitable[Store]]) -> Resource:
    """Open the store with `opener` (a test may wrap the real one to make it fail), and the ingest into it."""

    async def store(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        opened = await opener(settings)
        if isinstance(opened, SqliteStore):
            await opened.release_leases()  # one process owns a SQLite file: earlier leases died with it
        app[STORE] = opened
        await opened.add_agents(settings.agents, app[CLOCK]())
        ingest = app[INGEST] = Ingest(opened, settings.policy(), app[CLOCK], app[ROUTES])
        app[CUSTOMERS] = Customers(opened, ingest, app[ROUTES], app[CLOCK], settings.lookup_budget_ms / 1000)
        yield
        await opened.close()

    return store


async def zendesk_session(app: web.Application) -> AsyncIterator[None]:
    """Open Zendesk's session: one per remote service."""
    session = app[SESSION] = aiohttp.ClientSession(headers=USER_AGENT)
    yield
    await session.close()


async def twilio_session(app: web.Application) -> AsyncIterator[None]:
    """Open Twilio's session, which its REST API and its recording media share (api.twilio.com, one service).

    Its own, never Zendesk's: Twilio's credentials and Zendesk's headers must never meet.
    """
    session = app[TWILIO_SESSION] = aiohttp.ClientSession(headers=USER_AGENT)
    settings = app[SETTINGS]
    app[TWILIO_MEDIA] = TwilioMedia(session, settings)
    if settings.twilio_account_sid:
        # The softphone's controls of calls in progress (pause the recording, …) ask Twilio's REST API.
        auth = settings.twilio_media_auth(settings.twilio_account_sid)  # the API key when set, else the auth token
        app[TWILIO_API] = TwilioApi(session, settings.twilio_account_sid, auth, settings.twilio_api_url)
    yield
    await session.close()


async def recordings(app: web.Application) -> AsyncIterator[None]:
    """Load the recording links' signer (its secret is the database's) and the proxy that serves the links."""
    signer = app[LINK_SIGNER] = await load_signer(app[STORE], app[SETTINGS])
    app[RECORDING_PROXY] = RecordingProxy(
        app[STORE],
        signer,
        app[TWILIO_MEDIA],
        clients=app[CLIENTS],
        clock=app[CLOCK],
        on_answer=app[METRICS].recording_served,
    )
    yield


def worker(retry: RetryPolicy | None, limiter: Limiter | None) -> Resource:
    """Start the outbox worker and Zendesk's one client under the request budget (`limiter`, or one made)."""

    async def worker(app: web.Application) -> AsyncIterator[None]:
        settings, metrics, clock = app[SETTINGS], app[METRICS], app[CLOCK]
        base_url = settings.zendesk_base_url
        assert base_url is not None  # check_serving made sure
        # The reserve's floor, never lent to background work: one call's worth of urgent requests, a pop
        # per agent it rings (Twilio dials at most 10), the caller look-up's (external id, search, create) and
        # what routing reads of the caller (their user and their tickets).
        floor = min(len(settings.agents), 10) + 5
        budget = limiter or Limiter(settings.zendesk_rate_limit, floor=floor, quiet=settings.pop_deadline_seconds)
        health: list[Worker] = []  # the worker follows Zendesk's health from the client's answers

        def answered(status: int) -> None:
            metrics.zendesk_answered(status)
            budget.answered()
            for watcher in health:
                watcher.answered(status)

        zendesk = app[ZENDESK] = ZendeskClient(
            app[SESSION],
            base_url,
            authorization(settings),
            timeout=settings.zendesk_timeout_seconds,
            on_answer=answered,
            on_headers=lambda status, headers: budget.observe(rate_info(headers)),
            before_send=budget.acquire,  # one token per request, with the running delivery's priority
            clock=clock,
        )
        defaults = TicketDefaults(group_id=settings.zendesk_group_id, brand_id=settings.zendesk_brand_id)
        app_id = settings.zendesk_app_id if settings.zendesk_api == "calls" else None
        started = app[WORKER] = Worker(
            app[STORE],
            Deliverer(zendesk, app[STORE], app[INGEST], clock, recording_links(app), defaults, app_id=app_id),
            retry=retry or RetryPolicy(max_age=settings.outbox_max_age),
            limiter=budget,
            clock=clock,
            pop_deadline=settings.pop_deadline_seconds,
            probe=zendesk.me,
            metrics=metrics,
        )
        health.append(started)
        app[INGEST].on_queued(started.wake)
        started.start()
        yield
        await started.stop()

    return worker


def recording_links(app: web.Application) -> RecordingLinks | None:
    """Return how the outbox links recordings under RECORDINGS (None for twilio: Twilio's own URL)."""
    mode = app[SETTINGS].recordings
    if mode == "twilio":
        return None
    filer = RecordingFiler(app[STORE], app[LINK_SIGNER], app[CLOCK])
    return RecordingLinks(filer, app[TWILIO_MEDIA] if mode == "zendesk" else None)


async def desk(app: web.Application) -> AsyncIterator[None]:
    """Start the desk: agents' presence, and the sweep that matches the queue against free agents."""
    started = app[DESK] = Desk(app[STORE], app[ROUTES], app[CLOCK])
    started.on_wrap_up_ended(app[INGEST].wrap_up_ended)  # the call's record learns its wrap_up_time
    started.start()
    yield
    await started.stop()


async def mover(app: web.Application) -> AsyncIterator[None]:
    """Start the mover, which sends routing's moves to Twilio's REST API (only with TWILIO_ACCOUNT_SID)."""
    settings = app[SETTINGS]
    if not settings.twilio_account_sid:
        yield
        return
    auth = settings.twilio_media_auth(settings.twilio_account_sid)  # the API key when set, else the auth token
    api = TwilioApi(app[TWILIO_SESSION], settings.twilio_account_sid, auth, settings.twilio_api_url)
    routing = settings.routing_policy()
    dialing = Dialing(settings.public_url, settings.phone_lines, routing.ring_seconds, settings.twilio_calls_per_second)
    dialer = Dialer(app[STORE], api, app[INGEST], dialing, app[CLOCK])
    started = app[MOVER] = Mover(
        app[STORE], api, app[INGEST], settings.public_url, clock=app[CLOCK], metrics=app[METRICS], dialer=dialer
    )
    started.start()  # the store hands it this instance's moves as they commit
    yield
    await started.stop()


async def room_control(app: web.Application) -> AsyncIterator[None]:
    """Hold and resume calls from the softphone (acting at Twilio only with TWILIO_ACCOUNT_SID)."""
    settings = app[SETTINGS]
    rest = app.get(TWILIO_API)
    api = RoomApi(rest, settings.public_url) if rest is not None else None
    lines = settings.phone_lines
    app[ROOM_CONTROL] = RoomControl(app[INGEST], api, app[CLOCK], settings.agent_ring_seconds, lines)
    yield


async def held_watch(app: web.Application) -> AsyncIterator[None]:
    """Start the watch that gives back to their line the customers an agent who went away left on hold."""
    started = app[HELD_WATCH] = HeldWatch(app[STORE], app[INGEST], app[ROUTES], app[CLOCK])
    started.start()
    yield
    await started.stop()


async def availability(app: web.Application) -> AsyncIterator[None]:
    """Read agents' availability in Zendesk every so often, when ZENDESK_AVAILABILITY_SECONDS asks."""
    settings, desk = app[SETTINGS], app[DESK]
    seconds = settings.zendesk_availability_seconds
    if not seconds or not settings.agents:
        for identity in settings.agents:  # what an earlier run read from Zendesk no longer counts
            await desk.zendesk_said(identity, None)
        yield
        return
    # Zendesk's client, so its requests share the rate limiter (background priority: pops go first).
    poller = app[AVAILABILITY] = AvailabilityPoller(
        app[ZENDESK], settings.agents, desk.zendesk_said, interval=seconds, per_minute=settings.zendesk_rate_limit
    )
    poller.start()
    yield
    await poller.stop()


async def schedules(app: web.Application) -> AsyncIterator[None]:
    """Read the Zendesk schedules the lines' hours name, at start and every so often (none named: nothing)."""
    ids = schedule_ids(app[SETTINGS].phone_lines)
    if not ids:
        yield
        return
    # Zendesk's client, so its requests share the rate limiter (background priority: pops go first).
    reader = ScheduleReader(app[ZENDESK], ids, clock=app[CLOCK])
    app[SCHEDULES] = reader
    reader.start()
    yield
    await reader.stop()


async def reconciler(app: web.Application) -> AsyncIterator[None]:
    """Start reconciliation of calls gone quiet, asking Twilio's REST API when the account is known."""
    settings = app[SETTINGS]
    twilio = None
    if settings.twilio_account_sid and settings.twilio_auth_token:
        # The account's own auth token, as reconciliation has always asked (moves send the API key when set).
        auth = settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value()
        twilio = TwilioApi(app[TWILIO_SESSION], settings.twilio_account_sid, auth, settings.twilio_api_url)
    started = app[RECONCILER] = Reconciler(
        app[STORE],
        app[INGEST],
        stale_after=settings.call_stale_minutes * 60,
        twilio=twilio,
        policy=settings.policy(),
        clock=app[CLOCK],
    )
    started.start()
    yield
    await started.stop()
