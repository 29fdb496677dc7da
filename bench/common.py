"""Shared pieces of the benchmarks: pre-generated signed requests and latency statistics."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from webhooks.names import Route, route_path

STATUS_PATH = route_path(Route.STATUS)
INCOMING_PATH = route_path(Route.INCOMING)
CUSTOMER = "+14155550123"  # a known caller in the sandbox, so its look-up is cached after the first call
NUMBER = "+16505550100"


@dataclass(frozen=True)
class Prepared:
    """A request ready to send: URL, encoded body and headers (signature included)."""

    url: str
    body: bytes
    headers: dict[str, str]
    call_sid: str
    kind: str


def _sid(prefix: str, n: int, salt: int) -> str:
    """Make a distinct 34-character sid."""
    return f"{prefix}{salt:08x}{n:024x}"


def prepare(base_url: str, token: str, params: dict[str, str], kind: str, path: str = STATUS_PATH) -> Prepared:
    """Encode and sign one form post to the status route (or another)."""
    url = base_url.rstrip("/") + path
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": RequestValidator(token).compute_signature(url, params),
    }
    return Prepared(url, urlencode(params).encode(), headers, params.get("ParentCallSid") or params["CallSid"], kind)


def call_events(base_url: str, token: str, n: int, salt: int, agent: str = "client:alice") -> list[Prepared]:
    """Return one inbound call's status callbacks: parent ringing, agent leg initiated, agent leg ringing."""
    parent, leg = _sid("CA", n, salt), _sid("CA", n, salt + 1)
    common = {"AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01", "CallbackSource": "call-progress-events",
              "Timestamp": "Tue, 15 Sep 2026 14:02:08 +0000"}  # fmt: skip
    parent_ringing = {**common, "CallSid": parent, "From": CUSTOMER, "To": NUMBER, "Direction": "inbound",
                      "CallStatus": "ringing", "SequenceNumber": "0"}  # fmt: skip
    leg_base = {**common, "CallSid": leg, "ParentCallSid": parent, "From": CUSTOMER, "To": agent,
                "Direction": "outbound-dial"}  # fmt: skip
    return [
        prepare(base_url, token, parent_ringing, "parent"),
        prepare(base_url, token, {**leg_base, "CallStatus": "initiated", "SequenceNumber": "0"}, "initiated"),
        prepare(base_url, token, {**leg_base, "CallStatus": "ringing", "SequenceNumber": "1"}, "ringing"),
    ]


def incoming_call(base_url: str, token: str, n: int, salt: int) -> Prepared:
    """Return the request of a call arriving at our number, as Twilio asks the number's voice URL."""
    params = {"AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01", "CallSid": _sid("CA", n, salt),
              "CallStatus": "ringing", "Direction": "inbound", "From": CUSTOMER, "Caller": CUSTOMER, "To": NUMBER,
              "Called": NUMBER}  # fmt: skip
    return prepare(base_url, token, params, "incoming", INCOMING_PATH)


def ring_all_events(base_url: str, token: str, n: int, salt: int, agents: list[str]) -> list[Prepared]:
    """Return one inbound call that rings every agent: parent ringing, then each leg initiated and ringing."""
    parent = _sid("CA", n, salt)
    common = {"AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01", "CallbackSource": "call-progress-events",
              "Timestamp": "Tue, 15 Sep 2026 14:02:08 +0000"}  # fmt: skip
    out = [prepare(base_url, token, {**common, "CallSid": parent, "From": CUSTOMER, "To": NUMBER,
                                     "Direction": "inbound", "CallStatus": "ringing", "SequenceNumber": "0"},
                   "parent")]  # fmt: skip
    for k, agent in enumerate(agents):
        leg = {**common, "CallSid": _sid("CA", n * 64 + k, salt + 1), "ParentCallSid": parent, "From": CUSTOMER,
               "To": agent, "Direction": "outbound-dial"}  # fmt: skip
        out.append(prepare(base_url, token, {**leg, "CallStatus": "initiated", "SequenceNumber": "0"}, "initiated"))
        out.append(prepare(base_url, token, {**leg, "CallStatus": "ringing", "SequenceNumber": "1"}, agent))
    return out


def summary(latencies: list[float], elapsed: float, errors: int) -> dict[str, float]:
    """Summarise latencies (seconds) as throughput and percentiles in milliseconds."""
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else float("nan")

    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "per_second": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(pct(0.50), 2),
        "p90_ms": round(pct(0.90), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(max(ordered) * 1000, 2) if ordered else float("nan"),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2) if ordered else float("nan"),
    }
