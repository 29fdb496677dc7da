"""Hostile traffic on the public URL: malformed requests are clean 4xx, logs cannot be forged, slow bodies end.

Every request here is written byte for byte on a socket, as an attacker with only the URL would send it.
"""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from twilio.request_validator import RequestValidator

from bridge.devtools.demo import LocalBridge
from bridge.ops.logs import JsonFormatter, MaskingFormatter
from tests.hostile_kit import exchange, raw_request
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
