"""The Twilio stand-in's calls placed through the REST API: the CPS queue, outcomes, AMD, recording, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bridge.devtools.fake_twilio import Delivery
from tests.twiml_apps import DANA, OURS, Rig, raw_post, rest_client, stand_in_rig

HELLO = "<Response><Say>Hello from the bridge</Say></Response>"
EVERY_EVENT = ["initiated", "ringing", "answered", "completed"]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A stand-in owning our number, and its TwiML app."""
    async with stand_in_rig() as running:
        yield running


@pytest.fixture
async def client(rig: Rig) -> AsyncIterator[Client]:
    """twilio-python's client pointed at the stand-in."""
    async with rest_client(rig.fake) as twilio:
        yield twilio


async def test_a_placed_call_is_queued_rings_and_runs_its_url_when_answered(rig: Rig, client: Client) -> None:
    """201 with `queued`; initiated, ringing, answered, completed as outbound-api; the Url is requested on answer."""
    rig.app.answers["/agent-first"] = HELLO
    placed = await client.calls.create_async(
        to=DANA,
        from_=OURS,
        url=rig.url("/agent-first"),
        status_callback=rig.url("/status"),
        status_callback_event=EVERY_EVENT,  # twilio-python sends repeated keys
    )
    assert (placed.status, placed.direction, placed.queue_time) == ("queued", "outbound-api", "0")
    call = await rig.fake.ringing(DANA)
    assert call.sid == placed.sid
    assert rig.app.paths() == ["/status", "/status"]
    await rig.fake.advance(4)
    await rig.fake.answer(call)
    url = rig.app.at("/agent-first")[0]
    assert (url["CallStatus"], url["Direction"], url["From"], url["To"]) == ("in-progress", "outbound-api", OURS, DANA)
    assert "AnsweredBy" not in url
    await rig.fake.advance(10)
    statuses = [(p["CallStatus"], p["SequenceNumber"], p["Direction"]) for p in rig.app.at("/status")]
    assert statuses == [
        ("initiated", "0", "outbound-api"),
        ("ringing", "1", "outbound-api"),
        ("in-progress", "2", "outbound-api"),
        ("completed", "3", "outbound-api"),
    ]
    final = rig.app.at("/status")[-1]
    assert (final["CallDuration"], final["SipResponseCode"]) == ("2", "200")  # the Say: four words, two seconds
    assert call.heard[-1].text == "Hello from the bridge"


async def test_status_events_may_also_come_space_separated_and_inline_twiml_runs(rig: Rig) -> None:
    """`StatusCallbackEvent=initiated completed` is one value holding two events; Twiml needs no request."""
    status, body = await raw_post(
        rig.fake,
        "Calls.json",
        [
            ("To", "client:alice"),
            ("From", OURS),
            ("Twiml", HELLO),
            ("StatusCallback", rig.url("/status")),
            ("StatusCallbackEvent", "initiated completed"),
        ],
    )
    assert (status, body["status"]) == (201, "queued")
    call = await rig.fake.ringing("client:alice")
    await rig.fake.answer(call)
    await rig.fake.advance(5)
    assert [p["CallStatus"] for p in rig.app.at("/status")] == ["initiated", "completed"]
    assert call.heard[-1].text == "Hello from the bridge"


async def test_calls_leave_the_queue_at_one_per_second(rig: Rig, client: Client) -> None:
    """Twilio's default CPS of one: the second call waits a second, the third two; queue_time says so."""
    rig.app.answers["/agent-first"] = HELLO
    placed = [
        await client.calls.create_async(to=f"+1415555010{n}", from_=OURS, url=rig.url("/agent-first")) for n in range(3)
    ]
    assert [p.queue_time for p in placed] == ["0", "1000", "2000"]
    calls = [rig.fake.account.calls[p.sid] for p in placed]
    assert [c.status for c in calls] == ["ringing", "queued", "queued"]
    await rig.fake.advance(1)
    assert [c.status for c in calls] == ["ringing", "ringing", "queued"]
    await rig.fake.advance(1)
    assert calls[2].status == "ringing"
    fetched = await client.calls(placed[2].sid).fetch_async()
    assert fetched.queue_time == "2000"


