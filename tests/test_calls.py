"""Table tests of the pure call state machine: events in, actions out, no I/O and no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.core.actions import AddVoiceComment, CreateTicket, FindCaller
from bridge.core.calls import RECORDING_WAIT, TRANSCRIPTION_WAIT, Call, Policy, step
from bridge.core.events import CallEvent, EventKind, RecordingOf

T0 = datetime(2026, 9, 15, 14, 2, 7, tzinfo=UTC)
SID, ALICE_LEG, BOB_LEG = "CA" + "1" * 32, "CA" + "a" * 32, "CA" + "b" * 32
POLICY = Policy(agents={"client:alice": 1001, "client:bob": 1002}, caller_id="+16505550100")
CALLER, NUMBER = "+14155550123", "+16505550100"


def parent(kind: EventKind, seconds: float = 0, **fields: Any) -> CallEvent:
    """An event of the parent call of an inbound call from CALLER."""
    base: dict[str, Any] = {"direction": "inbound", "from_number": CALLER, "to_number": NUMBER}
    return CallEvent(kind=kind, call_sid=SID, at=T0 + timedelta(seconds=seconds), **{**base, **fields})


def leg(
    status: str, seq: int, seconds: float = 0, sid: str = ALICE_LEG, to: str = "client:alice", **f: Any
) -> CallEvent:
    """A status callback of a dialed leg."""
    return CallEvent(
        kind=EventKind.LEG_STATUS,
        call_sid=SID,
        at=T0 + timedelta(seconds=seconds),
        leg_sid=sid,
        leg_to=to,
        status=status,
        sequence=seq,
        **f,
    )


def recording(status: str = "completed", holds: RecordingOf = "conversation", duration: int = 95) -> CallEvent:
    """A recording-status callback, as the translator gives it (no From/To, as Twilio sends it)."""
    return CallEvent(
        kind=EventKind.RECORDING,
        call_sid=SID,
        at=T0 + timedelta(seconds=110),
        recording_sid="RE" + "9" * 32,
        recording_url="https://api.twilio.com/rec/RE9.mp3",
        recording_duration=duration,
        recording_status=status,
        recording_of=holds,
    )


def run(events: list[CallEvent], policy: Policy = POLICY) -> tuple[Call, list[tuple[str, str]], list[tuple[str, str]]]:
    """Fold events in order; return the final call, every action as (kind, key) and every notice."""
    call: Call | None = None
    actions: list[tuple[str, str]] = []
    notices: list[tuple[str, str]] = []
    for number, event in enumerate(events):
        outcome = step(call, event, T0 + timedelta(seconds=1000 + number), policy)
        call = outcome.call
        actions += [(a.kind.value, a.key) for a in outcome.actions]
        notices += outcome.notices
    assert call is not None
    return call, actions, notices


def kinds(actions: list[tuple[str, str]]) -> list[str]:
    """Return just the kinds."""
    return [kind for kind, _ in actions]


ANSWERED = [
    parent(EventKind.CALL_STARTED),
    leg("initiated", 0, 1),
    leg("ringing", 1, 1),
    leg("answered", 2, 8),
    leg("completed", 3, 103, duration=95),
    parent(
        EventKind.DIAL_ENDED,
        103,
        status="in-progress",
        dial_status="completed",
        dial_bridged=True,
        leg_sid=ALICE_LEG,
        duration=95,
    ),
    parent(EventKind.CALL_STATUS, 104, status="completed", sequence=0, duration=104),
    recording(),
]


@pytest.mark.parametrize(
    ("events", "policy", "expected"),
    [
        pytest.param(
            ANSWERED,
            POLICY,
            ["find_caller", "display_user", "create_ticket", "timer", "add_voice_comment"],
            id="answered",
        ),
        pytest.param(
            ANSWERED,
            Policy(agents=POLICY.agents, ticket_on="end"),
            ["find_caller", "display_user", "timer", "create_ticket"],
            id="answered-ticket-on-end",
        ),
        pytest.param(
            ANSWERED[:-1], POLICY, ["find_caller", "display_user", "create_ticket", "timer"], id="waits-for-recording"
        ),
        pytest.param(
            ANSWERED[:-1],
            Policy(agents=POLICY.agents, record_calls=False),
            ["find_caller", "display_user", "create_ticket", "add_voice_comment"],
            id="not-recording",
        ),
        pytest.param(
            [recording(), *ANSWERED[:-1]],
            POLICY,
            ["find_caller", "display_user", "create_ticket", "add_voice_comment"],
            id="recording-first",
        ),
        pytest.param(
            [ANSWERED[6], *ANSWERED[:6], ANSWERED[7]],
            POLICY,
            ["find_caller", "timer", "create_ticket", "add_voice_comment"],
            id="parent-completed-first",
        ),
        pytest.param(
            [*ANSWERED, leg("ringing", 1, 120)],
            POLICY,
            ["find_caller", "display_user", "create_ticket", "timer", "add_voice_comment"],
            id="stale-ringing",
        ),
        pytest.param(
            [ANSWERED[0], leg("ringing", 1, 1, sid=BOB_LEG, to="client:bob"), leg("ringing", 1, 1)],
            POLICY,
            ["find_caller", "display_user", "display_user"],
            id="pops-each-agent",
        ),
        pytest.param(
            [ANSWERED[0], leg("ringing", 1, 1), leg("ringing", 1, 1)],
            POLICY,
            ["find_caller", "display_user"],
            id="pops-once",
        ),
        pytest.param(
            [ANSWERED[0], leg("ringing", 1, 1, to="client:zed")], POLICY, ["find_caller"], id="unmapped-leg-no-pop"
        ),
        pytest.param([leg("ringing", 1, 1), leg("answered", 2, 2)], POLICY, [], id="unknown-call-kept-waiting"),
        pytest.param(
            [parent(EventKind.CALL_STARTED, from_number="Anonymous"), leg("ringing", 1, 1)],
            POLICY,
            [],
            id="anonymous-no-lookup",
        ),
        pytest.param([parent(EventKind.CALL_STARTED, from_number="+266696687")], POLICY, [], id="withheld-standin"),
    ],
)
def test_actions_for_event_sequences(events: list[CallEvent], policy: Policy, expected: list[str]) -> None:
    """Each sequence of events yields exactly these actions, in this order."""
    _, actions, _ = run(events, policy)
    assert kinds(actions) == expected


def test_voice_comment_fields_follow_design_decisions() -> None:
    """call_duration is the agent leg's talk time; started_at its answer; recording as .mp3."""
    call, _, _ = run(ANSWERED)
    outcome = step(call, recording(), T0, POLICY)  # a duplicate recording changes nothing
    assert outcome.actions == []
    assert FindCaller(SID, CALLER) in step(None, ANSWERED[0], T0, POLICY).actions
    final = run(ANSWERED)[0]
    assert final.legs[ALICE_LEG].duration == 95
    assert final.legs[ALICE_LEG].answered_at == T0 + timedelta(seconds=8)


