"""Hostile traffic on the public URL: malformed requests are clean 4xx, logs cannot be forged, slow bodies end.

Every request here is written byte for byte on a socket, as an attacker with only the URL would send it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from bridge.appkeys import METRICS
from bridge.devtools.demo import LocalBridge, local_bridge
from bridge.ops.logs import JsonFormatter, MaskingFormatter
from bridge.ops.rejections import Rejections
from bridge.ops.settings import Settings
from bridge.softphone.identity import SessionSigner
from bridge.softphone.routes import SDK_ROUTE, find_sdk
from bridge.store import Store
from tests.conftest import FAST_RETRY, BridgeFactory, eventually
from tests.hostile_kit import exchange, faults, raw_request, registered_routes
from tests.softphone_kit import API_KEY_SECRET, softphone_settings
from webhooks.names import Route, route_path

CALL = {"AccountSid": "AC" + "4" * 32, "CallSid": "CA" + "c" * 32, "From": "+14155550123", "To": "+16505550100",
        "CallStatus": "ringing", "Direction": "inbound"}  # fmt: skip
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture the bridge's own lines down to debug, and everyone else's warnings and errors."""
    caplog.set_level(logging.DEBUG, logger="bridge")
    return caplog


def signed(bridge: LocalBridge, target: str, params: dict[str, str], **headers: str) -> bytes:
    """Return a webhook signed as Twilio signs it, for a target path (and query) on this bridge."""
    signature = RequestValidator(bridge.auth_token).compute_signature(bridge.url + target, params)
    fields = {"Content-Type": FORM, "X-Twilio-Signature": signature, **headers}
    return raw_request("POST", target, fields, urlencode(params).encode())


async def nothing_stored(bridge: LocalBridge) -> bool:
    """Tell whether no event was stored and no action queued."""
    return await bridge.store.count_events() == 0 and (await bridge.store.stats(bridge.clock())).pending == 0


# --- 1. every malformed request is a clean 4xx ---------------------------------------------------------


