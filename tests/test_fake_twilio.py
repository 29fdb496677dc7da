"""The Twilio stand-in against tiny TwiML apps: calls, <Dial>, status callbacks, <Record>, virtual time, capture."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bridge.devtools.fake_twilio import Delivery
from bridge.devtools.replay import load
from tests.twiml_apps import DANA, OURS, TOKEN, Rig, stand_in_rig


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A stand-in owning our number, whose voice URL and status callback are on a TwiML app."""
    async with stand_in_rig() as running:
        yield running


def ring_alice(rig: Rig, **dial: str) -> str:
    """Return TwiML that rings alice with every progress event reported, recorded two-channel."""
    attributes = {
        "action": "/dial-action",
        "timeout": "20",
        "answerOnBridge": "true",
        "record": "record-from-answer-dual",
        "recordingStatusCallback": "/recording-status",
        **dial,
    }
    attrs = " ".join(f'{k}="{v}"' for k, v in attributes.items())
    events = "initiated ringing answered completed"
    return (
        f'<Response><Dial {attrs}><Client statusCallback="/status" statusCallbackEvent="{events}">alice'
        "</Client></Dial></Response>"
    )


VOICEMAIL = (
    '<Response><Say>Please leave a message.</Say><Record action="/record-action" maxLength="119" finishOnKey="#" '
    'transcribe="true" transcribeCallback="/transcription" recordingStatusCallback="/recording-status"/>'
    "<Hangup/></Response>"
)


async def test_an_answered_call_sends_what_twilio_sends(rig: Rig) -> None:
    """Ring, answer at 8 s, talk 95 s, the agent hangs up: every callback as the recordings show them."""
    rig.app.answers.update({"/voice": ring_alice(rig), "/dial-action": "<Response><Hangup/></Response>"})
    call = await rig.fake.incoming(DANA, OURS)
    leg = await rig.fake.ringing("client:alice")
    await rig.fake.advance(8)
    await rig.fake.answer(leg)
    await rig.fake.advance(95)
    await rig.fake.hang_up(leg)
    assert call.status == "completed"
    assert rig.app.paths() == [
        "/voice",
        "/status",
        "/status",
        "/status",
        "/status",
        "/dial-action",
        "/recording-status",
        "/status",
    ]
    assert all(seen.signed for seen in rig.app.seen)
    incoming = rig.app.at("/voice")[0]
    assert incoming["CallStatus"] == "ringing"
    assert incoming["Direction"] == "inbound"
    assert incoming["FromCity"] == "SAN FRANCISCO"
    assert incoming["Called"] == OURS
    legs = [p for p in rig.app.at("/status") if p["CallSid"] == leg.sid]
    assert [(p["CallStatus"], p["SequenceNumber"]) for p in legs] == [
        ("initiated", "0"),
        ("ringing", "1"),
        ("in-progress", "2"),
        ("completed", "3"),
    ]
    assert legs[0]["Timestamp"] == "Tue, 15 Sep 2026 14:02:07 +0000"
    assert legs[3]["Timestamp"] == "Tue, 15 Sep 2026 14:03:50 +0000"
    assert (legs[3]["CallDuration"], legs[3]["Duration"], legs[3]["SipResponseCode"]) == ("95", "2", "200")
    assert legs[0]["Direction"] == "outbound-dial"
    assert legs[0]["ParentCallSid"] == call.sid
    assert legs[0]["CallbackSource"] == "call-progress-events"
    assert "ToCity" not in legs[0]
    action = rig.app.at("/dial-action")[0]
    assert action["CallStatus"] == "in-progress"
    assert action["DialCallStatus"] == "completed"
    assert (action["DialCallSid"], action["DialCallDuration"], action["DialBridged"]) == (leg.sid, "95", "true")
    assert action["RecordingDuration"] == "95"
    assert action["RecordingUrl"].startswith("https://api.twilio.com/")
    recording = rig.app.at("/recording-status")[0]
    assert recording["CallSid"] == call.sid
    assert recording["RecordingSource"] == "DialVerb"
    assert (recording["RecordingChannels"], recording["RecordingStatus"]) == ("2", "completed")
    assert recording["RecordingStartTime"] == "Tue, 15 Sep 2026 14:02:15 +0000"
    parent = [p for p in rig.app.at("/status") if p["CallSid"] == call.sid]
    assert [(p["CallStatus"], p["SequenceNumber"], p["CallDuration"]) for p in parent] == [("completed", "0", "103")]
    tokens = [seen.headers["I-Twilio-Idempotency-Token"] for seen in rig.app.seen]
    assert len(set(tokens)) == len(tokens)