async def test_a_call_that_would_wait_a_day_is_refused_and_one_left_waiting_a_day_is_canceled(
    rig: Rig, client: Client
) -> None:
    """Error 22005 past 24 hours of queue; a call still queued after 24 hours (the CPS lowered) is canceled."""
    rig.fake.calls_per_second = 1 / 43200  # one call every twelve hours
    placed = [
        await client.calls.create_async(
            to=f"+1415555011{n}", from_=OURS, twiml=HELLO, status_callback=rig.url("/status")
        )
        for n in range(3)
    ]
    assert [p.queue_time for p in placed] == ["0", "43200000", "86400000"]
    with pytest.raises(TwilioRestException) as full:
        await client.calls.create_async(to="+14155550119", from_=OURS, twiml=HELLO)
    assert (full.value.status, full.value.code) == (400, 22005)
    rig.fake.calls_per_second = 1 / 50000
    await rig.fake.advance(86400)
    calls = [rig.fake.account.calls[p.sid] for p in placed]
    assert [c.status for c in calls] == ["no-answer", "no-answer", "canceled"]
    canceled = [p for p in rig.app.at("/status") if p["CallSid"] == placed[2].sid]
    assert [(p["CallStatus"], p["SipResponseCode"]) for p in canceled] == [("canceled", "487")]


@pytest.mark.parametrize(
    ("outcome", "status", "sip"),
    [("busy", "busy", "486"), ("failed", "failed", "480"), ("timeout", "no-answer", "487")],
)
async def test_an_unanswered_call_ends_with_its_outcome_and_requests_nothing(
    rig: Rig, client: Client, outcome: str, status: str, sip: str
) -> None:
    """Busy and failed when the callee refuses, no-answer after Timeout; the Url is never requested."""
    await client.calls.create_async(
        to=DANA, from_=OURS, url=rig.url("/agent-first"), timeout=15, status_callback=rig.url("/status")
    )
    call = await rig.fake.ringing(DANA)
    if outcome == "timeout":
        await rig.fake.advance(14)
        assert call.status == "ringing"
        await rig.fake.advance(1)
    else:
        await rig.fake.reject(call, outcome)
    (final,) = rig.app.at("/status")
    assert (final["CallStatus"], final["SipResponseCode"], final["CallDuration"]) == (status, sip, "0")
    assert "/agent-first" not in rig.app.paths()


async def test_synchronous_amd_holds_the_url_request_until_it_decides(rig: Rig, client: Client) -> None:
    """AnsweredBy rides on the Url request, sent once detection is done; no verdict is `unknown` at the timeout."""
    rig.app.answers["/agent-first"] = HELLO
    await client.calls.create_async(
        to=DANA, from_=OURS, url=rig.url("/agent-first"), machine_detection="DetectMessageEnd"
    )
    call = await rig.fake.ringing(DANA)
    await rig.fake.answer(call, answered_by="machine_end_beep", detection=6)
    await rig.fake.advance(5)
    assert rig.app.at("/agent-first") == []
    await rig.fake.advance(1)
    assert rig.app.at("/agent-first")[0]["AnsweredBy"] == "machine_end_beep"
    assert (await client.calls(call.sid).fetch_async()).answered_by == "machine_end_beep"
    await client.calls.create_async(
        to="+14155550199",
        from_=OURS,
        url=rig.url("/agent-first"),
        machine_detection="Enable",
        machine_detection_timeout=5,
    )
    other = await rig.fake.ringing("+14155550199")
    await rig.fake.answer(other)
    await rig.fake.advance(5)
    assert rig.app.at("/agent-first")[1]["AnsweredBy"] == "unknown"
    await client.calls.create_async(to="+14155550142", from_=OURS, twiml=HELLO, machine_detection="Enable")
    third = await rig.fake.ringing("+14155550142")
    with pytest.raises(ValueError, match="not an answer of MachineDetection=Enable"):
        await rig.fake.answer(third, answered_by="machine_end_beep")  # a test's typo surfaces at once


