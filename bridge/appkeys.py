"""Typed keys of the resources the adapters read (webhooks, softphone), and of what the tools look at.

Importing this pulls in neither the Zendesk side (the outbox worker, the client) nor the developer tools:
where a resource's class lives there, its key holds a protocol of just what the adapters use. The keys of
the resources only the app wires together (the worker, the sessions, the mover, …) are in bridge.resources.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from aiohttp import web

from bridge.core.clock import Clock
from bridge.core.hours import Schedules
from bridge.dispatch import Desk, Routes
from bridge.dispatch.customers import Customers
from bridge.dispatch.held import HeldWatch
from bridge.dispatch.room import RoomControl
from bridge.ingest import Ingest
from bridge.ops.clients import ClientAddresses
from bridge.ops.metrics import Metrics
from bridge.ops.settings import Settings
from bridge.store import Store
from bridge.twilio.rest import TwilioApi


class Captures(Protocol):
    """Something that keeps each accepted webhook as a recording (RECORD_DIR: bridge.devtools.capture.Capture)."""

    def record(
        self, call_sid: str, path: str, params: Mapping[str, str], headers: Mapping[str, str], now: datetime
    ) -> object:
        """Keep one request of a call."""

    def confirmed(self, call_sid: str, event: Mapping[str, object], key: str, now: datetime) -> object:
        """Keep what a control of the softphone did to a call, as the bridge ingested it."""


class ScheduleBook(Protocol):
    """What the bridge last read of the lines' Zendesk schedules (bridge.zendesk.schedules.ScheduleReader)."""

    @property
    def schedules(self) -> Schedules:
        """Return each schedule as last read, by id (one never read is absent)."""


SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
STORE = web.AppKey("store", Store)
INGEST = web.AppKey("ingest", Ingest)  # the one way into the store; it wakes the workers
METRICS = web.AppKey("metrics", Metrics)
CLIENTS = web.AppKey("clients", ClientAddresses)  # who a request's client is (FORWARDED_ALLOW_IPS)
ROUTES = web.AppKey("routes", Routes)  # routing's policy and the agents, shared by the ingest and the desk
DESK = web.AppKey("desk", Desk)  # presence and the queue's sweep
CUSTOMERS = web.AppKey("customers", Customers)  # the caller's look-up at the arrival, the wait said in the queue
ROOM_CONTROL = web.AppKey("room_control", RoomControl)  # hold and resume calls in progress
HELD_WATCH = web.AppKey("held_watch", HeldWatch)  # customers left on hold by an agent who went away
CAPTURE: web.AppKey[Captures] = web.AppKey("capture")  # only with RECORD_DIR
SCHEDULES: web.AppKey[ScheduleBook] = web.AppKey("schedules")  # only when a line's hours are a Zendesk schedule
TWILIO_API = web.AppKey("twilio_api", TwilioApi)  # only with TWILIO_ACCOUNT_SID: the controls of calls in progress