async def test_no_answer_goes_to_voicemail_and_a_hang_up_ends_the_message(rig: Rig) -> None:
    """The Dial times out (answerOnBridge: the caller still `ringing`), the caller records 23 s and hangs up."""
    rig.app.answers.update({"/voice": ring_alice(rig), "/dial-action": VOICEMAIL})
    rig.fake.account.script.transcription = "Hi, call me back."
    call = await rig.fake.incoming(DANA, OURS)
    await rig.fake.advance(20)
    action = rig.app.at("/dial-action")[0]
    assert (action["CallStatus"], action["DialCallStatus"], action["DialBridged"]) == ("ringing", "no-answer", "false")
    leg = rig.fake.legs(call)[0]
    assert leg.status == "no-answer"
    await rig.fake.advance(2 + 23)  # the greeting (two seconds by the stand-in's estimate), then the message
    await rig.fake.hang_up(call)
    record = rig.app.at("/record-action")[0]
    assert (record["Digits"], record["RecordingDuration"], record["CallStatus"]) == ("hangup", "23", "completed")
    assert rig.app.paths()[-4:] == ["/record-action", "/status", "/recording-status", "/transcription"]
    status = rig.app.at("/recording-status")[0]
    assert (status["RecordingSource"], status["RecordingChannels"]) == ("RecordVerb", "1")
    transcription = rig.app.at("/transcription")[0]
    assert transcription["TranscriptionText"] == "Hi, call me back."
    assert transcription["TranscriptionStatus"] == "completed"
    assert [p.verb for p in rig.fake.heard(call)] == ["Say", "Play"]  # the greeting and the beep


async def test_a_finish_key_ends_the_message_and_the_action_drives_the_call(rig: Rig) -> None:
    """`#` stops the recording; the action's TwiML runs; an empty recording makes no action request."""
    rig.app.answers.update({"/voice": VOICEMAIL, "/record-action": "<Response><Say>Thanks</Say></Response>"})
    call = await rig.fake.incoming(DANA, OURS)
    await rig.fake.advance(12)
    await rig.fake.press(call, "#")
    assert rig.app.at("/record-action")[0]["Digits"] == "#"
    await rig.fake.advance(5)
    assert call.status == "completed"
    assert [p.text for p in rig.fake.heard(call)][-1] == "Thanks"


async def test_the_caller_hanging_up_while_it_rings_cancels_the_leg(rig: Rig) -> None:
    """The leg is `canceled` (SIP 487); the action says `no-answer` with the parent `completed`."""
    rig.app.answers.update({"/voice": ring_alice(rig), "/dial-action": "<Response/>"})
    call = await rig.fake.incoming(DANA, OURS)
    await rig.fake.advance(12)
    await rig.fake.hang_up(call)
    leg = rig.fake.legs(call)[0]
    ended = [p for p in rig.app.at("/status") if p["CallSid"] == leg.sid][-1]
    assert (leg.status, ended["CallStatus"], ended["SipResponseCode"]) == ("canceled", "canceled", "487")
    action = rig.app.at("/dial-action")[0]
    assert (action["CallStatus"], action["DialCallStatus"]) == ("completed", "no-answer")
    assert rig.app.at("/status")[-1]["CallDuration"] == "12"


async def test_a_busy_agent_and_a_dial_without_action_fall_through(rig: Rig) -> None:
    """Without action the next verb runs; a leg refused `busy` ends the Dial at once."""
    rig.app.answers["/voice"] = "<Response><Dial><Number>+16505550111</Number></Dial><Say>Bye</Say></Response>"
    call = await rig.fake.incoming(DANA, OURS)
    leg = await rig.fake.ringing("+16505550111")
    assert leg.from_ == DANA
    assert leg.to_geo is not None
    await rig.fake.reject(leg, "busy")
    await rig.fake.advance(5)
    assert leg.status == "busy"
    assert call.status == "completed"
    assert call.heard[-1].text == "Bye"


async def test_a_whisper_runs_on_the_agent_leg_before_the_bridge(rig: Rig) -> None:
    """<Number url>: the agent hears the whisper and presses 1; its document's end bridges the call."""
    rig.app.answers.update(
        {
            "/voice": '<Response><Dial action="/dial-action"><Number url="/screen" statusCallback="/status">'
            "+16505550111</Number></Dial></Response>",
            "/screen": '<Response><Gather numDigits="1" action="/screen-result" timeout="6"><Say>Press 1</Say>'
            "</Gather><Hangup/></Response>",
            "/screen-result": "<Response/>",
            "/dial-action": "<Response><Hangup/></Response>",
        }
    )
    call = await rig.fake.incoming(DANA, OURS)
    leg = await rig.fake.ringing("+16505550111")
    await rig.fake.answer(leg)
    assert rig.app.at("/screen")[0]["CallSid"] == leg.sid
    await rig.fake.press(leg, "1")
    assert rig.app.at("/screen-result")[0]["Digits"] == "1"
    await rig.fake.advance(30)
    await rig.fake.hang_up(call)
    action = rig.app.at("/dial-action")[0]
    assert (action["DialCallStatus"], action["DialBridged"], action["DialCallDuration"]) == ("completed", "true", "30")


