"""Property-based tests (hypothesis): hostile forms never cause a 500; the state machine keeps its invariants."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from bridge.core.actions import (
    Action,
    ActionKind,
    AddVoiceComment,
    CreateCallRecord,
    CreateTicket,
    UpdateCallRecord,
)
from bridge.core.calls import RECORDING_WAIT, TRANSCRIPTION_WAIT, Call, Policy, step
from bridge.core.events import CallEvent, EventKind, LegStatus
from bridge.devtools.demo import LocalBridge, local_bridge
from tests.conftest import FAST_RETRY
from webhooks.names import Route, route_url

ROUTES = list(Route)
FIELDS = [
    "CallSid", "ParentCallSid", "From", "To", "CallStatus", "SequenceNumber", "Timestamp", "CallDuration",
    "DialCallStatus", "DialCallSid", "DialCallDuration", "DialBridged", "RecordingSid", "RecordingUrl",
    "RecordingStatus", "RecordingDuration", "RecordingSource", "RecordingStartTime", "TranscriptionStatus",
    "TranscriptionText", "FromCity", "Direction",
]  # fmt: skip
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "0", "-1", "99999999999999999999", "ringing", "in-progress", "completed", "absent",
                     "true", "false", "client:alice", "+14155550123", "Anonymous", "CA" + "1" * 32,
                     "Tue, 15 Sep 2026 14:02:08 +0000", "RecordVerb", "DialVerb"]),
)  # fmt: skip
FORMS = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=12)), VALUES, max_size=14)


async def post(bridge: LocalBridge, session: aiohttp.ClientSession, route: Route, form: dict[str, str]) -> int:
    """Send one correctly signed form."""
    url = route_url(bridge.url, route)
    signature = RequestValidator(bridge.auth_token).compute_signature(url, form)
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    async with session.post(url, data=urlencode(form), headers=headers) as response:
        await response.read()
        return response.status


def test_signed_garbage_never_causes_a_server_error(tmp_path: Path) -> None:
    """Any signed form on any route is answered 200, 204 or a 400 naming a field, never a 500."""
    with asyncio.Runner() as runner:
        context = local_bridge(tmp_path / "b.db", retry=FAST_RETRY)
        bridge = runner.run(context.__aenter__())
        session = runner.run(_session())
        try:

            @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
            @given(route=st.sampled_from(ROUTES), form=FORMS)
            def check(route: Route, form: dict[str, str]) -> None:
                assert runner.run(post(bridge, session, route, form)) in (200, 204, 400)

            check()
        finally:
            runner.run(session.close())
            runner.run(context.__aexit__(None, None, None))


async def _session() -> aiohttp.ClientSession:
    """Open a client session inside the runner's loop."""
    return aiohttp.ClientSession()


T0 = datetime(2026, 9, 15, 14, 0, tzinfo=UTC)
SID, LEGS = "CA" + "0" * 32, ["CA" + "a" * 32, "CA" + "b" * 32]
POLICY = Policy(agents={"client:alice": 1001, "client:bob": 1002})


@st.composite
def events(draw: st.DrawFn) -> CallEvent:
    """Draw one event of one inbound call, in any state the wire could put it."""
    kind = draw(st.sampled_from(list(EventKind)))
    at = T0 + timedelta(seconds=draw(st.integers(0, 300)))
    parent = {"direction": "inbound", "from_number": draw(st.sampled_from(["+14155550123", "Anonymous"])),
              "to_number": "+16505550100"}  # fmt: skip
    if kind == EventKind.LEG_STATUS:
        index = draw(st.integers(0, 1))
        return CallEvent(kind=kind, call_sid=SID, at=at, leg_sid=LEGS[index],
                         leg_to=["client:alice", "client:bob"][index],
                         status=draw(st.sampled_from(list(LegStatus))).value,
                         sequence=draw(st.integers(0, 4)), duration=draw(st.sampled_from([None, 0, 30])))  # fmt: skip
    if kind == EventKind.RECORDING:
        return CallEvent(kind=kind, call_sid=SID, at=at, recording_sid="RE1", recording_url="https://r/RE1",
                         recording_status=draw(st.sampled_from(["completed", "absent"])),
                         recording_of=draw(st.sampled_from([None, "conversation", "voicemail"])),
                         recording_duration=20)  # fmt: skip
    if kind == EventKind.TIMER:
        return CallEvent(
            kind=kind, call_sid=SID, at=at, timer=draw(st.sampled_from([RECORDING_WAIT, TRANSCRIPTION_WAIT]))
        )
    return CallEvent(kind=kind, call_sid=SID, at=at, **parent,
                     status=draw(st.sampled_from(["ringing", "in-progress", "completed"])),
                     dial_status=draw(st.sampled_from([None, "completed", "no-answer", "busy"])),
                     dial_bridged=draw(st.sampled_from([None, True, False])), leg_sid=draw(st.sampled_from(LEGS)),
                     transcription_status=draw(st.sampled_from(["completed", "failed"])),
                     transcription_text="hello")  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(events(), max_size=25), st.sampled_from(["answer", "end"]), st.sampled_from(["tickets", "calls"]))
def test_state_machine_invariants(sequence: list[CallEvent], ticket_on: str, api: str) -> None:
    """Any event sequence: no exception, one ticket at most, one voice comment at most, terminal legs sticky,
    and no user pop once the call is over. With ZENDESK_API=calls: one record at most, never before the
    ticket it shows on, never updated before it exists, and no Tickets API voice comment but a voicemail's."""
    policy = Policy(agents=POLICY.agents, ticket_on=ticket_on, api=api)  # type: ignore[arg-type]
    call: Call | None = None
    keys: list[str] = []
    actions: list[Action] = []
    for number, event in enumerate(sequence):
        was_over = call is not None and call.over
        terminal = {sid: leg.status for sid, leg in (call.legs.items() if call else []) if leg.status.terminal}
        outcome = step(call, event, T0 + timedelta(seconds=number), policy)
        call = outcome.call
        keys += [action.key for action in outcome.actions]
        actions += outcome.actions
        for sid, status in terminal.items():
            assert call.legs[sid].status == status
        if was_over:  # a late `ringing` or `answered` pops nobody once the call has ended
            assert not [a for a in outcome.actions if a.kind == ActionKind.DISPLAY_USER]
    assert len(keys) == len(set(keys))
    assert keys.count(f"{SID}:ticket") <= 1
    assert keys.count(f"{SID}:voice_comment") <= 1
    records = [i for i, a in enumerate(actions) if isinstance(a, CreateCallRecord)]
    assert len(records) <= (1 if api == "calls" else 0)
    for i, action in enumerate(actions):
        if isinstance(action, UpdateCallRecord):
            assert records
            assert records[0] < i
        if isinstance(action, CreateCallRecord) and action.comment is not None:
            assert any(isinstance(a, CreateTicket) for a in actions[:i])
        if api == "calls" and isinstance(action, CreateTicket) and action.ticket.voice_comment is not None:
            assert action.ticket.via_id == 44
        if api == "calls":
            assert not isinstance(action, AddVoiceComment)  # the record's comment is the call's voice comment
