"""ZENDESK_API=calls: what the state machine asks of the TPE Calls API, call by call (no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bridge.core.action_codec import decode, encode
from bridge.core.actions import (
    CreateCallRecord,
    CreateTicket,
    Timer,
    UpdateCallRecord,
    call_record_key,
    caller_key,
    ticket_key,
)
from bridge.core.calls import (
    ABANDONED_IN_QUEUE,
    ABANDONED_IN_VOICEMAIL,
    COMPLETED,
    RECORDING_WAIT,
    WRAP_UP,
    Policy,
    step,
)
from bridge.core.events import CallEvent, EventKind
from schemas.zendesk import CallComment, CallRecord
from tests.test_calls import (
    ANSWERED,
    CALLER,
    NUMBER,
    POLICY,
    SID,
    T0,
    kinds,
    leg,
    outbound_start,
    parent,
    recording,
    run,
)

CALLS = replace(POLICY, api="calls")
AT_END = replace(CALLS, ticket_on="end")
NO_ANSWER = parent(EventKind.DIAL_ENDED, 21, status="in-progress", dial_status="no-answer", dial_bridged=False)
HUNG_UP = parent(EventKind.DIAL_ENDED, 21, status="completed", dial_status="no-answer", dial_bridged=False)


def emitted(events: list[CallEvent], policy: Policy) -> list[object]:
    """Fold events in order and return every action, typed."""
    call = None
    out: list[object] = []
    for number, event in enumerate(events):
        outcome = step(call, event, T0 + timedelta(seconds=1000 + number), policy)
        call = outcome.call
        out.extend(outcome.actions)
    return out


def test_an_answered_call_gets_its_record_on_the_ticket_then_its_end_and_recording() -> None:
    """TICKET_ON=answer: ticket and record at the answer, then one update with the end and the recording."""
    _, actions, _ = run(ANSWERED, CALLS)
    assert kinds(actions) == [
        "find_caller",
        "display_user",
        "create_ticket",
        "create_call_record",
        "timer",  # the <Dial> ended but the recording is not in yet: wait for it, boundedly
        "update_call_record",  # the end, the talk time and the recording, together
    ]
    assert "add_voice_comment" not in kinds(actions)  # the record's TPE voice comment is the call's one
    typed = emitted(ANSWERED, CALLS)
    (record,) = [a for a in typed if isinstance(a, CreateCallRecord)]
    assert record.record == CallRecord(
        from_line=CALLER,
        to_line=NUMBER,
        call_started_at="2026-09-15T14:02:07Z",
        direction="inbound",
        external_id=SID,
        agent_id=1001,
        time_to_answer=8,
    )
    assert record.comment is not None
    assert record.comment.author_id == 1001
    assert "recording_url" in record.comment.call_fields
    assert record.needs == (ticket_key(SID), caller_key(CALLER))
    (ended,) = [a for a in typed if isinstance(a, UpdateCallRecord)]
    assert ended.name == "ended"
    assert ended.fields == CallRecord(
        call_ended_at="2026-09-15T14:03:51Z",
        duration=104,
        completion_status=COMPLETED,
        talk_time=95,
        time_to_answer=8,
        recording_url="https://api.twilio.com/rec/RE9.mp3",
        recording_time=95,
        agent_id=1001,
    )
    assert ended.needs == (call_record_key(SID),)
    # The ticket itself is today's, with a plain note and no Tickets API voice comment.
    (ticket,) = [a for a in typed if isinstance(a, CreateTicket)]
    assert ticket.ticket.voice_comment is None
    assert ticket.ticket.comment is not None


def test_ticket_on_end_creates_the_ticket_and_a_complete_record_together() -> None:
    """TICKET_ON=end: one create of the record, with every field, after the ticket; no updates."""
    typed = emitted(ANSWERED, AT_END)
    assert [type(a).__name__ for a in typed][-2:] == ["CreateTicket", "CreateCallRecord"]
    (record,) = [a for a in typed if isinstance(a, CreateCallRecord)]
    assert not [a for a in typed if isinstance(a, UpdateCallRecord)]
    fields = record.record
    assert (fields.agent_id, fields.talk_time, fields.completion_status) == (1001, 95, COMPLETED)
    assert fields.recording_url is not None
    (ticket,) = [a for a in typed if isinstance(a, CreateTicket)]
    assert ticket.ticket.voice_comment is None


@pytest.mark.parametrize(("missed_call_tickets", "with_comment"), [(True, True), (False, False)])
def test_a_missed_call_is_recorded_with_or_without_its_ticket(missed_call_tickets: bool, with_comment: bool) -> None:
    """An abandoned call always gets its record; the ticket (and so the comment) follows MISSED_CALL_TICKETS."""
    policy = replace(CALLS, missed_call_tickets=missed_call_tickets)
    typed = emitted([ANSWERED[0], HUNG_UP], policy)
    (record,) = [a for a in typed if isinstance(a, CreateCallRecord)]
    assert record.record.completion_status == ABANDONED_IN_QUEUE
    assert record.record.agent_id is None
    assert (record.comment is not None) is with_comment
    assert (ticket_key(SID) in record.needs) is with_comment
    assert any(isinstance(a, CreateTicket) for a in typed) is missed_call_tickets


def test_a_voicemail_keeps_its_voice_comment_and_gets_a_record_linked_without_a_second_one() -> None:
    """Via 44 carries the message once; the record, linked to it, says voicemail, holds recording and transcript."""
    message = recording("completed", "voicemail", 23)
    done = CallEvent(
        kind=EventKind.TRANSCRIPTION, call_sid=SID, at=T0, transcription_status="completed", transcription_text="hi"
    )
    typed = emitted(
        [ANSWERED[0], NO_ANSWER, message, done, parent(EventKind.CALL_STATUS, 60, status="completed")], CALLS
    )
    (ticket,) = [a for a in typed if isinstance(a, CreateTicket)]
    assert ticket.ticket.via_id == 44
    assert ticket.ticket.voice_comment is not None
    (record,) = [a for a in typed if isinstance(a, CreateCallRecord)]
    assert record.record.voicemail is True
    assert record.record.completion_status == ABANDONED_IN_VOICEMAIL
    assert record.record.transcript == "hi"
    assert record.record.recording_time == 23
    assert record.comment is None  # a TPE voice comment would play the message a second time
    assert record.linked
    assert ticket_key(SID) in record.needs


def test_a_late_transcription_patches_the_record_too() -> None:
    """A transcription after the ticket: the private note as before, and the record's transcript."""
    message = recording("completed", "voicemail", 23)
    wait = CallEvent(kind=EventKind.TIMER, call_sid=SID, at=T0, timer="transcription_wait")
    late = CallEvent(
        kind=EventKind.TRANSCRIPTION, call_sid=SID, at=T0, transcription_status="completed", transcription_text="late"
    )
    _, actions, _ = run([ANSWERED[0], NO_ANSWER, message, wait, late], CALLS)
    assert kinds(actions)[-2:] == ["add_note", "update_call_record"]
    assert actions[-1][1] == f"{call_record_key(SID)}:transcript"