async def test_asynchronous_amd_runs_the_url_at_once_and_calls_back_later(rig: Rig, client: Client) -> None:
    """AsyncAmd: the Url now, without AnsweredBy; AnsweredBy and MachineDetectionDuration (ms) to the callback."""
    rig.app.answers["/agent-first"] = '<Response><Pause length="20"/></Response>'
    rig.fake.delivery = Delivery(duplicates=1.0, seed=2)
    await client.calls.create_async(
        to=DANA,
        from_=OURS,
        url=rig.url("/agent-first"),
        machine_detection="Enable",
        async_amd="true",
        async_amd_status_callback=rig.url("/amd"),
    )
    call = await rig.fake.ringing(DANA)
    await rig.fake.answer(call, answered_by="human", detection=2.4)
    assert "AnsweredBy" not in rig.app.at("/agent-first")[0]
    await rig.fake.advance(3)
    amd = rig.app.at("/amd")
    assert len(amd) == 2  # delivered twice, as Twilio may
    assert (amd[0]["AnsweredBy"], amd[0]["MachineDetectionDuration"], amd[0]["CallSid"]) == ("human", "2400", call.sid)
    tokens = {seen.headers["I-Twilio-Idempotency-Token"] for seen in rig.app.seen if seen.path == "/amd"}
    assert len(tokens) == 1
    await client.calls.create_async(
        to="+14155550199", from_=OURS, url=rig.url("/agent-first"), machine_detection="Enable", async_amd="true"
    )
    other = await rig.fake.ringing("+14155550199")
    await rig.fake.answer(other, answered_by="machine_start")
    assert other.errors == ["21262"]  # no callback to tell


async def test_record_sends_a_two_channel_recording_and_its_url_on_the_final_status(rig: Rig, client: Client) -> None:
    """Record with RecordingChannels=dual: RecordingSource OutboundAPI, 2 channels; the final status names it."""
    rig.app.answers["/agent-first"] = '<Response><Pause length="30"/></Response>'
    await client.calls.create_async(
        to=DANA,
        from_=OURS,
        url=rig.url("/agent-first"),
        record=True,
        recording_channels="dual",
        recording_status_callback=rig.url("/recording-status"),
        status_callback=rig.url("/status"),
        send_digits="1w2",
    )
    call = await rig.fake.ringing(DANA)
    await rig.fake.answer(call)
    await rig.fake.advance(30)
    recording = rig.app.at("/recording-status")[0]
    assert (recording["RecordingSource"], recording["RecordingChannels"], recording["RecordingDuration"]) == (
        "OutboundAPI",
        "2",
        "30",
    )
    final = rig.app.at("/status")[0]
    assert (final["RecordingSid"], final["RecordingDuration"]) == (recording["RecordingSid"], "30")
    assert call.heard[0].attributes == {"digits": "1w2"}


async def test_an_application_sid_supplies_the_voice_url_and_status_callback(rig: Rig, client: Client) -> None:
    """With ApplicationSid, Twilio requests the App's voice URL and reports to its status callback."""
    app = rig.fake.application(rig.url("/app-voice"), rig.url("/app-status"))
    rig.app.answers["/app-voice"] = HELLO
    await client.calls.create_async(to="client:alice", from_=OURS, application_sid=app.sid)
    call = await rig.fake.ringing("client:alice")
    await rig.fake.answer(call)
    await rig.fake.advance(5)
    assert rig.app.at("/app-voice")[0]["ApplicationSid"] == app.sid
    assert rig.app.at("/app-status")[0]["CallStatus"] == "completed"


