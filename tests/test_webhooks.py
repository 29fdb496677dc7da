"""HTTP tests of the Twilio adapter: signatures, bad input, TwiML, and that rejections store nothing."""

from __future__ import annotations

import logging
import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Any

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from bridge.appkeys import METRICS, STORE
from bridge.devtools.demo import LocalBridge
from tests.conftest import BridgeFactory
from webhooks.names import PREFIX, UNKNOWN, Route, route_path, route_url

CALL = {
    "AccountSid": "AC455c03f9e322135d9c681cabb529d68e",
    "CallSid": "CA" + "c" * 32,
    "From": "+14155550123",
    "To": "+16505550100",
    "CallStatus": "ringing",
    "Direction": "inbound",
}


async def post(
    bridge: LocalBridge,
    route: Route,
    params: dict[str, str],
    *,
    sign_url: str | None = None,
    sign_params: dict[str, str] | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    query: str = "",
) -> tuple[int, str, str]:
    """Send a (by default correctly) signed webhook; return status, content type and body."""
    path = route_path(route) + (f"?{query}" if query else "")
    signature = RequestValidator(token or bridge.auth_token).compute_signature(
        sign_url or bridge.settings.public_url + path, params if sign_params is None else sign_params
    )
    all_headers = {"X-Twilio-Signature": signature, **(headers or {})}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, bridge.url + path, data=params, headers=all_headers) as response,
    ):
        return response.status, response.content_type, await response.text()


async def nothing_stored(bridge: LocalBridge) -> bool:
    """Tell whether the bridge stored no event and queued no action."""
    store = bridge.app[STORE]
    return await store.count_events() == 0 and (await store.stats(bridge.clock())).pending == 0