def test_an_unanswered_call_out_is_recorded_without_a_ticket() -> None:
    """A call out nobody answered makes no ticket, but its record exists."""
    start = outbound_start()
    over = CallEvent(kind=EventKind.CALL_STATUS, call_sid=SID, at=T0 + timedelta(seconds=30), status="no-answer")
    # The parent's status alone may have overtaken the leg's `answered`: wait before a record nobody can take back.
    assert [type(a).__name__ for a in emitted([start, over], CALLS)][-1] == "Timer"
    waited = CallEvent(kind=EventKind.TIMER, call_sid=SID, at=T0, timer=RECORDING_WAIT)
    typed = emitted([start, over, waited], CALLS)
    (record,) = [a for a in typed if isinstance(a, CreateCallRecord)]
    assert record.comment is None
    assert record.record.from_line == "+16505550100"  # CALLER_ID, the number the customer saw
    assert record.record.to_line == "+14155550199"
    assert record.record.direction == "outbound"
    # The <Dial action> is sure at once: no wait.
    verdict = CallEvent(
        kind=EventKind.DIAL_ENDED, call_sid=SID, at=T0, status="completed", dial_status="no-answer", dial_bridged=False
    )
    assert any(isinstance(a, CreateCallRecord) for a in emitted([start, verdict, over], CALLS))


def test_tickets_mode_is_untouched() -> None:
    """ZENDESK_API=tickets (the default) emits no call-record action on any path."""
    for events in (ANSWERED, [ANSWERED[0], HUNG_UP]):
        assert not [k for k in kinds(run(events, POLICY)[1]) if "call_record" in k]