async def test_each_shape_that_caused_a_500_is_a_clean_4xx(make_bridge: BridgeFactory, log: Any) -> None:
    """The shapes found against the public URL: each a JSON 4xx saying what was wrong, and nothing stored."""
    async with make_bridge(**softphone_settings()) as bridge:
        session = SessionSigner(API_KEY_SECRET.encode()).issue("alice", 1001, bridge.clock())
        body = b'{"CallSid": "CA1"}'
        digest = hashlib.sha256(body).hexdigest()
        status_path = route_path(Route.STATUS)
        json_body = {"Content-Type": "application/json", "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
        shapes: list[tuple[str, bytes, int, str]] = [
            ("body hash, non-form body", raw_request("POST", f"{status_path}?bodySHA256={digest}", json_body, body),
             403, "X-Twilio-Signature"),
            ("blank body hash", raw_request("POST", f"{status_path}?bodySHA256=", json_body, body),
             403, "X-Twilio-Signature"),
            ("body hash named elsewhere", raw_request("POST", f"{status_path}?x=bodySHA256", json_body, body),
             403, "X-Twilio-Signature"),
            ("non-UTF-8 signature", raw_request("POST", status_path, {"Content-Type": FORM,
             "X-Twilio-Signature": b"\xff\xfe\xc3("}, urlencode(CALL).encode()), 403, "X-Twilio-Signature"),
            ("softphone form not UTF-8", raw_request("POST", "/zendesk/softphone", {"Content-Type": FORM},
             b"token=\xff\xfe"), 400, "form body"),
            ("softphone form in an unknown charset", raw_request("POST", "/zendesk/softphone",
             {"Content-Type": FORM + "; charset=klingon"}, b"token=abc"), 400, "form body"),
            ("non-ASCII bearer for a token", raw_request("POST", "/softphone/token",
             {"Authorization": "Bearer é.é".encode()}), 401, "session"),
            ("non-ASCII bearer for a caller", raw_request("POST", "/softphone/caller",
             {"Authorization": b"Bearer a.\xff", "Content-Type": "application/json"}, b'{"number": "+1"}'), 401,
             "session"),
            ("caller body in an unknown charset", raw_request("POST", "/softphone/caller",
             {"Content-Type": "application/json; charset=klingon", "Authorization": f"Bearer {session}"},
             b'{"number": "+14155550123"}'), 400, "number"),
        ]  # fmt: skip
        for name, request, status, says in shapes:
            got, headers, answer = await exchange(bridge.url, request)
            assert (got, headers.get("content-type", "").split(";")[0]) == (status, "application/json"), name
            assert says in json.loads(answer)["error"], name
        got, _, _ = await exchange(bridge.url, b"GET /healthz?a=\xff HTTP/1.1\r\nHost: x\r\n\r\n")
        assert got == 400  # aiohttp's parser refuses it: its 400, and no traceback of ours
        assert await nothing_stored(bridge)
    assert faults(log.records) == []


async def test_a_client_that_goes_away_mid_body_is_a_debug_line(bridge: LocalBridge, log: Any) -> None:
    """Half a body, then the connection closes: nothing stored, nothing above debug said about it."""
    _, writer = await asyncio.open_connection("127.0.0.1", int(bridge.url.rsplit(":", 1)[1]))
    writer.write(raw_request("POST", route_path(Route.STATUS), {"Content-Type": FORM}).replace(
        b"Content-Length: 0", b"Content-Length: 500") + b"CallSid=CA")  # fmt: skip
    await writer.drain()
    writer.close()

    def told() -> bool:
        return any("went away" in r.getMessage() for r in log.records)

    await eventually(told, within=15)
    (line,) = [r for r in log.records if "went away" in r.getMessage()]
    assert line.levelno == logging.DEBUG
    assert faults(log.records) == []
    assert await nothing_stored(bridge)


class SwitchableStore:
    """The real store behind a switch: while `down`, every call fails as a database that cannot be reached."""

    def __init__(self, inner: Store) -> None:
        """Wrap the store the settings name."""
        self.inner = inner
        self.down = False

    def __getattr__(self, name: str) -> Any:
        """Pass calls through, or fail them while down."""
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise sqlite3.OperationalError("disk I/O error")
            return await attribute(*args, **kwargs)

        return call


async def test_a_store_that_cannot_be_reached_is_a_503_not_a_400(make_bridge: BridgeFactory, log: Any) -> None:
    """A genuine server fault stays a server fault: 503 with a JSON body, one line naming it, no traceback."""
    from bridge.ops.connections import open_store

    switch: list[SwitchableStore] = []

    async def opener(settings: Settings) -> Store:
        switch.append(SwitchableStore(await open_store(settings)))
        return switch[0]  # type: ignore[return-value]

    async with make_bridge(store=opener) as bridge:
        switch[0].down = True
        status, headers, body = await exchange(bridge.url, signed(bridge, route_path(Route.INCOMING), CALL))
        assert (status, json.loads(body)["error"]) == (503, "temporarily unavailable")
        assert headers["retry-after"] == "5"
        assert (await exchange(bridge.url, raw_request("GET", "/healthz", {})))[0] == 503
        switch[0].down = False
        assert await nothing_stored(bridge)
    lines = [r for r in log.records if r.name == "bridge.app"]
    assert lines
    assert all("the database or the network failed (OperationalError: disk I/O error)" in r.getMessage() for r in lines)
    assert not any(r.exc_info for r in lines)


FIELDS = ["CallSid", "ParentCallSid", "From", "To", "CallStatus", "SequenceNumber", "Timestamp", "RecordingSid",
          "RecordingUrl", "RecordingStatus", "DialCallStatus", "token", "number"]  # fmt: skip
TEXT = st.text(st.characters(codec="utf-8"), max_size=24)
HEADER_VALUES = st.one_of(
    TEXT.map(str.encode), st.binary(max_size=24).filter(lambda b: b"\r" not in b and b"\n" not in b)
)
CONTENT_TYPES = st.sampled_from([FORM, FORM + "; charset=latin-1", FORM + "; charset=nope", "application/json",
                                 "application/json; charset=utf-16", "multipart/form-data; boundary=x", "text/plain",
                                 "", "\x7f"])  # fmt: skip


@st.composite
def hostile_requests(draw: st.DrawFn, routes: list[tuple[str, str]], bridge: LocalBridge) -> bytes:
    """Draw a request to one registered route: any method, path parameters, query, headers and body."""
    method, pattern = draw(st.sampled_from(routes))
    method = draw(st.sampled_from([method, method, "GET", "POST", "PUT", "DELETE", "HEAD"]))
    path = re.sub(r"\{[^}]+\}", lambda _: quote(draw(TEXT), safe=""), pattern)
    query = draw(st.one_of(st.just(""), st.dictionaries(TEXT, TEXT, max_size=3).map(lambda q: "?" + urlencode(q)),
                           st.just("?bodySHA256="), st.just("?sig=" + "A" * 43)))  # fmt: skip
    form = draw(st.dictionaries(st.one_of(st.sampled_from(FIELDS), TEXT), TEXT, max_size=8))
    body = draw(
        st.one_of(st.just(urlencode(form).encode()), st.binary(max_size=200), st.just(json.dumps(form).encode()))
    )
    headers: dict[str, bytes | str] = {"Content-Type": draw(CONTENT_TYPES)}
    if draw(st.booleans()) and body == urlencode(form).encode():  # signed as Twilio signs: reaches the handlers
        signature = RequestValidator(bridge.auth_token).compute_signature(bridge.url + path + query, form)
        headers["X-Twilio-Signature"] = signature
    for name in draw(st.lists(st.sampled_from(["X-Twilio-Signature", "Authorization", "X-Forwarded-For", "Range",
                                               "I-Twilio-Idempotency-Token", "X-Twilio-Webhooks-Signature-Settings",
                                               "Content-Encoding"]), max_size=3)):  # fmt: skip
        headers[name] = draw(st.one_of(HEADER_VALUES, st.just(b"Bearer \xc3\xa9"), st.just(b"gzip")))
    return raw_request(method, path + query, headers, body)


def test_fuzzed_requests_to_every_registered_route_never_get_a_5xx(tmp_path: Path, log: Any) -> None:
    """Whatever reaches any route the app registered (routes added later too): never a 5xx, never a traceback."""
    with asyncio.Runner() as runner:
        context = local_bridge(tmp_path / "b.db", retry=FAST_RETRY, body_timeout_seconds=2, **softphone_settings())
        bridge = runner.run(context.__aenter__())
        try:
            routes = registered_routes(bridge.app)
            assert ("POST", route_path(Route.STATUS)) in routes
            assert ("GET", "/recordings/{sid}.mp3") in routes

            @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
            @given(request=hostile_requests(routes, bridge))
            def check(request: bytes) -> None:
                status, _, _ = runner.run(exchange(bridge.url, request))
                sdk_missing = status == 503 and find_sdk() is None and SDK_ROUTE.encode() in request.split(b"\r\n")[0]
                assert status < 500 or sdk_missing, request[:300]

            check()
        finally:
            runner.run(context.__aexit__(None, None, None))
    assert faults(log.records) == []


# --- 2. logs cannot be forged ----------------------------------------------------------------------------

FORGED = "\n2026-01-01 00:00:00,000 INFO bridge.webhooks: all is well\r\x1b[2J\u2028\u2029\x85done"


async def test_request_controlled_text_cannot_start_a_log_line(bridge: LocalBridge, log: Any) -> None:
    """CR, LF, ESC and Unicode line separators from a path, a header or a signed CallSid are escaped in text logs."""
    form = {**CALL, "CallSid": "CA" + FORGED}
    await exchange(bridge.url, signed(bridge, route_path(Route.INCOMING), form))
    await exchange(bridge.url, raw_request("POST", route_path(Route.STATUS) + quote(FORGED), {}))
    await exchange(bridge.url, raw_request("GET", "/recordings/RE" + quote(FORGED) + ".mp3", {}))
    forged = [r for r in log.records if "all is well" in r.getMessage()]
    assert forged  # the request's text did reach the log, in a signed CallSid: escaping is what stands between
    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.setFormatter(MaskingFormatter())
    for record in log.records:
        handler.handle(record)
    for line in text.getvalue().splitlines(keepends=False):
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ", line) or line.startswith("    "), line
    assert not re.search("[\r\x1b\u2028\u2029\x85]", text.getvalue())
    assert (
        "\\x0a2026-01-01 00:00:00,000 INFO bridge.webhooks: all is well\\x0d\\x1b[2J\\u2028\\u2029\\x85"
        in text.getvalue()
    )
    for record in forged:
        line = JsonFormatter().format(record)
        assert "\n" not in line
        assert not re.search("[\u2028\u2029\x85]", line)
        assert "all is well" in json.loads(line)["msg"]


def test_a_traceback_is_indented_under_its_record() -> None:
    """An exception's text (which may quote the request) never starts a line of its own."""
    try:
        raise ValueError("bad value:" + FORGED)
    except ValueError:
        record = logging.LogRecord(
            "bridge.app", logging.ERROR, __file__, 1, "failed", None, __import__("sys").exc_info()
        )
    first, *rest = MaskingFormatter().format(record).split("\n")
    assert first.endswith("ERROR bridge.app: failed")
    assert rest
    assert all(line.startswith("    ") for line in rest)


# --- 4. a body must arrive in time ----------------------------------------------------------------------


async def test_a_body_trickled_a_byte_at_a_time_is_cut_off(make_bridge: BridgeFactory, log: Any) -> None:
    """A real slow client: a byte whenever the server has said nothing for 0.1 s, until the server closes."""
    async with make_bridge(body_timeout_seconds=0.5) as bridge:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(bridge.url.rsplit(":", 1)[1]))
        head = raw_request("POST", route_path(Route.STATUS), {"Content-Type": FORM})
        writer.write(head.replace(b"Content-Length: 0", b"Content-Length: 10000"))
        sent, answer = 0, b""
        async with asyncio.timeout(20):  # without the deadline it trickles on for ever: the test fails here
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(4096), 0.1)
                except TimeoutError:
                    writer.write(b"x")  # the server is still waiting: one more byte
                    sent += 1
                    continue
                except ConnectionResetError:
                    break
                if not chunk:
                    break  # closed
                answer += chunk
        writer.close()
        assert sent < 10000
        assert not answer or answer.startswith(b"HTTP/1.1 408")
        assert await nothing_stored(bridge)
        rejected = bridge.app[METRICS].registry.get_sample_value(
            "bridge_rejected_requests_total", {"route": route_path(Route.STATUS), "status": "408"}
        )
        assert rejected == 1
    assert faults(log.records) == []


