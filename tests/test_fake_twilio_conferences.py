"""The Twilio stand-in's conferences: <Dial><Conference>, the start and end rules, status callbacks, REST."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bridge.devtools.fake_twilio import Call, Delivery
from bridge.devtools.replay import load
from tests.twiml_apps import DANA, OURS, Rig, raw_post, rest_client, stand_in_rig

AGENTS = "+16505550177"  # a second number of ours, whose voice URL puts an agent in the room
CUSTOMER = (
    '<Response><Dial action="/after"><Conference startConferenceOnEnter="false" endConferenceOnExit="true" '
    'waitUrl="/wait" statusCallback="/conf" statusCallbackEvent="start end join leave hold mute modify" '
    'participantLabel="customer" beep="false">room</Conference></Dial></Response>'
)
AGENT = (
    '<Response><Dial action="/agent-after"><Conference statusCallback="/ignored" statusCallbackEvent="start">'
    "room</Conference></Dial></Response>"
)
WAIT = '<Response><Say>Please wait</Say><Pause length="5"/></Response>'  # seven seconds, then silence


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A stand-in owning our two numbers: the customers' line and the agents' line."""
    async with stand_in_rig() as running:
        running.fake.own(AGENTS, running.url("/agent"))
        hang_up = "<Response><Hangup/></Response>"
        running.app.answers.update({"/voice": CUSTOMER, "/wait": WAIT, "/agent": AGENT})
        running.app.answers.update({"/after": hang_up, "/agent-after": hang_up, "/coach-after": hang_up})
        yield running


@pytest.fixture
async def client(rig: Rig) -> AsyncIterator[Client]:
    """twilio-python's client pointed at the stand-in."""
    async with rest_client(rig.fake) as twilio:
        yield twilio


def events(rig: Rig, path: str = "/conf") -> list[tuple[str, str]]:
    """Return each conference callback as (StatusCallbackEvent, CallSid or '')."""
    return [(p["StatusCallbackEvent"], p.get("CallSid", "")) for p in rig.app.at(path)]


async def agent_joins(rig: Rig) -> Call:
    """Put an agent in the room through the agents' line."""
    return await rig.fake.incoming("client:carol", AGENTS)