@pytest.mark.parametrize(
    "action",
    [
        CreateCallRecord(
            SID, CallRecord(from_line=CALLER, direction="inbound"), CallComment(title="t", call_fields=[])
        ),
        CreateCallRecord(SID, CallRecord(from_line=CALLER), None, CALLER),
        UpdateCallRecord(SID, "ended", CallRecord(duration=3, completion_status=COMPLETED)),
    ],
)
def test_call_record_actions_survive_their_stored_form(action: CreateCallRecord | UpdateCallRecord) -> None:
    """What the store keeps rebuilds the same typed action."""
    assert decode(action.kind.value, action.key, action.call_sid, encode(action), T0) == action


def test_a_replayed_old_call_keeps_twilio_durations_not_the_gap_between_clocks() -> None:
    """Legs dated by Twilio's Timestamp months before the parent's webhooks arrived: duration is the ring time."""
    late = timedelta(days=60)
    events = [
        leg("ringing", 1, 1),
        leg("no-answer", 2, 12),
        parent(EventKind.CALL_STARTED, late.total_seconds()),
        parent(
            EventKind.DIAL_ENDED,
            late.total_seconds() + 21,
            status="completed",
            dial_status="no-answer",
            dial_bridged=False,
        ),
    ]
    (record,) = [a for a in emitted(events, CALLS) if isinstance(a, CreateCallRecord)]
    assert record.record.duration == 11
    assert record.record.call_started_at == "2026-09-15T14:02:08Z"
    assert record.record.call_ended_at == "2026-09-15T14:02:19Z"


def test_a_leg_that_picked_up_but_never_connected_is_unsaid_in_the_record() -> None:
    """The record made at the pick-up is corrected at the end: abandoned, and no agent, answer or talk time."""
    events = [
        parent(EventKind.CALL_STARTED),
        leg("ringing", 1, 1),
        leg("answered", 2, 5),
        parent(EventKind.DIAL_ENDED, 9, status="completed", dial_status="completed", dial_bridged=False),
        parent(EventKind.CALL_STATUS, 10, status="completed", sequence=0),
        leg("completed", 3, 10, duration=5),
        CallEvent(kind=EventKind.TIMER, call_sid=SID, at=T0, timer=RECORDING_WAIT),
    ]
    typed = emitted(events, CALLS)
    (created,) = [a for a in typed if isinstance(a, CreateCallRecord)]
    assert created.record.agent_id == 1001  # the pick-up looked like an answer
    (ended,) = [a for a in typed if isinstance(a, UpdateCallRecord)]
    assert ended.fields.completion_status == ABANDONED_IN_QUEUE
    assert ended.wire()["agent_id"] is None
    assert ended.wire()["time_to_answer"] is None
    assert decode(ended.kind.value, ended.key, SID, encode(ended), T0) == ended


def test_a_message_left_after_an_unconnected_pick_up_corrects_the_record_made_then() -> None:
    """The pick-up made the ticket and the record; the caller then leaves a voicemail: the record becomes it."""
    events = [
        parent(EventKind.CALL_STARTED),
        leg("ringing", 1, 1),
        leg("answered", 2, 5),
        NO_ANSWER.model_copy(update={"dial_status": "completed"}),  # picked up, never bridged: voicemail
        recording("completed", "voicemail", 23),
        CallEvent(kind=EventKind.TRANSCRIPTION, call_sid=SID, at=T0, transcription_status="failed"),
    ]
    typed = emitted(events, CALLS)
    assert len([a for a in typed if isinstance(a, CreateCallRecord)]) == 1
    (ended,) = [a for a in typed if isinstance(a, UpdateCallRecord)]
    assert ended.fields.voicemail is True
    assert ended.fields.completion_status == ABANDONED_IN_VOICEMAIL
    assert ended.fields.recording_time == 23
    assert set(ended.cleared) == {"agent_id", "time_to_answer", "talk_time"}
    assert not [a for a in typed if type(a).__name__ == "AddVoiceComment"]