# --- 6. quieter under attack ----------------------------------------------------------------------------


async def test_rejections_are_counted_each_and_logged_once_a_second(bridge: LocalBridge, log: Any) -> None:
    """Fifty forged webhooks: fifty counted in /metrics, far fewer lines in the log."""
    for _ in range(50):
        request = raw_request("POST", route_path(Route.STATUS), {"Content-Type": FORM, "X-Twilio-Signature": "x"})
        assert (await exchange(bridge.url, request))[0] == 403
    count = bridge.app[METRICS].registry.get_sample_value(
        "bridge_rejected_requests_total", {"route": route_path(Route.STATUS), "status": "403"}
    )
    assert count == 50
    lines = [r for r in log.records if r.name == "bridge.rejected"]
    assert 1 <= len(lines) < 25
    assert "X-Twilio-Signature" in lines[0].getMessage()


def test_a_kind_is_logged_once_a_second_with_the_count_of_the_rest(log: Any) -> None:
    """Within a second a kind is only counted; the next line says how many went unlogged."""
    from prometheus_client import CollectorRegistry, Counter

    now = [100.0]
    counter = Counter("rejected", "test", ["route", "status"], registry=CollectorRegistry())
    rejections = Rejections(counter, clock=lambda: now[0])
    for n in range(1000):
        rejections.rejected("/r", 403, f"forged {n}")
    rejections.rejected("/r", 404, "another kind")
    now[0] += 1.0
    rejections.rejected("/r", 403, "forged again")
    lines = [r.getMessage() for r in log.records if r.name == "bridge.rejected"]
    assert lines == ["rejected forged 0", "rejected another kind",
                     "rejected forged again (and 999 more 403 on /r since the last such line)"]  # fmt: skip


