"""The typed actions and the corners of the state machine that the scenario tables do not reach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.core import call_fields
from bridge.core.action_codec import decode, encode
from bridge.core.actions import (
    Action,
    AddNote,
    AddVoiceComment,
    CreateCallRecord,
    CreateTicket,
    DisplayTicket,
    DisplayUser,
    FindCaller,
    Timer,
    caller_key,
    ticket_key,
)
from bridge.core.calls import RECORDING_WAIT, STALE, Call, Policy, step
from bridge.core.events import CallEvent, EventKind
from schemas.zendesk import CallRecord, Comment, VoiceComment, VoiceTicket
from tests.test_calls import ANSWERED, POLICY, SID, T0, parent, run

PHONE = "+14155550123"
VOICE = VoiceComment(from_=PHONE, to="+16505550100", started_at="2026-09-15T14:02:15Z", call_duration=95)
TICKET = VoiceTicket(via_id=45, subject="Call", external_id=SID, assignee_id=1001, comment=Comment(body="hi"))
EVERY_KIND: list[Action] = [
    FindCaller(SID, PHONE),
    DisplayUser(SID, 1001, PHONE),
    CreateTicket(SID, TICKET, requester_phone=PHONE, display_to_agent=1001),
    CreateTicket(SID, TICKET),
    AddVoiceComment(SID, VOICE),
    DisplayTicket(SID, 1001),
    AddNote(SID, "transcription", "Voicemail transcription: hi"),
    Timer(SID, RECORDING_WAIT, T0),
]


@pytest.mark.parametrize("action", EVERY_KIND, ids=lambda action: type(action).__name__)
def test_every_action_survives_its_stored_form(action: Action) -> None:
    """What the store keeps (kind, key, call, payload, due) rebuilds the same typed action."""
    due = action.due if isinstance(action, Timer) else T0
    assert decode(action.kind.value, action.key, action.call_sid, encode(action), due) == action


def test_a_lines_group_and_brand_survive_the_stored_form_and_rows_without_them_read_as_global() -> None:
    """A call's line's group and brand are kept with its ticket and record; rows from before lines have none."""
    placed = CreateTicket(SID, TICKET, group_id=5002, brand_id=6002)
    stored = encode(placed)
    assert (stored["group_id"], stored["brand_id"]) == (5002, 6002)
    assert decode(placed.kind.value, placed.key, SID, stored, T0) == placed
    record = CreateCallRecord(SID, CallRecord(from_line=PHONE, to_line="+16505550100"), brand_id=6002)
    assert decode(record.kind.value, record.key, SID, encode(record), T0) == record
    assert "group_id" not in encode(CreateTicket(SID, TICKET))  # the global settings': stored as before lines
    older = {"ticket": TICKET.wire()}
    assert decode(placed.kind.value, placed.key, SID, older, T0) == CreateTicket(SID, TICKET)


def test_needs_are_derived_from_the_typed_fields() -> None:
    """An action waits on exactly the results its fields name, and nothing is stored twice."""
    needs = {type(action).__name__ + str(bool(getattr(action, "requester_phone", 1))): action.needs
             for action in EVERY_KIND}  # fmt: skip
    assert needs == {
        "FindCallerTrue": (),
        "DisplayUserTrue": (caller_key(PHONE),),
        "CreateTicketTrue": (caller_key(PHONE),),
        "CreateTicketFalse": (),
        "AddVoiceCommentTrue": (ticket_key(SID),),
        "DisplayTicketTrue": (ticket_key(SID),),
        "AddNoteTrue": (ticket_key(SID),),
        "TimerTrue": (),
    }
    assert all("_from" not in key for action in EVERY_KIND for key in encode(action))


@pytest.mark.parametrize(
    ("kind", "key", "payload", "expected"),
    [
        ("display_user", f"{SID}:display_user:1001", {"agent_id": 1001, "user_from": caller_key(PHONE)},
         DisplayUser(SID, 1001, PHONE)),
        ("create_ticket", ticket_key(SID), {"ticket": TICKET.wire(), "requester_from": caller_key(PHONE),
         "display_to_agent": 1001}, CreateTicket(SID, TICKET, requester_phone=PHONE, display_to_agent=1001)),
        ("add_note", f"{SID}:note:transcription", {"body": "x", "ticket_from": ticket_key(SID)},
         AddNote(SID, "transcription", "x")),
        ("add_voice_comment", f"{SID}:voice_comment", {"voice_comment": VOICE.wire(), "ticket_from": ticket_key(SID)},
         AddVoiceComment(SID, VOICE)),
        ("display_ticket", f"{SID}:display_ticket:7", {"agent_id": 7, "ticket_from": ticket_key(SID)},
         DisplayTicket(SID, 7)),
    ],
)  # fmt: skip
def test_payloads_written_before_typed_actions_decode(
    kind: str, key: str, payload: dict[str, Any], expected: Action
) -> None:
    """Rows the untyped code wrote named their dependency by key; they still decode to the same action."""
    assert decode(kind, key, SID, payload, T0) == expected


def test_stale_closes_out_a_call_whose_parent_never_spoke() -> None:
    """A call known only from a leg's callback gets no ticket when reconciliation gives up, and says why."""
    leg_only = CallEvent(kind=EventKind.LEG_STATUS, call_sid=SID, at=T0, leg_sid="CA" + "a" * 32, status="ringing")
    first = step(None, leg_only, T0, POLICY)
    outcome = step(first.call, CallEvent(kind=EventKind.TIMER, call_sid=SID, at=T0, timer=STALE), T0, POLICY)
    assert outcome.actions == []
    assert outcome.call.finished
    assert [key for key, _ in outcome.notices] == ["notice:unknown"]
    assert outcome.call.fired == [STALE]


