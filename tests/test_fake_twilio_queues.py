"""The Twilio stand-in's queues and live-call updates: <Enqueue>, <Leave>, <Dial><Queue>, Calls update, Queues."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from tests.twiml_apps import DANA, OURS, TOKEN, Rig, stand_in_rig

WAIT = '<Response><Say>Please hold</Say><Pause length="9"/></Response>'  # ten seconds a loop
ENQUEUE = '<Response><Enqueue action="/queue-result" waitUrl="/wait">support</Enqueue><Say>After</Say></Response>'


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A stand-in and its TwiML app."""
    async with stand_in_rig() as running:
        yield running


@pytest.fixture
async def client(rig: Rig) -> AsyncIterator[Client]:
    """twilio-python's client pointed at the stand-in."""
    http = AsyncTwilioHttpClient()
    twilio = Client(rig.fake.account.sid, TOKEN, http_client=http)
    twilio.api.base_url = rig.fake.url
    yield twilio
    await http.close()


async def test_the_wait_url_is_requested_again_each_time_its_document_ends(rig: Rig, client: Client) -> None:
    """waitUrl gets QueuePosition, QueueTime, AvgQueueTime… and is re-requested when its TwiML runs out."""
    rig.app.answers.update({"/voice": ENQUEUE, "/wait": WAIT})
    first = await rig.fake.incoming(DANA, OURS)
    await rig.fake.advance(5)
    second = await rig.fake.incoming("+14155550199", OURS)
    await rig.fake.advance(20)
    waits = rig.app.at("/wait")
    assert [(w["CallSid"], w["QueuePosition"], w["QueueTime"]) for w in waits] == [
        (first.sid, "1", "0"),
        (second.sid, "2", "0"),
        (first.sid, "1", "10"),
        (second.sid, "2", "10"),
        (first.sid, "1", "20"),
        (second.sid, "2", "20"),
    ]
    assert (waits[1]["CurrentQueueSize"], waits[1]["MaxQueueSize"], waits[1]["AvgQueueTime"]) == ("2", "1000", "2")
    (queue,) = await client.queues.list_async()
    assert (queue.friendly_name, queue.current_size, queue.average_wait_time) == ("support", 2, 22)
    members = await client.queues(queue.sid).members.list_async()
    assert [(m.call_sid, m.position, m.wait_time) for m in members] == [(first.sid, 1, 25), (second.sid, 2, 20)]


async def test_a_rest_redirect_takes_the_caller_out_with_queue_result_redirected(rig: Rig, client: Client) -> None:
    """Calls update with Url: the action hears `redirected` (its reply ignored) and the new URL's TwiML runs."""
    rig.app.answers.update(
        {
            "/voice": ENQUEUE,
            "/wait": WAIT,
            "/queue-result": "<Response><Hangup/></Response>",
            "/ring": "<Response><Say>Connecting you</Say></Response>",
        }
    )
    call = await rig.fake.incoming(DANA, OURS)
    await rig.fake.advance(33)
    updated = await client.calls(call.sid).update_async(url=rig.url("/ring"), method="POST")
    assert updated.status == "in-progress"
    result = rig.app.at("/queue-result")[0]
    assert (result["QueueResult"], result["QueueTime"]) == ("redirected", "33")
    assert result["QueueSid"].startswith("QU")
    assert rig.app.paths()[-2:] == ["/queue-result", "/ring"]
    await rig.fake.advance(5)
    assert call.heard[-1].text == "Connecting you"
    assert call.status == "completed"
    with pytest.raises(TwilioRestException) as ended:
        await client.calls(call.sid).update_async(url=rig.url("/ring"))
    assert (ended.value.status, ended.value.code) == (400, 21220)


async def test_the_enqueue_reply_can_be_executed_instead(rig: Rig, client: Client) -> None:
    """The test switch runs the action's reply to `redirected`, to prove it harmless."""
    rig.fake.account.script.keep_enqueue_action_reply = True
    rig.app.answers.update({"/voice": ENQUEUE, "/wait": WAIT, "/queue-result": "<Response><Hangup/></Response>"})
    call = await rig.fake.incoming(DANA, OURS)
    await client.calls(call.sid).update_async(url=rig.url("/ring"))
    assert call.status == "completed"
    assert "/ring" not in rig.app.paths()


async def test_inline_twiml_and_bad_updates_are_refused_as_twilio_refuses_them(rig: Rig, client: Client) -> None:
    """Relative URLs in Twiml are 15004; Url with Twiml is 400; an unknown call is 20404; Status=completed ends it."""
    rig.app.answers.update({"/voice": ENQUEUE, "/wait": WAIT})
    call = await rig.fake.incoming(DANA, OURS)
    with pytest.raises(TwilioRestException) as relative:
        await client.calls(call.sid).update_async(twiml='<Response><Gather action="/menu"/></Response>')
    assert relative.value.code == 15004
    with pytest.raises(TwilioRestException) as both:
        await client.calls(call.sid).update_async(url=rig.url("/x"), twiml="<Response/>")
    assert both.value.status == 400
    with pytest.raises(TwilioRestException) as unknown:
        await client.calls("CA" + "f" * 32).update_async(status="completed")
    assert unknown.value.code == 20404
    await client.calls(call.sid).update_async(twiml="<Response><Say>Inline</Say></Response>")
    assert rig.app.at("/queue-result")[0]["QueueResult"] == "redirected"
    assert call.heard[-1].text == "Inline"
    second = await rig.fake.incoming(DANA, OURS)
    await client.calls(second.sid).update_async(status="completed")
    assert second.status == "completed"
    assert rig.app.at("/queue-result")[-1]["QueueResult"] == "hangup"