async def test_a_customer_waits_an_agent_starts_it_and_the_customer_leaving_ends_it(rig: Rig, client: Client) -> None:
    """waitUrl played once; the agent starts the room; endConferenceOnExit drops the agent to its Dial action."""
    rig.app.answers["/agent-after"] = "<Response><Say>Wrap up</Say></Response>"
    customer = await rig.fake.incoming(DANA, OURS)
    await rig.fake.advance(30)
    assert [p["CallSid"] for p in rig.app.at("/wait")] == [customer.sid]  # once: not requested again
    assert [p.text for p in customer.heard] == ["Please wait", ""]
    room = rig.fake.conference("room")
    assert room.status == "init"
    (waiting,) = await client.conferences.list_async(friendly_name="room", status="init")
    assert waiting.sid == room.sid
    agent = await agent_joins(rig)
    assert room.status == "in-progress"
    assert len(rig.app.at("/wait")) == 1  # the agent starts it: no wait music for the agent
    assert customer.heard[-1].text == "beep"  # the agent's join beep (beep="true"); the customer's is off
    await rig.fake.advance(60)
    await rig.fake.hang_up(customer)
    assert events(rig) == [
        ("participant-join", customer.sid),
        ("participant-join", agent.sid),
        ("conference-start", ""),
        ("participant-leave", customer.sid),
        ("participant-leave", agent.sid),
        ("conference-end", ""),
    ]
    sent = rig.app.at("/conf")
    assert [p["SequenceNumber"] for p in sent] == ["1", "2", "3", "4", "5", "6"]
    assert {(p["ConferenceSid"], p["FriendlyName"], p["AccountSid"]) for p in sent} == {
        (room.sid, "room", rig.fake.account.sid)
    }
    assert sent[0]["Timestamp"] == "Tue, 15 Sep 2026 14:02:07 +0000"
    assert (sent[0]["ParticipantLabel"], sent[0]["StartConferenceOnEnter"], sent[0]["EndConferenceOnExit"]) == (
        "customer",
        "false",
        "true",
    )
    assert (sent[1]["Hold"], sent[1]["Muted"], sent[1]["Coaching"]) == ("false", "false", "false")
    assert "ParticipantLabel" not in sent[1]
    assert (sent[3]["ParticipantCallStatus"], sent[3]["ReasonParticipantLeft"]) == ("completed", "participant_hung_up")
    assert (sent[4]["ParticipantCallStatus"], sent[4]["ReasonParticipantLeft"]) == (
        "in-progress",
        "moderator_ended_conference",
    )
    assert sent[5]["ReasonConferenceEnded"] == "participant-with-end-conference-on-exit-left"
    assert (sent[5]["CallSidEndingConference"], sent[5]["ParticipantLabelEndingConference"]) == (
        customer.sid,
        "customer",
    )
    assert rig.app.at("/ignored") == []  # the first participant set the callbacks
    after = rig.app.at("/agent-after")[0]
    assert after["DialCallStatus"] == "answered"
    assert "DialCallSid" not in after
    assert "DialCallDuration" not in after
    assert rig.app.at("/after")[0]["CallStatus"] == "completed"
    await rig.fake.advance(2)
    assert agent.heard[-1].text == "Wrap up"
    fetched = await client.conferences(room.sid).fetch_async()
    assert (fetched.status, fetched.reason_conference_ended, fetched.call_sid_ending_conference) == (
        "completed",
        "participant-with-end-conference-on-exit-left",
        customer.sid,
    )
    assert await client.conferences(room.sid).participants.list_async() == []


async def test_the_last_participant_leaving_ends_a_room_that_never_started(rig: Rig) -> None:
    """A lone caller hangs up: participant-leave, then conference-end with last-participant-left."""
    rig.app.answers["/voice"] = CUSTOMER.replace('endConferenceOnExit="true" ', "")
    customer = await rig.fake.incoming(DANA, OURS)
    await rig.fake.advance(3)
    await rig.fake.hang_up(customer)
    assert events(rig) == [
        ("participant-join", customer.sid),
        ("participant-leave", customer.sid),
        ("conference-end", ""),
    ]
    assert rig.app.at("/conf")[-1]["ReasonConferenceEnded"] == "last-participant-left"
    assert rig.fake.conference("room").status == "completed"


async def test_a_second_room_of_the_same_name_is_a_new_conference(rig: Rig) -> None:
    """Once a room has ended, its name makes a fresh one; default wait music is played, not fetched."""
    rig.app.answers["/voice"] = "<Response><Dial><Conference>room</Conference></Dial><Say>Bye</Say></Response>"
    first = await rig.fake.incoming(DANA, OURS)
    first_room = rig.fake.conference("room")
    await rig.fake.hang_up(first)
    await rig.fake.incoming(DANA, OURS)
    assert rig.fake.conference("room").sid != first_room.sid
    assert "/wait" not in rig.app.paths()
    assert first.heard[0].text.startswith("https://s3.amazonaws.com/com.twilio.sounds.music/")


async def test_a_duplicate_label_goes_on_and_a_full_room_fails_the_dial(rig: Rig) -> None:
    """16025: not added, the next verb runs; 16020: the Dial action hears `failed`."""
    rig.app.answers.update(
        {
            "/voice": '<Response><Dial><Conference participantLabel="customer" maxParticipants="2" waitUrl="">'
            "room</Conference></Dial><Say>Not joined</Say></Response>",
            "/agent": '<Response><Dial action="/agent-after"><Conference>room</Conference></Dial></Response>',
        }
    )
    await rig.fake.incoming(DANA, OURS)
    twin = await rig.fake.incoming("+14155550199", OURS)
    assert (twin.errors, twin.heard[-1].text) == (["16025"], "Not joined")
    await agent_joins(rig)
    third = await agent_joins(rig)
    assert third.errors == ["16020"]
    assert rig.app.at("/agent-after")[0]["DialCallStatus"] == "failed"