async def test_a_whisper_nobody_answers_hangs_up_the_leg_only(rig: Rig) -> None:
    """A voicemail that picks up never presses 1: the leg ends, `DialBridged=false`, the caller still rings."""
    rig.app.answers.update(
        {
            "/voice": '<Response><Dial action="/dial-action" answerOnBridge="true"><Number url="/screen">+16505550111'
            "</Number></Dial></Response>",
            "/screen": '<Response><Gather numDigits="1" action="/r" timeout="6"><Say>Press 1</Say></Gather>'
            "<Hangup/></Response>",
            "/dial-action": "<Response><Hangup/></Response>",
        }
    )
    await rig.fake.incoming(DANA, OURS)
    await rig.fake.answer(await rig.fake.ringing("+16505550111"))
    await rig.fake.advance(10)
    action = rig.app.at("/dial-action")[0]
    assert (action["CallStatus"], action["DialCallStatus"], action["DialBridged"]) == ("ringing", "completed", "false")


@pytest.mark.parametrize(
    "document",
    [
        "not xml",
        "<Reply/>",
        "<Response><Dial><Client>a</Client><Unknown/></Dial></Response>",
        '<Response><Pause length="0"/></Response>',
        '<Response><Say bogus="1">x</Say></Response>',
        '<Response><Enqueue waitUrlMethod="PUT">q</Enqueue></Response>',
        "<Response><Gather><Dial>+1</Dial></Gather></Response>",
        "<Response><Connect/></Response>",
        '<Response><Dial record="record-from-answer"><Conference>room</Conference></Dial></Response>',
        '<Response><Dial><Conference waitUrl="/wait">room</Conference><Number>+1</Number></Dial></Response>',
    ],
)
async def test_a_bad_document_plays_the_application_error(rig: Rig, document: str) -> None:
    """Twilio refuses the document: the caller hears the application error and the call ends with an error code."""
    rig.app.answers["/voice"] = document
    call = await rig.fake.incoming(DANA, OURS)
    assert call.status == "completed"
    assert call.errors
    assert call.heard[-1].text.startswith("An application error")


async def test_an_unreachable_voice_url_is_error_11200(rig: Rig) -> None:
    """A 404 from the app is an HTTP retrieval failure."""
    rig.fake.own("+16505550199", rig.url("/missing"))
    call = await rig.fake.incoming(DANA, "+16505550199")
    assert call.errors == ["11200"]
    rig.fake.own("+16505550188", rig.url("/status"))  # answers 204, no TwiML
    assert (await rig.fake.incoming(DANA, "+16505550188")).errors == ["12300"]


async def test_a_capture_is_a_recording_the_replayer_reads(rig: Rig, tmp_path: Path) -> None:
    """Every webhook of a call, written in the recording format, loads back with `at` never decreasing."""
    rig.app.answers.update({"/voice": ring_alice(rig), "/dial-action": "<Response><Hangup/></Response>"})
    call = await rig.fake.incoming(DANA, OURS)
    leg = await rig.fake.ringing("client:alice")
    await rig.fake.advance(8)
    await rig.fake.answer(leg)
    await rig.fake.advance(95)
    await rig.fake.hang_up(leg)
    lines = load(rig.fake.write(tmp_path / "captured.jsonl", call))
    assert [line.path for line in lines] == rig.app.paths()
    assert [line.at for line in lines] == sorted(line.at for line in lines)
    assert lines[0].at == 0
    assert lines[-1].at == 103
    assert all(line.headers["I-Twilio-Idempotency-Token"] for line in lines)
    assert list(lines[1].params) == sorted(lines[1].params)


async def test_shuffled_delivery_reorders_and_doubles_callbacks_only(rig: Rig) -> None:
    """Status and recording callbacks arrive in any order, some twice with the same token; TwiML fetches do not."""
    rig.fake.delivery = Delivery(shuffle=True, duplicates=1.0, seed=3)
    rig.app.answers.update({"/voice": ring_alice(rig), "/dial-action": "<Response><Hangup/></Response>"})
    call = await rig.fake.incoming(DANA, OURS)
    leg = await rig.fake.ringing("client:alice")
    await rig.fake.answer(leg)
    await rig.fake.advance(30)
    await rig.fake.hang_up(leg)
    assert call.status == "completed"
    statuses = rig.app.at("/status")
    assert len(statuses) == 10  # five callbacks, each twice
    tokens = [s.headers["I-Twilio-Idempotency-Token"] for s in rig.app.seen if s.path == "/status"]
    assert len(set(tokens)) == 5
    assert rig.app.paths().count("/dial-action") == 1