async def test_leave_runs_the_action_reply_and_hang_up_is_hangup(rig: Rig) -> None:
    """<Leave> in the wait document: `leave`, the reply drives the call; a caller who hangs up: `hangup`."""
    rig.app.answers.update(
        {
            "/voice": ENQUEUE,
            "/wait": "<Response><Pause/><Leave/></Response>",
            "/queue-result": lambda p: "<Response><Say>Left</Say></Response>" if p["QueueResult"] == "leave" else "",
        }
    )
    call = await rig.fake.incoming(DANA, OURS)
    await rig.fake.advance(3)
    assert rig.app.at("/queue-result")[0]["QueueResult"] == "leave"
    assert "Left" in [p.text for p in call.heard]
    rig.app.answers["/wait"] = WAIT
    other = await rig.fake.incoming(DANA, OURS)
    await rig.fake.advance(4)
    await rig.fake.hang_up(other)
    result = rig.app.at("/queue-result")[-1]
    assert (result["QueueResult"], result["CallStatus"], result["QueueTime"]) == ("hangup", "completed", "4")
    assert other.status == "completed"


async def test_without_action_the_next_verb_runs_and_a_full_queue_refuses(rig: Rig, client: Client) -> None:
    """MaxSize 1: the second caller is `queue-full`, without QueueSid; a queue's own verbs only in wait TwiML."""
    await client.queues.create_async(friendly_name="support", max_size=1)
    rig.app.answers.update({"/voice": ENQUEUE, "/wait": WAIT})
    await rig.fake.incoming(DANA, OURS)
    await rig.fake.incoming("+14155550199", OURS)
    full = rig.app.at("/queue-result")[0]
    assert full["QueueResult"] == "queue-full"
    assert "QueueSid" not in full
    rig.app.answers["/voice"] = '<Response><Enqueue waitUrl="/bad">other</Enqueue><Say>Fell through</Say></Response>'
    rig.app.answers["/bad"] = "<Response><Dial>+1555</Dial></Response>"
    call = await rig.fake.incoming("+14155550142", OURS)
    assert call.errors == ["12200"]
    assert call.heard[-1].text == "Fell through"


async def test_a_member_dequeued_from_the_front_runs_the_given_url(rig: Rig, client: Client) -> None:
    """Member update on `Front` with Url: the head of the queue leaves (`redirected`) and runs that TwiML."""
    rig.app.answers.update({"/voice": ENQUEUE, "/wait": WAIT, "/agent": "<Response><Say>Hello</Say></Response>"})
    first = await rig.fake.incoming(DANA, OURS)
    second = await rig.fake.incoming("+14155550199", OURS)
    (queue,) = await client.queues.list_async()
    front = await client.queues(queue.sid).members("Front").fetch_async()
    assert front.call_sid == first.sid
    await client.queues(queue.sid).members("Front").update_async(url=rig.url("/agent"))
    assert first.heard[-1].text == "Hello"
    assert [m.call_sid for m in await client.queues(queue.sid).members.list_async()] == [second.sid]
    with pytest.raises(TwilioRestException) as busy:
        await client.queues(queue.sid).delete_async()
    assert busy.value.status == 400


async def test_an_agent_dialing_the_queue_is_bridged_to_the_first_caller(rig: Rig) -> None:
    """<Dial><Queue url>: the caller hears the url's TwiML, then talks; `bridged` arrives after they part."""
    rig.fake.own("+16505550177", rig.url("/agent"))
    rig.app.answers.update(
        {
            "/voice": ENQUEUE,
            "/wait": WAIT,
            "/agent": '<Response><Dial action="/agent-done"><Queue url="/announce">support</Queue></Dial></Response>',
            "/announce": "<Response><Say>Connecting</Say></Response>",
            "/queue-result": "<Response><Say>Anything else?</Say></Response>",
            "/agent-done": "<Response><Hangup/></Response>",
        }
    )
    caller = await rig.fake.incoming(DANA, OURS)
    await rig.fake.advance(7)
    agent = await rig.fake.incoming("client:carol", "+16505550177")
    announce = rig.app.at("/announce")[0]
    assert (announce["CallSid"], announce["DequeingCallSid"], announce["QueueTime"]) == (caller.sid, agent.sid, "7")
    await rig.fake.advance(61)
    await rig.fake.hang_up(agent)
    done = rig.app.at("/agent-done")[0]
    assert (done["DialCallStatus"], done["DialBridged"], done["DialCallSid"]) == ("completed", "true", caller.sid)
    result = rig.app.at("/queue-result")[0]
    assert (result["QueueResult"], result["QueueTime"]) == ("bridged", "7")
    await rig.fake.advance(5)
    assert caller.heard[-1].text == "Anything else?"