async def test_a_coach_must_name_a_call_in_a_started_room(rig: Rig) -> None:
    """coach with a call not in an in-progress room is 13240 and `failed`; a valid one joins as coaching."""
    customer = await rig.fake.incoming(DANA, OURS)
    coach = '<Response><Dial action="/coach-after"><Conference coach="{sid}">room</Conference></Dial></Response>'
    rig.app.answers["/agent"] = coach.format(sid=customer.sid)
    early = await agent_joins(rig)
    assert early.errors == ["13240"]  # the room has not started yet
    assert rig.app.at("/coach-after")[0]["DialCallStatus"] == "failed"
    rig.app.answers["/agent"] = AGENT
    await agent_joins(rig)
    rig.app.answers["/agent"] = coach.format(sid=customer.sid)
    supervisor = await agent_joins(rig)
    joined = [p for p in rig.app.at("/conf") if p.get("CallSid") == supervisor.sid]
    assert joined[0]["Coaching"] == "true"


async def test_the_room_is_recorded_from_its_start_and_paused_through_the_conference(rig: Rig, client: Client) -> None:
    """record-from-start: from the bridge of two, one channel, source Conference; `skip` leaves the pause out."""
    rig.app.answers["/voice"] = CUSTOMER.replace(
        'participantLabel="customer"', 'record="record-from-start" recordingStatusCallback="/recording"'
    )
    customer = await rig.fake.incoming(DANA, OURS)
    await rig.fake.advance(10)
    await agent_joins(rig)
    room = rig.fake.conference("room")
    await rig.fake.advance(20)
    paused = (
        await client.conferences(room.sid)
        .recordings("Twilio.CURRENT")
        .update_async(status="paused", pause_behavior="skip")
    )
    assert (paused.status, paused.conference_sid, paused.call_sid) == ("paused", room.sid, None)
    await rig.fake.advance(15)
    await client.conferences(room.sid).recordings(paused.sid).update_async(status="in-progress")
    await rig.fake.advance(25)
    await rig.fake.hang_up(customer)
    recording = rig.app.at("/recording")[0]
    assert (recording["RecordingSource"], recording["RecordingChannels"], recording["RecordingDuration"]) == (
        "Conference",
        "1",
        "45",
    )
    assert recording["ConferenceSid"] == room.sid
    assert "CallSid" not in recording
    assert recording["RecordingStartTime"] == "Tue, 15 Sep 2026 14:02:17 +0000"
    (listed,) = await client.conferences(room.sid).recordings.list_async()
    assert (listed.status, listed.duration) == ("completed", "45")
    with pytest.raises(TwilioRestException) as ended:
        await client.conferences(room.sid).recordings("Twilio.CURRENT").update_async(status="paused")
    assert ended.value.code == 21220


