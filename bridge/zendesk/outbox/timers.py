"""Durable timers: no Zendesk I/O, the timer's event fed back into the call's state machine."""

from __future__ import annotations

from bridge.core.actions import Timer
from bridge.core.clock import Clock
from bridge.core.events import CallEvent, EventKind
from bridge.ingest import Ingest
from bridge.zendesk.outbox.results import Settled


async def fire_timer(ingest: Ingest, clock: Clock, action_id: int, timer: Timer) -> Settled:
    """Feed the timer's event back into the call, settling the timer in the same transaction."""
    event = CallEvent(kind=EventKind.TIMER, call_sid=timer.call_sid, at=clock(), timer=timer.name)
    await ingest([f"timer:{timer.key}"], event, finish_action=action_id)
    return Settled()
