"""Typed keys of the resources an application holds (shared by the core and the adapters)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import aiohttp
from aiohttp import web

from bridge.core.events import CallEvent
from bridge.devtools.capture import Capture
from bridge.ops.metrics import Metrics
from bridge.ops.reconcile import Reconciler
from bridge.ops.settings import Settings
from bridge.store import Ingested, Store
from bridge.zendesk.outbox import Worker

Ingest = Callable[[Sequence[str], CallEvent], Awaitable[Ingested]]
Clock = Callable[[], float]

SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
STORE = web.AppKey("store", Store)
SESSION = web.AppKey("session", aiohttp.ClientSession)
INGEST: web.AppKey[Ingest] = web.AppKey("ingest")
WORKER = web.AppKey("worker", Worker)
RECONCILER = web.AppKey("reconciler", Reconciler)
METRICS = web.AppKey("metrics", Metrics)
CAPTURE = web.AppKey("capture", Capture)