async def test_a_participant_is_added_by_name_rings_and_joins(rig: Rig, client: Client) -> None:
    """Participants create with a FriendlyName makes the room; 201 queued; answered, it joins (default start end)."""
    created = await client.conferences("sales").participants.create_async(
        from_=OURS,
        to="client:bob",
        label="agent:bob",
        conference_status_callback=rig.url("/conf"),
        status_callback=rig.url("/bob-status"),
        status_callback_event=["ringing", "answered", "completed"],
    )
    assert (created.status, created.label, created.queue_time) == ("queued", "agent:bob", "0")
    room = rig.fake.conference("sales")
    assert created.conference_sid == room.sid
    bob = await rig.fake.ringing("client:bob")
    (listed,) = await client.conferences(room.sid).participants.list_async()
    assert (listed.call_sid, listed.status) == (bob.sid, "ringing")  # connecting counts as live
    await rig.fake.answer(bob)
    fetched = await client.conferences(room.sid).participants("agent:bob").fetch_async()
    assert (fetched.call_sid, fetched.status, fetched.hold) == (bob.sid, "connected", False)
    rig.app.answers["/voice"] = "<Response><Dial><Conference>sales</Conference></Dial></Response>"
    await rig.fake.incoming(DANA, OURS)
    assert events(rig) == [("conference-start", "")]  # join and leave were not asked for
    assert [p["CallStatus"] for p in rig.app.at("/bob-status")] == ["ringing", "in-progress"]
    await client.conferences(room.sid).update_async(status="completed")
    assert events(rig)[-1] == ("conference-end", "")
    assert rig.app.at("/conf")[-1]["ReasonConferenceEnded"] == "conference-ended-via-api"
    assert bob.status == "completed"  # a REST-added participant has no TwiML to go on with
    assert rig.app.at("/bob-status")[-1]["CallStatus"] == "completed"


@pytest.mark.parametrize(("outcome", "status"), [("busy", "busy"), ("timeout", "no-answer"), ("failed", "failed")])
async def test_an_add_that_is_not_answered_is_a_participant_leave(
    rig: Rig, client: Client, outcome: str, status: str
) -> None:
    """busy, no-answer after Timeout (plus Twilio's five seconds), failed: participant_add_failed."""
    await client.conferences("sales").participants.create_async(
        from_=OURS,
        to="+14155550199",
        timeout=10,
        conference_status_callback=rig.url("/conf"),
        conference_status_callback_event=["leave", "end"],
    )
    call = await rig.fake.ringing("+14155550199")
    if outcome == "timeout":
        await rig.fake.advance(14)
        assert call.status == "ringing"
        await rig.fake.advance(1)
    else:
        await rig.fake.reject(call, outcome)
    leave = rig.app.at("/conf")[0]
    assert (leave["StatusCallbackEvent"], leave["ParticipantCallStatus"], leave["ReasonParticipantLeft"]) == (
        "participant-leave",
        status,
        "participant_add_failed",
    )
    assert events(rig)[-1] == ("conference-end", "")  # nobody else was in it


async def test_hold_mute_modify_and_announce_through_participant_update(rig: Rig, client: Client) -> None:
    """Hold with HoldUrl (GET by default), Muted, EndConferenceOnExit, AnnounceUrl; Status is not a parameter."""
    rig.app.answers.update(
        {
            "/hold": '<Response><Play>https://example.com/hold.mp3</Play><Redirect method="GET">/hold2</Redirect>'
            "</Response>",
            "/hold2": "<Response><Say>Still holding</Say></Response>",
            "/announce": "<Response><Say>Your agent is back</Say></Response>",
        }
    )
    customer = await rig.fake.incoming(DANA, OURS)
    agent = await agent_joins(rig)
    room = rig.fake.conference("room")
    participant = client.conferences(room.sid).participants("customer")
    held = await participant.update_async(hold=True, hold_url=rig.url("/hold"))
    assert held.hold is True
    hold_request = next(seen for seen in rig.app.seen if seen.path.startswith("/hold?"))
    assert (hold_request.method, hold_request.params["CallSid"]) == ("GET", customer.sid)
    await rig.fake.advance(15)
    assert customer.heard[-1].text == "Still holding"
    await participant.update_async(hold=False, muted=True, end_conference_on_exit=False)
    await participant.update_async(announce_url=rig.url("/announce"))
    assert customer.heard[-1].text == "Your agent is back"
    assert [event for event, _ in events(rig)][3:] == [
        "participant-hold",
        "participant-mute",
        "participant-modify",
        "participant-unhold",
    ]
    assert rig.app.at("/conf")[-1]["EndConferenceOnExit"] == "false"
    status, body = await raw_post(
        rig.fake, f"Conferences/{room.sid}/Participants/{customer.sid}.json", [("Status", "completed")]
    )
    assert (status, body["code"]) == (400, 20001)
    await rig.fake.hang_up(customer)  # no longer ends the room
    assert room.status == "in-progress"
    assert agent.status == "in-progress"


