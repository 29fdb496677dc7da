"""Prometheus metrics, one registry per application (so several apps in one process stay apart)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bridge.core.routing import Waiting
from bridge.store import OutboxStats

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)


class Metrics:
    """Every metric the bridge exports at /metrics."""

    def __init__(self) -> None:
        """Create the metrics in a private registry."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhooks = Counter(
            "bridge_webhooks", "Twilio webhooks received, by route and outcome", ["route", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.actions = Counter(
            "bridge_actions", "Outbox delivery attempts, by action kind and outcome", ["kind", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.delivery = Histogram(
            "bridge_delivery_seconds", "Time from an action being queued to its delivery", ["kind"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.zendesk = Counter(
            "bridge_zendesk_responses", "Zendesk answers by HTTP status (0: no answer)", ["status"],
            registry=self.registry,
        )  # fmt: skip
        self.rejected = Counter(
            "bridge_rejected_requests", "Requests refused (or given up on), by route pattern and status",
            ["route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.recordings = Counter(
            "bridge_recording_requests", "Recording link requests, by the status the bridge answered", ["status"],
            registry=self.registry,
        )  # fmt: skip
        self.outbox_pending = Gauge("bridge_outbox_pending", "Actions waiting to be delivered", registry=self.registry)
        self.outbox_dead = Gauge("bridge_outbox_dead", "Dead letters awaiting an operator", registry=self.registry)
        self.outbox_oldest = Gauge(
            "bridge_outbox_oldest_pending_seconds", "Age of the oldest pending action", registry=self.registry
        )
        self.move_latency = Histogram(
            "bridge_offer_move_seconds",
            "Time from an agent becoming offerable (the decision committed) to the move of a waiting caller sent",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.agents = Gauge("bridge_agents", "Agents by status", ["status"], registry=self.registry)
        self._lines: set[str] = {"default"}  # lines whose queue gauges were ever set
        self.waiting = Gauge("bridge_queue_waiting", "Callers waiting in the queue, by line", ["line"],
                             registry=self.registry)  # fmt: skip
        self.longest_wait = Gauge(
            "bridge_queue_longest_wait_seconds", "The longest wait of a caller in the queue now, by line", ["line"],
            registry=self.registry,
        )  # fmt: skip
        self.callbacks = Gauge("bridge_queue_callbacks", "Callback requests kept in line, by line", ["line"],
                               registry=self.registry)  # fmt: skip

        # The live view's figures of each line's day, from the store's record of calls (docs/live-view.md).
        self.line_calls = Gauge(
            "bridge_line_calls_today", "Calls in to each line today (its time zone's day), by what became of them",
            ["line", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.line_waits = Gauge(
            "bridge_line_wait_today_seconds", "Each line's average and longest wait for an agent today",
            ["line", "figure"], registry=self.registry,
        )  # fmt: skip
        self.service_level = Gauge(
            "bridge_line_service_level", "Share of each line's calls today answered within SERVICE_LEVEL_SECONDS",
            ["line"], registry=self.registry,
        )  # fmt: skip
        self.agents_available = Gauge(
            "bridge_line_agents_available", "Agents available for each line's calls now", ["line"],
            registry=self.registry,
        )  # fmt: skip

    def today(self, lines: Iterable[Mapping[str, Any]]) -> None:
        """Set each line's figures of the day from the live view's board (made from the store just now)."""
        for line in lines:
            key, day = line["key"], line["today"]
            for outcome in ("calls", "answered", "missed", "abandoned", "voicemails", "after_hours"):
                self.line_calls.labels(key, outcome).set(day[outcome])
            for figure in ("average_wait", "longest_wait"):
                self.line_waits.labels(key, figure).set(day[figure] or 0)
            share = day["service_level"]
            self.service_level.labels(key).set(share if share is not None else float("nan"))
            self.agents_available.labels(key).set(line["agents_available"])

    def zendesk_answered(self, status: int) -> None:
        """Count one Zendesk answer."""
        self.zendesk.labels(str(status)).inc()

    def recording_served(self, status: int) -> None:
        """Count one answer to a recording link."""
        self.recordings.labels(str(status)).inc()

    def routing(self, statuses: Iterable[str], waiting: Iterable[Waiting], now: datetime) -> None:
        """Set the presence and queue gauges from the store's rows, read just now (so every instance agrees)."""
        counts = dict.fromkeys(("available", "away", "offline", "ringing", "on_call", "wrap_up"), 0)
        for status in statuses:
            counts[status] = counts.get(status, 0) + 1
        for status, count in counts.items():
            self.agents.labels(status).set(count)
        lines: dict[str, list[float]] = {}
        callbacks: dict[str, int] = {}
        for caller in waiting:
            if caller.callback is not None:  # kept in line, but nobody holds the phone: counted apart
                callbacks[caller.line] = callbacks.get(caller.line, 0) + 1
                continue
            lines.setdefault(caller.line, []).append(caller.waited(now))
        for line, waits in lines.items():
            self.waiting.labels(line).set(len(waits))
            self.longest_wait.labels(line).set(max(waits))
        for line in self._lines - set(lines):  # a line nobody waits in now
            self.waiting.labels(line).set(0)
            self.longest_wait.labels(line).set(0)
        for line in self._lines | set(callbacks):
            self.callbacks.labels(line).set(callbacks.get(line, 0))
        self._lines |= set(lines) | set(callbacks)

    def render(self, stats: OutboxStats) -> bytes:
        """Return the exposition text, with the outbox gauges read just now."""
        self.outbox_pending.set(stats.pending)
        self.outbox_dead.set(stats.dead)
        self.outbox_oldest.set(stats.oldest_pending_age or 0.0)
        return bytes(generate_latest(self.registry))