def test_library_test_vector() -> None:
    """twilio's published vector: our signing and checking agree with it."""
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    validator = RequestValidator("12345")
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert validator.compute_signature(url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert validator.validate(url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


async def test_valid_signature_rings_agents_with_absolute_callbacks(bridge: LocalBridge) -> None:
    """A signed incoming call is stored and answered with a <Dial> of every agent."""
    status, content_type, body = await post(bridge, Route.INCOMING, CALL)
    assert status == 200
    assert content_type == "text/xml"
    dial = ET.fromstring(body).find("Dial")
    assert dial is not None
    assert dial.get("answerOnBridge") == "true"
    assert dial.get("timeout") == "20"
    assert dial.get("record") == "record-from-answer-dual"
    assert dial.get("action") == route_url(bridge.url, Route.DIAL_ACTION) + "?turn=1"  # the first ring
    assert dial.get("recordingStatusCallback") == route_url(bridge.url, Route.RECORDING_STATUS)
    nouns = list(dial)
    assert [(n.tag, n.text) for n in nouns] == [
        ("Client", "alice"),
        ("Client", "bob"),
        ("Number", "+16505550111"),
    ]
    for noun in nouns:
        assert noun.get("statusCallback") == route_url(bridge.url, Route.STATUS)
        assert noun.get("statusCallbackEvent") == "initiated ringing answered completed"
    assert await bridge.app[STORE].count_events() == 1


@pytest.mark.parametrize(
    ("case", "overrides"),
    [
        ("tampered parameter", {"sign_params": {**CALL, "From": "+19995550000"}}),
        ("wrong URL", {"sign_url": route_url("https://evil.example.com", Route.INCOMING)}),
        ("wrong token", {"token": "not-the-token"}),
        ("missing header", {"headers": {"X-Twilio-Signature": ""}}),
    ],
)
async def test_forged_requests_get_403_and_store_nothing(bridge: LocalBridge, case: str, overrides: Any) -> None:
    """Anything not signed with our token for our URL is refused before parsing."""
    status, content_type, body = await post(bridge, Route.INCOMING, CALL, **overrides)
    assert status == 403, case
    assert content_type == "application/json"
    assert "X-Twilio-Signature" in body
    assert await nothing_stored(bridge)


async def test_unknown_algorithm_or_unsigned_json_is_403_not_500(bridge: LocalBridge) -> None:
    """Odd signature settings or a JSON body without a body hash are forgeries, refused like any other."""
    status, _, _ = await post(
        bridge, Route.STATUS, CALL, headers={"X-Twilio-Webhooks-Signature-Settings": "key=x,algorithm=MD5"}
    )
    assert status == 403
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            route_url(bridge.url, Route.STATUS),
            data='{"CallSid": "CA1"}',
            headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl", "Content-Type": "application/json"},
        )
        assert response.status == 403
    assert await nothing_stored(bridge)


async def test_https_public_url_behind_an_http_proxy(make_bridge: BridgeFactory) -> None:
    """TLS ends at the proxy: Twilio signed https://…, we receive http:// on an internal port."""
    async with make_bridge(public_url="https://bridge.example.com") as bridge:
        url = route_url("https://bridge.example.com", Route.STATUS)
        params = {**CALL, "CallStatus": "completed", "SequenceNumber": "0"}
        status, _, _ = await post(bridge, Route.STATUS, params, sign_url=url, headers={"X-Forwarded-Proto": "https"})
        assert status == 204
        status, _, _ = await post(bridge, Route.STATUS, params, sign_url=route_url(bridge.url, Route.STATUS))
        assert status == 403  # signed for the internal URL: not what Twilio would sign


async def test_query_string_is_part_of_the_signed_url(bridge: LocalBridge) -> None:
    """A query string in the configured URL is signed byte for byte."""
    path = route_path(Route.STATUS) + "?agent=alice"
    params = {**CALL, "CallStatus": "completed"}
    signature = RequestValidator(bridge.auth_token).compute_signature(bridge.url + path, params)
    async with aiohttp.ClientSession() as session:
        response = await session.post(bridge.url + path, data=params, headers={"X-Twilio-Signature": signature})
        assert response.status == 204


async def test_missing_call_sid_is_400_naming_the_field(bridge: LocalBridge) -> None:
    """A signed request without CallSid gets a JSON 400 that names CallSid."""
    params = {k: v for k, v in CALL.items() if k != "CallSid"}
    status, content_type, body = await post(bridge, Route.INCOMING, params)
    assert status == 400
    assert content_type == "application/json"
    assert '"field": "CallSid"' in body
    assert await nothing_stored(bridge)


async def test_bad_values_are_400(bridge: LocalBridge) -> None:
    """Malformed numbers and timestamps are named, not crashed on."""
    base = {**CALL, "ParentCallSid": "CA" + "d" * 32, "CallStatus": "ringing"}
    for params, field in [
        ({**base, "SequenceNumber": "two"}, "SequenceNumber"),
        ({**base, "Timestamp": "yesterday-ish"}, "Timestamp"),
        ({k: v for k, v in base.items() if k != "CallStatus"}, "CallStatus"),
    ]:
        status, _, body = await post(bridge, Route.STATUS, params)
        assert status == 400, field
        assert f'"field": "{field}"' in body
    assert await nothing_stored(bridge)


async def test_oversized_body_is_413(bridge: LocalBridge) -> None:
    """More than 64 KiB is refused before the signature is even looked at."""
    status, content_type, _ = await post(bridge, Route.STATUS, {**CALL, "Junk": "x" * 70_000})
    assert status == 413
    assert content_type == "application/json"
    assert await nothing_stored(bridge)


async def test_wrong_method_is_405_and_wrong_type_is_415(bridge: LocalBridge) -> None:
    """GET on a webhook route is 405; a signed JSON body is 415."""
    status, content_type, _ = await post(bridge, Route.STATUS, {}, method="GET")
    assert status == 405
    assert content_type == "application/json"
    path = route_path(Route.STATUS)
    body = '{"CallSid": "CA1"}'
    import hashlib

    digest = hashlib.sha256(body.encode()).hexdigest()
    url = f"{bridge.url}{path}?bodySHA256={digest}"
    signature = RequestValidator(bridge.auth_token).compute_signature(url, {})
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            url, data=body, headers={"X-Twilio-Signature": signature, "Content-Type": "application/json"}
        )
        assert response.status == 415
    assert await nothing_stored(bridge)


async def test_wrong_method_and_unknown_paths_are_refused_and_counted(bridge: LocalBridge) -> None:
    """Under the prefix: GET is 405 naming POST, an unknown route 404; both counted, with a bounded route label."""

    def count(route: str, outcome: str) -> float:
        value = bridge.app[METRICS].registry.get_sample_value(
            "bridge_webhooks_total", {"route": route, "outcome": outcome}
        )
        return value or 0.0

    async with aiohttp.ClientSession() as session:
        async with session.get(route_url(bridge.url, Route.STATUS)) as response:
            assert (response.status, response.headers.get("Allow")) == (405, "POST")
            assert await response.json() == {"error": "Method Not Allowed"}
        async with session.post(bridge.url + PREFIX + "/nope", data=CALL) as response:
            assert response.status == 404
            assert await response.json() == {"error": "Not Found"}
        async with session.post(bridge.url + PREFIX, data=CALL) as response:
            assert response.status == 404  # the bare prefix is no webhook: not counted
    assert count(Route.STATUS, "rejected_405") == 1
    assert count(UNKNOWN, "rejected_404") == 1
    assert await nothing_stored(bridge)