async def test_kicking_participants_and_the_reasons_the_room_ends(rig: Rig, client: Client) -> None:
    """DELETE: 204, participant_updated_via_api, the call goes on to its action; the last kicked ends the room."""
    rig.app.answers["/after"] = "<Response><Say>You were removed</Say></Response>"
    customer = await rig.fake.incoming(DANA, OURS)
    await agent_joins(rig)
    room = rig.fake.conference("room")
    await client.conferences(room.sid).participants("customer").delete_async()
    assert rig.app.at("/after")[0]["DialCallStatus"] == "answered"
    leave, end = rig.app.at("/conf")[3], rig.app.at("/conf")[-1]
    assert (leave["ReasonParticipantLeft"], leave["ParticipantCallStatus"]) == (
        "participant_updated_via_api",
        "in-progress",
    )
    assert end["ReasonConferenceEnded"] == "participant-with-end-conference-on-exit-kicked"
    await rig.fake.advance(3)
    assert customer.heard[-1].text == "You were removed"
    rig.app.answers["/voice"] = CUSTOMER.replace('endConferenceOnExit="true" ', "").replace("room", "other")
    await rig.fake.incoming(DANA, OURS)
    other = rig.fake.conference("other")
    await client.conferences(other.sid).participants("customer").delete_async()
    assert rig.app.at("/conf")[-1]["ReasonConferenceEnded"] == "last-participant-kicked"
    with pytest.raises(TwilioRestException) as gone:
        await client.conferences(other.sid).participants("customer").fetch_async()
    assert gone.value.code == 20404


async def test_a_redirected_participant_leaves_and_runs_the_new_twiml(rig: Rig, client: Client) -> None:
    """Calls update of a participant's call: participant-leave (participant_updated_via_api); no Dial action."""
    rig.app.answers["/line"] = "<Response><Say>Transferred</Say></Response>"
    rig.app.answers["/voice"] = CUSTOMER.replace('endConferenceOnExit="true" ', "")
    customer = await rig.fake.incoming(DANA, OURS)
    agent = await agent_joins(rig)
    await client.calls(customer.sid).update_async(url=rig.url("/line"))
    leave = rig.app.at("/conf")[-1]
    assert (leave["StatusCallbackEvent"], leave["ReasonParticipantLeft"], leave["ParticipantCallStatus"]) == (
        "participant-leave",
        "participant_updated_via_api",
        "in-progress",
    )
    assert rig.app.at("/after") == []
    await rig.fake.advance(2)
    assert customer.heard[-1].text == "Transferred"
    await client.calls(agent.sid).update_async(status="completed")
    assert rig.app.at("/conf")[-2]["ReasonParticipantLeft"] == "participant_updated_via_api"
    assert rig.app.at("/conf")[-1]["ReasonConferenceEnded"] == "last-participant-left"