async def test_cancel_and_hang_up_before_the_answer_end_a_placed_call_canceled(rig: Rig, client: Client) -> None:
    """Status=canceled while queued, Status=completed while ringing: `canceled`; a redirect before answer is 21220."""
    rig.app.answers["/agent-first"] = HELLO
    first = await client.calls.create_async(to=DANA, from_=OURS, url=rig.url("/agent-first"))
    second = await client.calls.create_async(to="+14155550199", from_=OURS, url=rig.url("/agent-first"))
    assert (await client.calls(second.sid).update_async(status="canceled")).status == "canceled"
    with pytest.raises(TwilioRestException) as early:
        await client.calls(first.sid).update_async(url=rig.url("/elsewhere"))
    assert early.value.code == 21220
    await client.calls(first.sid).update_async(status="completed")
    assert rig.fake.account.calls[first.sid].status == "canceled"
    await rig.fake.advance(2)
    assert rig.app.paths() == []
    third = await client.calls.create_async(to="+14155550142", from_=OURS, url=rig.url("/agent-first"))
    await rig.fake.advance(1)
    await rig.fake.hang_up(await rig.fake.ringing("+14155550142"))  # the callee declines
    assert rig.fake.account.calls[third.sid].status == "busy"


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"To": DANA, "From": "+14155550100", "Twiml": HELLO}, 21210),  # not ours, not verified
        ({"To": DANA, "From": "+15005550001", "Twiml": HELLO}, 21212),  # Twilio's invalid magic From
        ({"To": "+15005550001", "From": OURS, "Twiml": HELLO}, 21217),
        ({"To": "+15005550002", "From": OURS, "Twiml": HELLO}, 21214),
        ({"To": "+15005550003", "From": OURS, "Twiml": HELLO}, 21215),
        ({"To": "+15005550004", "From": OURS, "Twiml": HELLO}, 21216),
        ({"To": "415-555-0123", "From": OURS, "Twiml": HELLO}, 21211),
        ({"To": DANA, "From": "client:alice", "Twiml": HELLO}, 21212),  # a phone number needs a phone From
        ({"From": OURS, "Twiml": HELLO}, 21201),
        ({"To": DANA, "Twiml": HELLO}, 21213),
        ({"To": DANA, "From": OURS}, 21200),
        ({"To": DANA, "From": OURS, "Url": "/relative"}, 21205),
        ({"To": DANA, "From": OURS, "Twiml": "<Response><Say>" + "x" * 4000 + "</Say></Response>"}, 21200),
        ({"To": DANA, "From": OURS, "Twiml": '<Response><Gather action="/menu"/></Response>'}, 15004),
        ({"To": DANA, "From": OURS, "Twiml": HELLO, "Timeout": "601"}, 20001),
        ({"To": DANA, "From": OURS, "Twiml": HELLO, "Priority": "high"}, 20001),  # not a parameter
        ({"To": DANA, "From": OURS, "Twiml": HELLO, "StatusCallbackEvent": "answered queued"}, 20001),
        ({"To": DANA, "From": OURS, "ApplicationSid": "AP" + "0" * 32}, 21218),
        ({"To": DANA, "From": OURS, "Twiml": HELLO, "CallerId": "+14155550100"}, 21210),
    ],
)
async def test_a_bad_request_is_refused_with_twilios_code(rig: Rig, form: dict[str, str], code: int) -> None:
    """Each refusal is a 400 carrying the code Twilio's docs give it, and places nothing."""
    status, body = await raw_post(rig.fake, "Calls.json", list(form.items()))
    assert (status, body["code"]) == (400, code)
    assert rig.fake.account.calls == {}


async def test_a_verified_caller_id_and_the_magic_from_number_may_place_calls(rig: Rig, client: Client) -> None:
    """Twilio docs: a verified outgoing caller id, or the test credentials' +15005550006, is a valid From."""
    rig.fake.verify("+14155550100")
    ours = await client.calls.create_async(to=DANA, from_="+14155550100", twiml=HELLO)
    magic = await client.calls.create_async(to=DANA, from_="+15005550006", url=rig.url("/x"), twiml="ignored")
    assert (ours.status, magic.status) == ("queued", "queued")
    await rig.fake.advance(1)
    await rig.fake.answer(rig.fake.account.calls[magic.sid])
    assert rig.app.paths() == ["/x"]  # Url wins: the Twiml is ignored


async def test_scripted_outcomes_answer_or_refuse_placed_calls_by_themselves(rig: Rig, client: Client) -> None:
    """fake.outcome(to, …): answered (with AMD's verdict), busy or failed after ringing a while; no-answer rings out."""
    rig.app.answers["/agent-first"] = HELLO
    rig.fake.outcome(DANA, answered_by="machine_start", after=8, detection=2)
    rig.fake.outcome("+14155550199", "busy", after=3)
    rig.fake.outcome("+14155550142", "no-answer")
    with pytest.raises(ValueError, match="answered, busy, failed or no-answer"):
        rig.fake.outcome("+14155550100", "voicemail")
    common = {"from_": OURS, "url": rig.url("/agent-first"), "machine_detection": "Enable", "timeout": 20}
    machine = await client.calls.create_async(to=DANA, **common)
    busy = await client.calls.create_async(to="+14155550199", **common)
    silent = await client.calls.create_async(to="+14155550142", **common)
    await rig.fake.advance(9)
    calls = rig.fake.account.calls
    assert (calls[machine.sid].status, calls[busy.sid].status, calls[silent.sid].status) == (
        "in-progress",
        "busy",
        "ringing",
    )
    await rig.fake.advance(1)
    assert rig.app.at("/agent-first")[0]["AnsweredBy"] == "machine_start"  # 8 s of ringing, 2 s of detection
    await rig.fake.advance(12)
    assert calls[silent.sid].status == "no-answer"
