"""Typed keys of the resources an application holds (shared by the app, the adapters and the tools)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from bridge.core.clock import Clock
from bridge.devtools.capture import Capture
from bridge.dispatch import Desk
from bridge.ingest import Ingest
from bridge.ops.clients import ClientAddresses
from bridge.ops.metrics import Metrics
from bridge.ops.reconcile import Reconciler
from bridge.ops.recordings import LinkSigner, RecordingProxy
from bridge.ops.settings import Settings
from bridge.store import Store
from bridge.twilio.media import TwilioMedia
from bridge.twilio.mover import Mover
from bridge.zendesk.availability import AvailabilityPoller
from bridge.zendesk.client import ZendeskClient
from bridge.zendesk.outbox import Worker

SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
STORE = web.AppKey("store", Store)
SESSION = web.AppKey("session", aiohttp.ClientSession)  # Zendesk's
TWILIO_SESSION = web.AppKey("twilio_session", aiohttp.ClientSession)  # Twilio's: its REST API and its media
TWILIO_MEDIA = web.AppKey("twilio_media", TwilioMedia)
LINK_SIGNER = web.AppKey("link_signer", LinkSigner)
RECORDING_PROXY = web.AppKey("recording_proxy", RecordingProxy)
INGEST = web.AppKey("ingest", Ingest)
WORKER = web.AppKey("worker", Worker)
ZENDESK = web.AppKey("zendesk", ZendeskClient)  # the one client: its session and rate limiter shared
AVAILABILITY = web.AppKey("availability", AvailabilityPoller)  # agents' availability in Zendesk, when read
RECONCILER = web.AppKey("reconciler", Reconciler)
METRICS = web.AppKey("metrics", Metrics)
CAPTURE = web.AppKey("capture", Capture)
DESK = web.AppKey("desk", Desk)  # presence and the queue's sweep
MOVER = web.AppKey("mover", Mover)  # moves of waiting callers, sent to Twilio (only with TWILIO_ACCOUNT_SID)
CLIENTS = web.AppKey("clients", ClientAddresses)  # who a request's client is (FORWARDED_ALLOW_IPS)