async def test_a_rest_participant_waits_is_recorded_redirected_or_called_off(rig: Rig, client: Client) -> None:
    """WaitUrl for a REST-added participant; Record with dual channels; a redirect or a DELETE while ringing."""
    rig.app.answers["/line"] = "<Response><Say>Transferred</Say></Response>"
    room = client.conferences("sales")
    await room.participants.create_async(
        from_=OURS,
        to="client:bob",
        label="bob",
        wait_url=rig.url("/wait"),
        record=True,
        recording_channels="dual",
        recording_status_callback=rig.url("/bob-recording"),
        conference_status_callback=rig.url("/conf"),
        conference_status_callback_event=["join", "leave", "end"],
    )
    bob = await rig.fake.ringing("client:bob")
    await rig.fake.answer(bob)
    assert rig.app.at("/wait")[0]["CallSid"] == bob.sid
    sales = rig.fake.conference("sales")
    await rig.fake.advance(1)
    await room.participants.create_async(from_=OURS, to="client:carol")
    carol = await rig.fake.ringing("client:carol")
    await rig.fake.answer(carol)
    assert sales.status == "in-progress"
    assert len(rig.app.at("/wait")) == 1  # carol starts the room: she hears no wait music
    await rig.fake.advance(9)
    await client.calls(bob.sid).update_async(url=rig.url("/line"))
    await rig.fake.advance(2)
    assert bob.heard[-1].text == "Transferred"
    assert bob.status == "completed"
    recording = rig.app.at("/bob-recording")[0]
    assert (recording["RecordingSource"], recording["RecordingChannels"]) == ("OutboundAPI", "2")
    await room.participants.create_async(from_=OURS, to="client:dave", label="dave")
    await rig.fake.advance(1)
    dave = await rig.fake.ringing("client:dave")
    await client.conferences(sales.sid).participants("dave").delete_async()
    assert dave.status == "canceled"
    await rig.fake.hang_up(carol)
    assert events(rig)[-4:] == [
        ("participant-leave", bob.sid),
        ("participant-leave", dave.sid),
        ("participant-leave", carol.sid),
        ("conference-end", ""),
    ]
    reasons = [(p["ReasonParticipantLeft"], p["ParticipantCallStatus"]) for p in rig.app.at("/conf")[-4:-1]]
    assert reasons == [
        ("participant_updated_via_api", "in-progress"),
        ("participant_updated_via_api", "canceled"),
        ("participant_hung_up", "completed"),
    ]


async def test_announcements_coaching_and_the_other_participant_updates(rig: Rig, client: Client) -> None:
    """AnnounceUrl to the room; Coaching, BeepOnExit, WaitUrl are `modify`; filters, refusals, a failed fetch."""
    rig.app.answers["/announce"] = "<Response><Say>This call is recorded</Say></Response>"
    customer = await rig.fake.incoming(DANA, OURS)
    agent = await agent_joins(rig)
    sid = rig.fake.conference("room").sid
    await client.conferences(sid).update_async(announce_url=rig.url("/announce"))
    assert customer.heard[-1].text == agent.heard[-1].text == "This call is recorded"
    assert rig.app.at("/announce")[0]["ConferenceSid"] == sid  # fetched once for the room
    await (
        client.conferences(sid)
        .participants(agent.sid)
        .update_async(
            coaching=True, call_sid_to_coach=customer.sid, beep_on_exit=False, wait_url="", hold_method="POST"
        )
    )
    modified = rig.app.at("/conf")[-1]
    assert (modified["StatusCallbackEvent"], modified["Coaching"]) == ("participant-modify", "true")
    (coaching,) = await client.conferences(sid).participants.list_async(coaching=True)
    assert coaching.call_sid_to_coach == customer.sid
    await client.conferences(sid).participants("customer").update_async(announce_url=rig.url("/missing"))
    assert customer.errors == ["11200"]
    refusals = [
        (f"Conferences/{sid}.json", [("Status", "in-progress")]),
        (
            f"Conferences/{sid}/Participants/{agent.sid}.json",
            [("Coaching", "true"), ("CallSidToCoach", "CA" + "0" * 32)],
        ),
    ]
    for path, form in refusals:
        status, body = await raw_post(rig.fake, path, form)
        assert (status, body["code"]) in ((400, 20001), (400, 13240))
    await client.conferences(sid).update_async(status="completed")
    status, body = await raw_post(rig.fake, f"Conferences/{sid}.json", [("Status", "completed")])
    assert status == 400
    status, body = await raw_post(rig.fake, f"Conferences/{sid}/Participants.json", [("From", OURS), ("To", DANA)])
    assert (status, body["code"]) == (404, 20404)  # a room that has ended takes nobody