def test_outcome_orders_revive_the_look_up_and_cancel_moot_waits() -> None:
    """The step, not the store, says which dead look-up to revive and which pending waits to drop."""
    first = step(None, ANSWERED[0], T0, POLICY)
    assert first.revive == [caller_key("+14155550123")]
    call, _, _ = run(ANSWERED[:-1])
    assert f"{SID}:timer:{RECORDING_WAIT}" in call.emitted
    done = step(call, ANSWERED[-1], T0, POLICY)  # the recording: the call is finished
    assert done.call.finished
    assert done.cancel == [f"{SID}:timer:{RECORDING_WAIT}"]
    fired = step(call, CallEvent(kind=EventKind.TIMER, call_sid=SID, at=T0, timer=RECORDING_WAIT), T0, POLICY)
    assert fired.call.finished
    assert fired.cancel == []  # the firing timer settles itself


def test_parent_status_with_a_lower_sequence_is_stale() -> None:
    """A parent callback older than the one already applied changes nothing."""
    call, _, _ = run([parent(EventKind.CALL_STATUS, 1, status="ringing", sequence=2)])
    late = step(call, parent(EventKind.CALL_STATUS, 2, status="initiated", sequence=1), T0, POLICY)
    assert late.call.parent_status == "ringing"


def test_dial_action_recording_is_the_fallback_and_waits_for_the_leg() -> None:
    """A bridged <Dial> whose leg never reported: the dial-action's recording is kept, and the ticket waits."""
    dial = parent(EventKind.DIAL_ENDED, 100, status="in-progress", dial_status="completed", dial_bridged=True,
                  leg_sid="CA" + "c" * 32, duration=90, recording_sid="RE1", recording_url="https://r/RE1",
                  recording_duration=90)  # fmt: skip
    start = step(None, ANSWERED[0], T0, POLICY)
    outcome = step(start.call, dial.model_copy(update={"kind": EventKind.DIAL_ENDED}), T0, POLICY)
    assert outcome.call.recording_hint is not None
    assert outcome.call.recording_hint.url == "https://r/RE1"
    # `over` because the dial ended, but who answered is unknown: a bounded wait, not a ticket.
    assert [type(action).__name__ for action in outcome.actions] == ["Timer"]
    # Still talking and the answering leg never named: nothing to do yet, not even a wait.
    anonymous_leg = CallEvent(kind=EventKind.LEG_STATUS, call_sid=SID, at=T0, leg_sid="CA" + "d" * 32,
                              status="answered", sequence=2)  # fmt: skip
    assert step(start.call, anonymous_leg, T0, POLICY).actions == []


def test_voicemail_whose_status_callback_was_lost_uses_the_record_action() -> None:
    """The <Record action> told of a message; after the wait it becomes the via 44 ticket anyway."""
    events = [
        ANSWERED[0],
        parent(EventKind.DIAL_ENDED, 20, status="in-progress", dial_status="no-answer"),
        parent(
            EventKind.VOICEMAIL_LEFT, 40, recording_sid="RE2", recording_url="https://r/RE2.mp3", recording_duration=9
        ),
        parent(EventKind.CALL_STATUS, 41, status="completed", sequence=3),
    ]
    policy = Policy(agents=POLICY.agents, transcribe_voicemail=False)
    call, _, _ = run(events, policy)
    fired = step(call, CallEvent(kind=EventKind.TIMER, call_sid=SID, at=T0, timer=RECORDING_WAIT), T0, policy)
    (ticket,) = fired.actions
    assert isinstance(ticket, CreateTicket)
    assert ticket.ticket.via_id == 44
    assert ticket.ticket.voice_comment is not None
    assert ticket.ticket.voice_comment.recording_url == "https://r/RE2.mp3"


def test_times_format_for_zendesk_and_people() -> None:
    """Instants print as Zendesk's ISO 8601 UTC and as a readable line; an unknown one is said so."""
    moment = datetime(2026, 9, 15, 14, 2, 7, tzinfo=UTC) + timedelta(microseconds=5)
    assert call_fields._iso(moment) == "2026-09-15T14:02:07Z"
    assert call_fields._iso(None) == ""
    assert call_fields._human(None) == "an unknown time"
    assert Call(sid=SID).over is False