def test_terminal_leg_status_is_sticky_and_lower_sequences_are_stale() -> None:
    """A late `answered` after `completed`, or a lower SequenceNumber, changes nothing."""
    call, _, _ = run([ANSWERED[0], leg("completed", 3, 100, duration=90), leg("answered", 2, 10)])
    assert call.legs[ALICE_LEG].status == "completed"
    assert call.legs[ALICE_LEG].answered_at == T0 + timedelta(seconds=10)  # 100 s - 90 s of talk
    call, _, _ = run([ANSWERED[0], leg("ringing", 5, 1), leg("initiated", 4, 0)])
    assert call.legs[ALICE_LEG].status == "ringing"


def test_timer_sends_voice_comment_without_recording() -> None:
    """When the recording wait runs out, the voice comment goes without recording_url."""
    call, _, _ = run(ANSWERED[:-1])
    timer = CallEvent(kind=EventKind.TIMER, call_sid=SID, at=T0, timer=RECORDING_WAIT)
    outcome = step(call, timer, T0, POLICY)
    (action,) = outcome.actions
    assert isinstance(action, AddVoiceComment)
    assert action.voice_comment.recording_url is None
    assert "recording_url" not in action.voice_comment.wire()
    assert outcome.call.finished


def test_unmapped_agent_leaves_ticket_unassigned_with_a_notice() -> None:
    """An answering identity not in AGENTS: no assignee, no display_to_agent, a notice naming it."""
    events = [ANSWERED[0], leg("answered", 2, 8, to="+16505550177")]
    unscreened = Policy(agents=POLICY.agents, caller_id=POLICY.caller_id, screen_phone_agents=False)
    _, actions, notices = run(events, unscreened)
    assert kinds(actions) == ["find_caller", "create_ticket"]
    assert any(key == "notice:unmapped" and "…0177" in text and "not in AGENTS" in text for key, text in notices)