async def test_a_replay_with_a_fresh_idempotency_token_is_the_same_request(bridge: LocalBridge) -> None:
    """A captured signed request replayed with new tokens is a duplicate, and adds no dedupe row."""
    path = Path(bridge.settings.database_url.removeprefix("sqlite:///"))

    def seen_rows() -> int:
        with sqlite3.connect(path) as db:
            return int(db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])

    params = {**CALL, "CallStatus": "completed", "SequenceNumber": "3"}
    first = signed(bridge, route_path(Route.STATUS), params, **{"I-Twilio-Idempotency-Token": "token-0"})
    assert (await exchange(bridge.url, first))[0] == 204
    rows = seen_rows()
    for n in range(1, 20):
        replay = first.replace(b"token-0", f"token-{n}".encode())
        assert (await exchange(bridge.url, replay))[0] == 204
    assert seen_rows() == rows
    assert await bridge.store.count_events() == 1
    duplicates = bridge.app[METRICS].registry.get_sample_value(
        "bridge_webhooks_total", {"route": "status", "outcome": "duplicate"}
    )
    assert duplicates == 19


async def test_metrics_need_the_token_when_one_is_set(make_bridge: BridgeFactory) -> None:
    """METRICS_TOKEN set: /metrics answers only its bearer; a wrong or garbled one is a 401, never a 500."""
    async with make_bridge(metrics_token="s3cret-metrics") as bridge:
        for header in [None, b"Bearer wrong", b"Basic s3cret-metrics", b"Bearer \xc3\xa9\xff"]:
            status, headers, _ = await exchange(bridge.url, raw_request("GET", "/metrics", {"Authorization": header}
                                                                        if header else {}))  # fmt: skip
            assert (status, headers.get("www-authenticate")) == (401, "Bearer"), header
        status, _, body = await exchange(
            bridge.url, raw_request("GET", "/metrics", {"Authorization": "Bearer s3cret-metrics"})
        )
        assert status == 200
        assert b"bridge_rejected_requests_total" in body


async def test_the_server_header_names_no_version(bridge: LocalBridge) -> None:
    """Answers and refusals alike name the product, not aiohttp's or Python's version."""
    for request in [raw_request("GET", "/healthz", {}), raw_request("GET", "/nope", {}),
                    raw_request("POST", route_path(Route.STATUS), {})]:  # fmt: skip
        _, headers, _ = await exchange(bridge.url, request)
        assert headers["server"] == "twilio-zendesk-bridge"


async def test_old_dedupe_keys_are_forgotten(make_bridge: BridgeFactory) -> None:
    """A day on, the reconciler's round forgets a webhook's dedupe keys; newer ones stay."""
    from tests.conftest import ManualClock

    clock = ManualClock()
    async with make_bridge(clock=clock) as bridge:
        assert (await exchange(bridge.url, signed(bridge, route_path(Route.INCOMING), CALL)))[0] == 200
        clock.advance(23 * 3600)
        assert await bridge.reconciler.forget_old_keys() == 0
        clock.advance(2 * 3600)
        assert await bridge.reconciler.forget_old_keys() == 2  # the request's digest and its composite key
