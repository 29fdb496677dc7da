"""Twilio as it really behaves: dial outcomes under answerOnBridge, screened phone agents, SharedKeys, SIP."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from bridge.appkeys import STORE
from bridge.core.calls import Call, Policy, step
from bridge.core.events import CALL_STATUSES, TERMINAL_CALL_STATUSES, CallEvent, EventKind
from bridge.core.routing import RoutingPolicy
from bridge.devtools.demo import LocalBridge
from bridge.ops.settings import Settings
from tests.conftest import BridgeFactory
from tests.routing_kit import Desk
from tests.test_calls import ANSWERED, POLICY, SID, T0, parent
from webhooks import twiml
from webhooks.names import Route, route_path, route_url
from webhooks.twiml import TwilioConfig

DIAL_STATUSES = ["completed", "answered", "busy", "no-answer", "failed", "canceled", None]
# Every CallStatus Twilio documents, one it may add one day, and none at all.
PARENT_STATUSES = [*sorted(CALL_STATUSES), "exploded", None]


def expected_verdict(call_status: str | None, dial_status: str | None, bridged: bool | None, voicemail: bool) -> str:
    """Spell the rule out independently: only a bridged leg or a caller who is gone ends with a hang-up."""
    connected = dial_status in ("completed", "answered") and bridged is not False
    if connected or call_status in ("completed", "busy", "no-answer", "failed", "canceled"):
        return "hangup"
    return "voicemail" if voicemail else "unavailable"


@pytest.mark.parametrize("voicemail", [True, False])
@pytest.mark.parametrize("bridged", [True, False, None])
@pytest.mark.parametrize("dial_status", DIAL_STATUSES)
@pytest.mark.parametrize("call_status", PARENT_STATUSES)
def test_every_dial_action_combination(
    call_status: str | None, dial_status: str | None, bridged: bool | None, voicemail: bool
) -> None:
    """Each CallStatus x DialCallStatus x DialBridged Twilio can send gets the right state and TwiML.

    With every agent rung and no queue, routing has nobody left to offer the caller to: voicemail, as it
    always was (the queue's cases are tests/test_router.py's and the stand-in's).
    """
    want = expected_verdict(call_status, dial_status, bridged, voicemail)
    policy = Policy(agents=POLICY.agents, voicemail=voicemail)
    desk = Desk(RoutingPolicy(voicemail=voicemail), policy, team=dict(POLICY.agents))
    desk.feed(ANSWERED[0], T0)
    dial = parent(EventKind.DIAL_ENDED, 20, status=call_status, dial_status=dial_status, dial_bridged=bridged)
    desk.feed(dial, T0)
    call = desk.calls[SID]
    assert call.voicemail_offered is (want == "voicemail")
    assert (call.answered_leg is not None) is (dial_status in ("completed", "answered") and bridged is not False)
    tags = {"hangup": ["Hangup"], "voicemail": ["Say", "Record", "Hangup"], "unavailable": ["Say", "Hangup"]}
    config = TwilioConfig.from_settings(Settings(twilio_auth_token="t", voicemail=voicemail))
    assert [el.tag for el in ET.fromstring(str(twiml.placement(config, call, "q")))] == tags[want]
    if call_status in TERMINAL_CALL_STATUSES:
        assert want == "hangup"  # Twilio ignores TwiML once the caller is gone


def leg_event(status: str, seq: int, seconds: float, to: str = "+16505550111") -> CallEvent:
    """A status callback of a phone agent's leg."""
    return CallEvent(kind=EventKind.LEG_STATUS, call_sid=SID, at=T0 + timedelta(seconds=seconds),
                     leg_sid="CA" + "e" * 32, leg_to=to, status=status, sequence=seq)  # fmt: skip


def screened(status: str, seconds: float = 9) -> CallEvent:
    """The agent's answer to the whisper."""
    return CallEvent(kind=EventKind.SCREENED, call_sid=SID, at=T0 + timedelta(seconds=seconds),
                     leg_sid="CA" + "e" * 32, status=status)  # fmt: skip


def fold(events: list[CallEvent], policy: Policy = POLICY) -> tuple[Call, list[str]]:
    """Fold events; return the call and the kinds of every action."""
    call, kinds = None, []
    for event in events:
        outcome = step(call, event, T0, policy)
        call, kinds = outcome.call, kinds + [action.kind.value for action in outcome.actions]
    assert call is not None
    return call, kinds


def test_a_phone_agent_takes_the_call_only_by_pressing_1() -> None:
    """Picked up is not answered: a mobile voicemail never presses 1, so it never gets the ticket."""
    picked_up = [ANSWERED[0], leg_event("ringing", 1, 1), leg_event("answered", 2, 6)]
    call, kinds = fold(picked_up)
    assert call.answered_leg is None
    assert "create_ticket" not in kinds
    call, kinds = fold([*picked_up, screened("accepted")])
    assert call.answered_leg == "CA" + "e" * 32
    assert kinds.count("create_ticket") == 1
    call, kinds = fold([*picked_up, screened("declined"), leg_event("completed", 3, 12)])
    assert call.answered_leg is None
    # Screening off: the pick-up is the answer, as before.
    call, _ = fold(picked_up, Policy(agents=POLICY.agents, screen_phone_agents=False))
    assert call.answered_leg == "CA" + "e" * 32


def test_a_leg_answered_but_never_bridged_is_not_the_answering_leg() -> None:
    """DialBridged=false after a pick-up: the caller still gets voicemail and its via 44 ticket."""
    unscreened = Policy(agents={**POLICY.agents, "+16505550111": 1003}, screen_phone_agents=False, recording_wait=0)
    events = [
        ANSWERED[0],
        leg_event("answered", 2, 6),
        parent(
            EventKind.DIAL_ENDED,
            20,
            status="ringing",
            dial_status="completed",
            dial_bridged=False,
            leg_sid="CA" + "e" * 32,
        ),
        leg_event("completed", 3, 20),  # a late callback cannot make it the answer again
    ]
    desk = Desk(RoutingPolicy(), unscreened, team=dict(unscreened.agents))
    for event in events:
        desk.feed(event, T0)
    call = desk.calls[SID]
    assert call.answered_leg is None
    assert call.voicemail_offered  # every agent was rung: routing has nobody else, and voicemail follows
    assert desk.kinds(SID).count("create_ticket") == 1  # made when the pick-up looked like an answer
    message = CallEvent(kind=EventKind.RECORDING, call_sid=SID, at=T0, recording_sid="RE1", recording_url="https://r/RE1",
                        recording_duration=9, recording_status="completed", recording_of="voicemail")  # fmt: skip
    desk.policy = Policy(**{**unscreened.__dict__, "transcribe_voicemail": False})
    desk.feed(message, T0)
    assert desk.kinds(SID).count("add_voice_comment") == 1  # the message is that ticket's one voice comment


def config(**overrides: object) -> TwilioConfig:
    """The TwiML builders' view of some settings."""
    return TwilioConfig.from_settings(Settings(twilio_auth_token="t", public_url="https://b.example.com", **overrides))


def test_phone_agents_are_screened_and_devices_are_not() -> None:
    """<Number> legs get the whisper (with the caller's sid), <Client> and <Sip> legs ring as they are."""
    agents = {"client:alice": 1001, "+16505550111": 1003, "sip:dave@acme.sip.twilio.com": 1002}
    root = ET.fromstring(str(twiml.offer(config(), "CA" + "1" * 32, list(agents), 20, turn=1)))
    dial = root.find("Dial")
    assert dial is not None
    assert dial.get("answerOnBridge") == "true"
    number, client, sip = dial.find("Number"), dial.find("Client"), dial.find("Sip")
    assert number is not None
    assert client is not None
    assert sip is not None
    url = urlsplit(number.get("url") or "")
    assert f"{url.scheme}://{url.netloc}{url.path}" == route_url("https://b.example.com", Route.SCREEN)
    assert parse_qs(url.query) == {"ParentCallSid": ["CA" + "1" * 32]}
    assert client.get("url") is None
    assert sip.get("url") is None
    assert sip.text == "sip:dave@acme.sip.twilio.com"
    unscreened = ET.fromstring(str(twiml.offer(config(screen_phone_agents=False), "CA1", list(agents), 20, turn=1)))
    assert unscreened.find("Dial/Number").get("url") is None  # type: ignore[union-attr]


def test_whisper_and_its_result() -> None:
    """The whisper says the number digit by digit and asks for 1; 1 connects, anything else hangs up."""
    root = ET.fromstring(str(twiml.screen(config(), "+14155550123", "CA" + "1" * 32)))
    gather = root.find("Gather")
    assert gather is not None
    assert gather.get("numDigits") == "1"
    assert gather.get("action", "").startswith(route_url("https://b.example.com", Route.SCREEN_RESULT) + "?")
    assert "1 4 1 5 5 5 5 0 1 2 3" in (gather.findtext("Say") or "")
    assert [el.tag for el in root] == ["Gather", "Hangup"]  # no digit: the agent's leg hangs up
    anonymous = ET.fromstring(str(twiml.screen(config(), "Anonymous", "")))
    assert "anonymous caller" in (anonymous.findtext("Gather/Say") or "")
    assert [el.tag for el in ET.fromstring(str(twiml.screen_result(True)))] == []
    assert [el.tag for el in ET.fromstring(str(twiml.screen_result(False)))] == ["Hangup"]


def test_outbound_calls_ring_back_to_the_agent_and_keep_maxlength_transcribable() -> None:
    """The agent hears the customer's phone ring (answerOnBridge); a full voicemail is still transcribed."""
    dial = ET.fromstring(str(twiml.dial_number(config(caller_id="+16505550100"), "+14155550199"))).find("Dial")
    assert dial is not None
    assert (dial.get("answerOnBridge"), dial.get("callerId")) == ("true", "+16505550100")
    record = ET.fromstring(str(twiml.voicemail(config()))).find("Record")
    assert record is not None
    assert int(record.get("maxLength") or 0) < 120


async def signed_post(bridge: LocalBridge, route: Route, params: dict[str, str], secret: str,
                      settings: str | None) -> int:  # fmt: skip
    """Post params signed with `secret`, announcing `settings` as X-Twilio-Webhooks-Signature-Settings."""
    url = bridge.settings.public_url + route_path(route)
    algorithm = "HMAC_SHA256" if settings and "SHA256" in settings else None
    headers = {"X-Twilio-Signature": RequestValidator(secret).compute_signature(url, params, algorithm)}
    if settings is not None:
        headers["X-Twilio-Webhooks-Signature-Settings"] = settings
    async with aiohttp.ClientSession() as session, session.post(bridge.url + route_path(route), data=params,
                                                                  headers=headers) as response:  # fmt: skip
        return response.status


async def test_webhooks_signed_with_a_shared_key(make_bridge: BridgeFactory) -> None:
    """A SharedKey we were given verifies; an unknown key id is 403, never a fallback to the auth token."""
    params = {"CallSid": "CA" + "9" * 32, "From": "+14155550123", "To": "+16505550100", "CallStatus": "completed"}
    async with make_bridge(twilio_webhook_keys="key1=first-secret,key2=second-secret") as bridge:
        ok = await signed_post(bridge, Route.STATUS, params, "second-secret", "key=key2,algorithm=HMAC_SHA256")
        assert ok == 204
        unknown = await signed_post(bridge, Route.STATUS, params, bridge.auth_token, "key=key9,algorithm=HMAC_SHA1")
        assert unknown == 403
        wrong = await signed_post(bridge, Route.STATUS, params, "first-secret", "key=key2,algorithm=HMAC_SHA256")
        assert wrong == 403
        legacy = {**params, "CallStatus": "in-progress"}
        assert await signed_post(bridge, Route.STATUS, legacy, bridge.auth_token, None) == 204
        assert await bridge.app[STORE].count_events() == 2


async def test_screen_routes_are_signed_and_the_result_is_stored(make_bridge: BridgeFactory) -> None:
    """The whisper answers TwiML without storing; the agent's 1 is stored against the caller's call."""
    leg = {"CallSid": "CA" + "e" * 32, "From": "+14155550123", "To": "+16505550111", "CallStatus": "in-progress",
           "Direction": "outbound-dial"}  # fmt: skip
    parent_sid = "CA" + "f" * 32
    async with make_bridge() as bridge:
        query = f"?ParentCallSid={parent_sid}"
        for route, params, want in [
            (Route.SCREEN, leg, ["Gather", "Hangup"]),
            (Route.SCREEN_RESULT, {**leg, "Digits": "1"}, []),
        ]:
            url = bridge.settings.public_url + route_path(route) + query
            signature = RequestValidator(bridge.auth_token).compute_signature(url, params)
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    bridge.url + route_path(route) + query, data=params, headers={"X-Twilio-Signature": signature}
                ) as response,
            ):
                assert response.status == 200
                assert [el.tag for el in ET.fromstring(await response.text())] == want
        call = await bridge.store.get_call(parent_sid)
        assert call is not None
        assert call.legs["CA" + "e" * 32].screen == "accepted"
        assert await bridge.app[STORE].count_events() == 1