async def test_an_unknown_call_status_is_stored_and_logged_not_refused(
    bridge: LocalBridge, caplog: pytest.LogCaptureFixture
) -> None:
    """A CallStatus Twilio adds one day is kept (Twilio would not retry a 400) and said in the log."""
    caplog.set_level(logging.INFO, logger="bridge")
    params = {**CALL, "ParentCallSid": "CA" + "d" * 32, "CallStatus": "exploded", "SequenceNumber": "1"}
    status, _, _ = await post(bridge, Route.STATUS, params)
    assert status == 204
    assert await bridge.app[STORE].count_events() == 1
    assert any("'exploded'" in record.getMessage() and record.levelname == "WARNING" for record in caplog.records)


async def test_duplicates_are_stored_once(bridge: LocalBridge) -> None:
    """The same callback twice (with and without the idempotency token) is one event."""
    params = {**CALL, "ParentCallSid": "CA" + "d" * 32, "SequenceNumber": "1"}
    for headers in ({"I-Twilio-Idempotency-Token": "idem-1"}, {"I-Twilio-Idempotency-Token": "idem-1"}, {}):
        status, _, _ = await post(bridge, Route.STATUS, params, headers=headers)
        assert status == 204
    assert await bridge.app[STORE].count_events() == 1


async def ended_ring(bridge: LocalBridge, number: int, **fields: str) -> list[str]:
    """Start call `number` (an offer rings the agents), then end its ring as `fields` say; return the TwiML's verbs."""
    call = {**CALL, "CallSid": f"CA{number:032d}"}
    await post(bridge, Route.INCOMING, call)
    _, _, body = await post(bridge, Route.DIAL_ACTION, {**call, **fields}, query="turn=1")
    return [el.tag for el in ET.fromstring(body)]


async def test_dial_action_twiml(bridge: LocalBridge) -> None:
    """Bridged: hang up. Unanswered with the caller on the line: greeting and <Record>. Caller gone: hang up."""
    answered = {"CallStatus": "in-progress", "DialCallStatus": "completed", "DialBridged": "true"}
    assert await ended_ring(bridge, 1, **answered) == ["Hangup"]
    unanswered = {"CallStatus": "in-progress", "DialCallStatus": "no-answer", "DialBridged": "false"}
    call = {**CALL, "CallSid": f"CA{2:032d}"}
    await post(bridge, Route.INCOMING, call)
    _, _, body = await post(bridge, Route.DIAL_ACTION, {**call, **unanswered}, query="turn=1")
    root = ET.fromstring(body)
    assert [el.tag for el in root] == ["Say", "Record", "Hangup"]
    record = root.find("Record")
    assert record is not None
    assert record.get("action") == route_url(bridge.url, Route.RECORD_ACTION)
    assert record.get("finishOnKey") == "#"
    assert record.get("playBeep") == "true"
    assert record.get("maxLength") == "119"  # Twilio transcribes only messages shorter than 120 s
    assert record.get("transcribe") == "true"
    assert record.get("transcribeCallback") == route_url(bridge.url, Route.TRANSCRIPTION)
    assert record.get("recordingStatusCallbackEvent") == "completed absent"
    # A retry of that request gets the same answer.
    _, _, again = await post(bridge, Route.DIAL_ACTION, {**call, **unanswered}, query="turn=1")
    assert again == body
    # answerOnBridge: the caller was never answered, so Twilio says `ringing`; still there, still offered.
    assert await ended_ring(bridge, 3, **{**unanswered, "CallStatus": "ringing"}) == ["Say", "Record", "Hangup"]
    assert await ended_ring(bridge, 4, **{**unanswered, "CallStatus": "completed"}) == ["Hangup"]
    _, _, body = await post(bridge, Route.RECORD_ACTION, {**CALL, "CallStatus": "completed"})
    assert [el.tag for el in ET.fromstring(body)] == ["Hangup"]


async def test_voicemail_off_says_sorry(make_bridge: BridgeFactory) -> None:
    """VOICEMAIL=false: nobody answered means a short message and hang-up."""
    async with make_bridge(voicemail=False) as bridge:
        unanswered = {"CallStatus": "in-progress", "DialCallStatus": "no-answer", "DialBridged": "false"}
        assert await ended_ring(bridge, 5, **unanswered) == ["Say", "Hangup"]