def test_an_answer_reported_after_the_call_was_judged_missed_names_the_agent_in_the_end() -> None:
    """Parent over, the wait ran out (missed), then the leg's `answered` and the <Dial action> arrive: the record
    made as abandoned ends completed, with the agent who answered."""
    events = [
        parent(EventKind.CALL_STARTED),
        parent(EventKind.CALL_STATUS, 100, status="completed", sequence=0, duration=100),
        CallEvent(kind=EventKind.TIMER, call_sid=SID, at=T0, timer=RECORDING_WAIT),
        leg("answered", 2, 8),
        leg("completed", 3, 98, duration=90),
        parent(EventKind.DIAL_ENDED, 98, status="in-progress", dial_status="completed", dial_bridged=True,
               leg_sid="CA" + "a" * 32, duration=90),
    ]  # fmt: skip
    typed = emitted(events, CALLS)
    (created,) = [a for a in typed if isinstance(a, CreateCallRecord)]
    assert created.record.completion_status == ABANDONED_IN_QUEUE
    (ended,) = [a for a in typed if isinstance(a, UpdateCallRecord)]
    assert (ended.fields.completion_status, ended.fields.agent_id) == (COMPLETED, 1001)


def test_a_recording_before_the_final_status_waits_for_twilios_duration() -> None:
    """The recording first: the record's end waits for the parent's CallDuration instead of computing one."""
    recording_first = [*ANSWERED[:6], recording(), ANSWERED[6]]
    typed = emitted(recording_first, CALLS)
    (ended,) = [a for a in typed if isinstance(a, UpdateCallRecord)]
    assert ended.fields.duration == 104  # Twilio's CallDuration, not time to answer + talk time (103)
    assert ended.fields.call_ended_at == "2026-09-15T14:03:51Z"


def test_without_a_final_status_the_end_goes_out_when_the_wait_runs_out() -> None:
    """A parent status callback that never comes delays the record's end by RECORDING_WAIT, no longer."""
    wait = CallEvent(kind=EventKind.TIMER, call_sid=SID, at=T0, timer=RECORDING_WAIT)
    typed = emitted([*ANSWERED[:6], recording()], CALLS)
    assert not [a for a in typed if isinstance(a, UpdateCallRecord)]
    typed = emitted([*ANSWERED[:6], recording(), wait], CALLS)
    (ended,) = [a for a in typed if isinstance(a, UpdateCallRecord)]
    assert ended.fields.duration == 103  # all that is known: rang 8 s, talked 95 s


def test_the_agents_wrap_up_goes_on_the_record_when_it_runs_out() -> None:
    """WRAP_UP_SECONDS=30: once the call ended, a wait of 30 s, then the record's wrap_up_time."""
    policy = replace(CALLS, wrap_up=30.0)
    typed = emitted(ANSWERED, policy)
    (timer,) = [a for a in typed if isinstance(a, Timer) and a.name == WRAP_UP]
    assert timer.due == T0 + timedelta(seconds=104 + 30)  # from the parent's final status
    assert not [a for a in typed if isinstance(a, UpdateCallRecord) and a.name == "wrap_up"]
    ran_out = CallEvent(kind=EventKind.TIMER, call_sid=SID, at=T0, timer=WRAP_UP)
    (wrapped,) = [a for a in emitted([*ANSWERED, ran_out], policy) if isinstance(a, UpdateCallRecord)][-1:]
    assert (wrapped.name, wrapped.fields.wrap_up_time) == ("wrap_up", 30)


def test_a_wrap_up_the_agent_ended_early_goes_on_the_record_as_it_lasted() -> None:
    """The agent ends wrap-up 12 s in: the record says 12, whenever the event comes."""
    policy = replace(CALLS, wrap_up=30.0)
    ended = CallEvent(kind=EventKind.WRAP_UP_ENDED, call_sid=SID, at=T0, duration=12)
    for events in ([*ANSWERED, ended], [ANSWERED[0], ended, *ANSWERED[1:]]):
        updates = [a for a in emitted(events, policy) if isinstance(a, UpdateCallRecord) and a.name == "wrap_up"]
        assert [u.fields.wrap_up_time for u in updates] == [12]


def test_no_wrap_up_no_wait_and_no_field() -> None:
    """WRAP_UP_SECONDS=0 (the default): nothing waits after the call, and the record has no wrap_up_time."""
    typed = emitted(ANSWERED, CALLS)
    assert not [a for a in typed if isinstance(a, Timer) and a.name == WRAP_UP]