async def test_the_rest_api_answers_as_twilio_python_expects(rig: Rig) -> None:
    """Calls fetch and list by parent, recordings by call, Twilio's errors with their codes."""
    rig.app.answers.update({"/voice": ring_alice(rig), "/dial-action": "<Response><Hangup/></Response>"})
    call = await rig.fake.incoming(DANA, OURS)
    leg = await rig.fake.ringing("client:alice")
    await rig.fake.answer(leg)
    await rig.fake.advance(40)
    await rig.fake.hang_up(leg)
    http = AsyncTwilioHttpClient()
    client = Client(rig.fake.account.sid, TOKEN, http_client=http)
    client.api.base_url = rig.fake.url
    try:
        fetched = await client.calls(call.sid).fetch_async()
        assert (fetched.status, fetched.direction, fetched._from) == ("completed", "inbound", DANA)
        children = await client.calls.list_async(parent_call_sid=call.sid)
        assert [(c.sid, c.to, c.status, c.duration) for c in children] == [(leg.sid, "client:alice", "completed", "40")]
        (recording,) = await client.recordings.list_async(call_sid=call.sid)
        assert (recording.status, recording.duration, recording.source) == ("completed", "40", "DialVerb")
        with pytest.raises(TwilioRestException) as missing:
            await client.calls("CA" + "0" * 32).fetch_async()
        assert (missing.value.status, missing.value.code) == (404, 20404)
        numbers = await client.incoming_phone_numbers.list_async(phone_number=OURS)
        assert numbers[0].voice_url == rig.url("/voice")
    finally:
        await http.close()
    wrong = Client(rig.fake.account.sid, "wrong", http_client=(other := AsyncTwilioHttpClient()))
    wrong.api.base_url = rig.fake.url
    try:
        with pytest.raises(TwilioRestException) as refused:
            await wrong.calls(call.sid).fetch_async()
        assert refused.value.code == 20003
    finally:
        await other.close()


async def test_an_api_key_is_accepted_and_scripted_failures_come_first(rig: Rig) -> None:
    """SK… and its secret authenticate; a scripted 429 answers 20429 once."""
    rig.fake.media.api_keys["SK" + "1" * 32] = "secret"
    rig.fake.account.script.rest_failures.append((429, 20429))
    http = AsyncTwilioHttpClient()
    client = Client("SK" + "1" * 32, "secret", rig.fake.account.sid, http_client=http)
    client.api.base_url = rig.fake.url
    try:
        with pytest.raises(TwilioRestException) as limited:
            await client.calls("CA" + "0" * 32).fetch_async()
        assert (limited.value.status, limited.value.code) == (429, 20429)
        assert await client.calls.list_async() == []
    finally:
        await http.close()


async def test_a_dial_recording_is_paused_through_the_parent_call(rig: Rig) -> None:
    """Twilio.CURRENT on the parent pauses the <Dial record> recording; `skip` leaves the pause out."""
    rig.app.answers.update({"/voice": ring_alice(rig), "/dial-action": "<Response><Hangup/></Response>"})
    call = await rig.fake.incoming(DANA, OURS)
    leg = await rig.fake.ringing("client:alice")
    await rig.fake.answer(leg)
    http = AsyncTwilioHttpClient()
    client = Client(rig.fake.account.sid, TOKEN, http_client=http)
    client.api.base_url = rig.fake.url
    try:
        await rig.fake.advance(10)
        paused = (
            await client.calls(call.sid)
            .recordings("Twilio.CURRENT")
            .update_async(status="paused", pause_behavior="skip")
        )
        assert paused.status == "paused"
        with pytest.raises(TwilioRestException) as on_leg:
            await client.calls(leg.sid).recordings("Twilio.CURRENT").update_async(status="paused")
        assert on_leg.value.code == 20404  # the recording lives on the parent
        await rig.fake.advance(20)
        resumed = await client.calls(call.sid).recordings(paused.sid).update_async(status="in-progress")
        assert resumed.status == "in-progress"
        await rig.fake.advance(30)
        await rig.fake.hang_up(leg)
        with pytest.raises(TwilioRestException) as ended:
            await client.calls(call.sid).recordings(paused.sid).update_async(status="paused")
        assert ended.value.code == 21220
    finally:
        await http.close()
    assert rig.app.at("/recording-status")[0]["RecordingDuration"] == "40"