def test_missed_and_voicemail_paths() -> None:
    """No answer: voicemail when a message is left (waiting for its transcription), else a missed call."""
    no_answer = parent(EventKind.DIAL_ENDED, 21, status="in-progress", dial_status="no-answer", dial_bridged=False)
    hung_up = parent(EventKind.DIAL_ENDED, 21, status="completed", dial_status="no-answer", dial_bridged=False)
    _, actions, _ = run([ANSWERED[0], hung_up])
    assert kinds(actions) == ["find_caller", "create_ticket"]
    _, actions, _ = run([ANSWERED[0], no_answer, recording("absent", "voicemail", 0)])
    assert kinds(actions) == ["find_caller", "create_ticket"]
    call, actions, _ = run([ANSWERED[0], no_answer, recording("completed", "voicemail", 23)])
    assert kinds(actions) == ["find_caller", "timer"]
    assert actions[-1][1].endswith(TRANSCRIPTION_WAIT)
    done = CallEvent(
        kind=EventKind.TRANSCRIPTION,
        call_sid=SID,
        at=T0,
        transcription_status="completed",
        transcription_text="call me",
    )
    outcome = step(call, done, T0, POLICY)
    (ticket,) = outcome.actions
    assert isinstance(ticket, CreateTicket)
    assert ticket.ticket.via_id == 44
    assert ticket.ticket.voice_comment is not None
    assert ticket.ticket.voice_comment.transcription_text == "call me"
    _, actions, _ = run([ANSWERED[0], hung_up], Policy(agents=POLICY.agents, missed_call_tickets=False))
    assert kinds(actions) == ["find_caller"]


def outbound_start() -> CallEvent:
    """The start of client:alice's call out to a customer."""
    return CallEvent(
        kind=EventKind.CALL_STARTED,
        call_sid=SID,
        at=T0,
        direction="outbound",
        from_number="client:alice",
        to_number="+14155550199",
    )


def test_outbound_call_pops_callee_and_creates_via_46() -> None:
    """From client:alice to a customer: pop the callee to alice, via 46 ticket assigned to her."""
    start = outbound_start()
    customer = "+14155550199"
    _, actions, _ = run([start, leg("initiated", 0, 1, to=customer), leg("answered", 2, 5, to=customer)])
    assert kinds(actions) == ["find_caller", "display_user", "create_ticket"]
    call, _, _ = run(
        [
            start,
            leg("no-answer", 2, 30, to=customer),
            CallEvent(
                kind=EventKind.DIAL_ENDED,
                call_sid=SID,
                at=T0,
                direction="outbound",
                from_number="client:alice",
                to_number=customer,
                dial_status="no-answer",
                dial_bridged=False,
                status="in-progress",
            ),
        ]
    )
    assert call.finished
    assert act_keys(call) == {f"tel:{customer}:user", "notice:no_ticket"}


def act_keys(call: Call) -> set[str]:
    """Return what a call emitted."""
    return set(call.emitted)


def test_step_does_not_mutate_its_input() -> None:
    """The machine is pure: the call passed in is left as it was."""
    call, _, _ = run(ANSWERED[:3])
    before = call.model_dump_json()
    step(call, ANSWERED[3], T0, POLICY)
    assert call.model_dump_json() == before


def cancels(events: list[CallEvent], policy: Policy = POLICY) -> list[list[str]]:
    """Fold events in order; return each step's cancel orders."""
    call: Call | None = None
    orders: list[list[str]] = []
    for event in events:
        outcome = step(call, event, T0, policy)
        call = outcome.call
        orders.append(outcome.cancel)
    return orders


RING_BOTH = [
    parent(EventKind.CALL_STARTED),
    leg("ringing", 1, 1),
    leg("ringing", 1, 1, sid=BOB_LEG, to="client:bob"),
]


def test_answer_cancels_the_pops_of_the_agents_who_did_not_answer() -> None:
    """When alice answers, bob's pending pop is moot (ordered once); alice's own pop may still land."""
    orders = cancels([*RING_BOTH, leg("answered", 2, 5), leg("canceled", 2, 5, sid=BOB_LEG, to="client:bob")])
    assert orders == [[], [], [], [f"{SID}:display_user:1002"], []]


def test_a_call_that_ends_unanswered_cancels_every_pop() -> None:
    """The caller hung up while both phones rang: no pop can matter any more."""
    hangup = parent(EventKind.CALL_STATUS, 6, status="completed", sequence=3)
    orders = cancels([*RING_BOTH, hangup])
    assert orders[-1] == [f"{SID}:display_user:1001", f"{SID}:display_user:1002"]


def test_outbound_answer_keeps_the_calling_agents_pop() -> None:
    """An outbound call's pop goes to the agent who dialed: the customer answering does not make it moot."""
    start = CallEvent(kind=EventKind.CALL_STARTED, call_sid=SID, at=T0, direction="outbound",
                      from_number="client:alice", to_number="+14155550199")  # fmt: skip
    customer = "+14155550199"
    orders = cancels([start, leg("initiated", 0, 1, to=customer), leg("answered", 2, 5, to=customer)])
    assert orders == [[], [], []]