async def test_outgoing_dials_valid_numbers_only(bridge: LocalBridge) -> None:
    """From=client:alice to an E.164 number dials it with our caller id; anything else is refused."""
    params = {**CALL, "From": "client:alice", "To": "+14155550199", "Called": ""}
    _, _, body = await post(bridge, Route.OUTGOING, params)
    dial = ET.fromstring(body).find("Dial")
    assert dial is not None
    assert dial.get("callerId") == "+16505550100"
    number = dial.find("Number")
    assert number is not None
    assert number.text == "+14155550199"
    assert number.get("statusCallbackEvent") == "initiated ringing answered completed"
    for bad in ("4155550199", "+1", "client:bob", "+1415555019912345"):
        _, _, body = await post(bridge, Route.OUTGOING, {**params, "To": bad})
        assert [el.tag for el in ET.fromstring(body)] == ["Say", "Hangup"], bad
    assert await bridge.app[STORE].count_events() == 1


async def test_health_and_readiness(bridge: LocalBridge) -> None:
    """/healthz reports the outbox; /readyz says ready while the store and worker run."""
    async with aiohttp.ClientSession() as session:
        async with session.get(bridge.url + "/healthz") as response:
            data = await response.json()
            assert response.status == 200
            assert data["outbox"]["pending"] == 0
        async with session.get(bridge.url + "/readyz") as response:
            assert response.status == 200


def test_webhooks_reach_neither_the_worker_nor_the_tools() -> None:
    """Importing webhooks/ pulls in nothing of the Zendesk side, the mover, the developer tools or the app."""
    # It reads the app's resources through bridge.appkeys, whose keys hold protocols where the class is far.
    walls = ("bridge.zendesk", "bridge.devtools", "bridge.twilio.mover", "bridge.resources", "bridge.app")
    script = (
        "import sys, webhooks.routes\n"
        f"walls = {walls!r}\n"
        "print(sorted(m for m in sys.modules if any(m == w or m.startswith(w + '.') for w in walls)))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stderr


MENU = """
[[line]]
number = "+16505550100"
name = "Support"

[line.menu]
prompt = "For sales press 1. For us press the hash key."
timeout = 7
1 = "line:Sales"
"#" = "voicemail"

[[line]]
number = "+16505550101"
name = "Sales"
"""


async def test_the_menu_asks_for_one_key_and_its_answers_are_stored_once(make_bridge: BridgeFactory) -> None:
    """A line with a menu: a one-key <Gather> whose action is made without a key too, # being a key; a retried
    answer gets the same TwiML and stores nothing twice; a key it does not name asks again, as the next turn."""
    async with make_bridge(lines=MENU) as bridge:
        _, _, body = await post(bridge, Route.INCOMING, CALL)
        root = ET.fromstring(body)
        gather = root.find("Gather")
        assert [el.tag for el in root] == ["Gather"]
        assert gather is not None
        assert gather.get("numDigits") == "1"
        assert gather.get("timeout") == "7"
        assert gather.get("actionOnEmptyResult") == "true"  # no key within the timeout: the default, not past it
        assert gather.get("finishOnKey") == ""  # '#' is a key of this menu, not the end of the input
        assert gather.get("action") == route_url(bridge.url, Route.MENU) + "?turn=1"
        assert [(el.tag, el.text) for el in gather] == [("Say", "For sales press 1. For us press the hash key.")]
        wrong = {**CALL, "CallStatus": "in-progress", "Digits": "5"}
        token = {"I-Twilio-Idempotency-Token": "t1"}
        _, _, again = await post(bridge, Route.MENU, wrong, query="turn=1", headers=token)
        retried = await post(bridge, Route.MENU, wrong, query="turn=1", headers=token)
        assert retried[2] == again
        assert [el.tag for el in ET.fromstring(again)] == ["Say", "Gather"]
        second = ET.fromstring(again).find("Gather")
        assert second is not None
        assert second.get("action") == route_url(bridge.url, Route.MENU) + "?turn=2"
        assert await bridge.app[STORE].count_events() == 2
        status, _, body = await post(bridge, Route.MENU, {**wrong, "Digits": "#"}, query="turn=2")
        assert status == 200
        assert [el.tag for el in ET.fromstring(body)] == ["Say", "Record", "Hangup"]  # voicemail, nobody rung
