"""Replay recorded Twilio webhooks against a bridge, signed as Twilio would sign them."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from twilio.request_validator import RequestValidator


class RecordingError(ValueError):
    """A recording file is not in the recording format (docs/commands.md, "Recording format")."""


@dataclass(frozen=True)
class Recorded:
    """One recorded webhook request, or a control's confirmation the bridge ingested itself (`confirmed`)."""

    at: float
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    source: str
    line: int
    confirmed: Confirmed | None = None


@dataclass(frozen=True)
class Confirmed:
    """What a control of the softphone did, once Twilio confirmed it: the event, and its dedupe key.

    No webhook tells of it (Twilio answered the bridge's own request), so a recording keeps the event the
    bridge ingested; only a bridge in this process can take it again (`bridge demo`, the tests).
    """

    event: dict[str, Any]
    key: str


# Takes a control's confirmation into the bridge being replayed to (its ingest, in this process).
Confirm = Callable[[Confirmed], Awaitable[None]]


@dataclass
class ReplayReport:
    """What a replay sent and how the bridge answered."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Tell whether every request got a 2xx answer."""
        return not self.failures


def load(path: Path) -> list[Recorded]:
    """Read one recording file, one JSON object a line."""
    requests: list[Recorded] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if "confirmed" in item:
                confirmed = Confirmed(dict(item["confirmed"]["event"]), str(item["confirmed"]["key"]))
                requests.append(Recorded(float(item["at"]), "", {}, {}, path.name, number, confirmed))
                continue
            at, route, params = float(item["at"]), str(item["path"]), item["params"]
            headers = item.get("headers") or {}
        except (ValueError, KeyError, TypeError) as exc:
            raise RecordingError(f"{path}:{number}: not a recording line ({exc})") from exc
        if not route.startswith("/") or not isinstance(params, dict) or not isinstance(headers, dict):
            raise RecordingError(f"{path}:{number}: path must start with / and params be an object")
        requests.append(
            Recorded(
                at=at,
                path=route,
                params={str(k): str(v) for k, v in params.items()},
                headers={str(k): str(v) for k, v in headers.items()},
                source=path.name,
                line=number,
            )
        )
    return requests


def schedule(
    recordings: Sequence[Sequence[Recorded]], *, repeat: int = 1, shuffle: bool = False, seed: int | None = None
) -> list[Recorded]:
    """Order the requests of several calls by time, each sent `repeat` times; or shuffle them all."""
    merged = sorted(
        (request for recording in recordings for request in recording),
        key=lambda request: (request.at, request.source, request.line),
    )
    out = [request for request in merged for _ in range(repeat)]
    if shuffle:
        random.Random(seed).shuffle(out)
    return out


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    """Compute X-Twilio-Signature for a form post to `url`."""
    return str(RequestValidator(auth_token).compute_signature(url, params))


async def send(
    session: aiohttp.ClientSession,
    requests: Iterable[Recorded],
    *,
    base_url: str,
    auth_token: str,
    concurrency: int = 1,
    confirm: Confirm | None = None,
) -> ReplayReport:
    """Post each request, signed against `base_url` + its path; `concurrency` > 1 sends several at once.

    A control's confirmation goes to `confirm`; without one (a bridge in another process) it is a failure.
    """
    report = ReplayReport()
    validator = RequestValidator(auth_token)
    gate = asyncio.Semaphore(concurrency)
    base = base_url.rstrip("/")

    async def post(request: Recorded) -> None:
        if request.confirmed is not None:
            if confirm is None:
                report.failures.append(f"{request.source}:{request.line} a control's confirmation needs the bridge "
                                       "in this process (bridge demo FILE)")  # fmt: skip
                return
            async with gate:
                await confirm(request.confirmed)
                report.sent += 1
            return
        url = base + request.path
        headers = {**request.headers, "X-Twilio-Signature": validator.compute_signature(url, request.params)}
        async with gate, session.post(url, data=request.params, headers=headers) as response:
            await response.read()
            report.sent += 1
            report.statuses[response.status] += 1
            if response.status >= 300:
                report.failures.append(f"{request.source}:{request.line} {request.path} -> {response.status}")

    if concurrency <= 1:
        for request in requests:
            await post(request)
    else:
        await asyncio.gather(*(post(request) for request in requests))
    return report


async def replay_files(
    paths: Sequence[Path],
    *,
    base_url: str,
    auth_token: str,
    repeat: int = 1,
    shuffle: bool = False,
    seed: int | None = None,
    concurrency: int = 1,
    session: aiohttp.ClientSession | None = None,
    confirm: Confirm | None = None,
) -> ReplayReport:
    """Load, order and send recordings."""
    requests = schedule([load(path) for path in paths], repeat=repeat, shuffle=shuffle, seed=seed)
    options: dict[str, Any] = {"base_url": base_url, "auth_token": auth_token, "concurrency": concurrency}
    if session is not None:
        return await send(session, requests, confirm=confirm, **options)
    async with aiohttp.ClientSession() as own:
        return await send(own, requests, confirm=confirm, **options)


def summarize(report: ReplayReport) -> dict[str, Any]:
    """Return the report as plain data."""
    return {"sent": report.sent, "statuses": dict(report.statuses), "failures": report.failures}