async def test_conference_events_are_shuffled_and_doubled_like_every_callback(rig: Rig) -> None:
    """Delivery mode: each event twice with one idempotency token; the sequence numbers still say the order."""
    rig.fake.delivery = Delivery(shuffle=True, duplicates=1.0, seed=5)
    customer = await rig.fake.incoming(DANA, OURS)
    await agent_joins(rig)
    await rig.fake.hang_up(customer)
    sent = rig.app.at("/conf")
    assert len(sent) == 12
    ordered = sorted({(int(p["SequenceNumber"]), p["StatusCallbackEvent"]) for p in sent})
    assert [name for _, name in ordered] == [
        "participant-join",
        "participant-join",
        "conference-start",
        "participant-leave",
        "participant-leave",
        "conference-end",
    ]
    tokens = {seen.headers["I-Twilio-Idempotency-Token"] for seen in rig.app.seen if seen.path == "/conf"}
    assert len(tokens) == 6


async def test_star_or_the_time_limit_leave_the_room_and_a_failing_wait_url_fails_the_dial(rig: Rig) -> None:
    """hangupOnStar and timeLimit end the Dial with `answered`; a waitUrl that fails never joins (`failed`)."""
    rig.app.answers["/voice"] = (
        '<Response><Dial action="/after" hangupOnStar="true" timeLimit="60"><Conference waitUrl="" '
        'statusCallback="/conf" statusCallbackEvent="leave">room</Conference></Dial></Response>'
    )
    starred = await rig.fake.incoming(DANA, OURS)
    timed = await rig.fake.incoming("+14155550199", OURS)
    await rig.fake.press(starred, "*")
    await rig.fake.advance(60)
    assert [p["CallSid"] for p in rig.app.at("/after")] == [starred.sid, timed.sid]
    assert {p["DialCallStatus"] for p in rig.app.at("/after")} == {"answered"}
    assert "ReasonParticipantLeft" not in rig.app.at("/conf")[0]
    rig.app.answers["/voice"] = CUSTOMER.replace("/wait", "/missing")
    broken = await rig.fake.incoming(DANA, OURS)
    assert broken.errors == ["11200"]
    assert rig.app.at("/after")[-1]["DialCallStatus"] == "failed"
    rig.app.answers["/voice"] = CUSTOMER.replace("/wait", "/bad-wait")
    rig.app.answers["/bad-wait"] = "<Response><Gather/></Response>"
    assert (await rig.fake.incoming(DANA, OURS)).errors == ["13238"]


async def test_a_conference_capture_is_a_recording_the_replayer_reads(rig: Rig, tmp_path: Path) -> None:
    """fake.write(path, conference) saves the room's status callbacks in the recording format."""
    customer = await rig.fake.incoming(DANA, OURS)
    await rig.fake.advance(5)
    await agent_joins(rig)
    await rig.fake.hang_up(customer)
    lines = load(rig.fake.write(tmp_path / "room.jsonl", rig.fake.conference("room")))
    assert [line.path for line in lines] == ["/conf"] * 6
    assert [line.at for line in lines] == [0, 5, 5, 5, 5, 5]


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": OURS, "To": DANA, "MachineDetection": "Enable"}, 20001),  # not modelled on participants
        ({"From": OURS, "To": DANA, "AsyncAmd": "true"}, 20001),  # Twilio docs: warning 21263, Calls only
        ({"From": "+14155550100", "To": DANA}, 21210),
        ({"From": OURS, "To": DANA, "Timeout": "4"}, 20001),
        ({"From": OURS, "To": DANA, "Beep": "loud"}, 20001),
        ({"From": OURS, "To": DANA, "Coaching": "true"}, 13240),
    ],
)
async def test_a_bad_participant_request_is_refused(rig: Rig, form: dict[str, str], code: int) -> None:
    """Participants create checks its parameters as Calls create does, and places nothing."""
    status, body = await raw_post(rig.fake, "Conferences/sales/Participants.json", list(form.items()))
    assert (status, body["code"]) == (400, code)
    assert rig.fake.account.calls == {}
