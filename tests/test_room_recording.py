"""A call's recording in parts, purely: the voice comment waits for every part, links the first, carries them all."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, timedelta
from typing import Any

import pytest

from bridge.core.action_codec import decode, encode
from bridge.core.actions import (
    Action,
    AddNote,
    AddVoiceComment,
    CreateCallRecord,
    CreateTicket,
    Timer,
    UpdateCallRecord,
)
from bridge.core.call_model import RECORDING_WAIT, Call, Policy, Recording
from bridge.core.calls import step
from bridge.core.events import CallEvent, EventKind
from bridge.ops.recordings import LinkSigner
from schemas.zendesk import CallRecord, VoiceComment, VoiceTicket
from tests.test_call_room import HELD_THEN_RESUMED, SID, T0, answered_call, fold, room_event

ACCOUNT = "https://api.twilio.com/2010-04-01/Accounts/AC" + "0" * 32 + "/Recordings/"
BEFORE, ROOM, FRESH = "RE" + "1" * 32, "RE" + "2" * 32, "RE" + "3" * 32
AGENTS = {"client:alice": 1001}


def url(sid: str) -> str:
    """Return where a recording plays."""
    return f"{ACCOUNT}{sid}.mp3"


def held_call() -> Call:
    """Return alice's call, held 20 s in and resumed in its room, over at 90 s; its recording before the room in."""
    call = answered_call()
    call.recording = Recording(sid=BEFORE, url=url(BEFORE), duration=16, started_at=T0 + timedelta(seconds=4),
                               status="completed")  # fmt: skip
    call.room = fold(HELD_THEN_RESUMED)
    call.parent_duration = 91  # the customer's call's own length, which a record's end waits for
    return call


def room_recording(sid: str, at: float, duration: int, status: str = "completed") -> CallEvent:
    """Return the room's recording `sid`, begun `at` seconds in, reported `status`."""
    return CallEvent(kind=EventKind.RECORDING, call_sid=SID, at=T0 + timedelta(seconds=100), recording_sid=sid,
                     recording_url=url(sid), recording_duration=duration, recording_status=status,
                     recording_of="room", recording_started_at=T0 + timedelta(seconds=at))  # fmt: skip


def decided(call: Call, events: list[CallEvent], **policy: Any) -> tuple[Call, list[Action]]:
    """Step the call through the events; return it and every action decided on the way."""
    rules = Policy(agents=AGENTS, **policy)
    actions: list[Action] = []
    for event in events:
        outcome = step(call, event, T0 + timedelta(seconds=100), rules)
        call = outcome.call
        actions += outcome.actions
    return call, actions


def only(actions: list[Action], kind: type[Any]) -> Any:
    """Return the one action of a kind."""
    (found,) = [action for action in actions if isinstance(action, kind)]
    return found


def test_the_voice_comment_waits_for_the_room_s_recording_then_carries_both_parts() -> None:
    """Without the room's recording the comment waits (boundedly); with it, it links part 1 and carries both."""
    call, actions = decided(held_call(), [room_event("left", 90.5)])
    assert not [action for action in actions if isinstance(action, AddVoiceComment)]
    assert only(actions, Timer).name == RECORDING_WAIT
    call, actions = decided(call, [room_recording(ROOM, 50, 40)])
    comment = only(actions, AddVoiceComment)
    assert comment.voice_comment.recording_url == url(BEFORE)
    assert comment.parts == (url(BEFORE), url(ROOM))
    assert comment.voice_comment.call_duration == 86  # answered at 4 s, the room over at 90 s
    assert not [action for action in actions if isinstance(action, AddNote)]


def test_the_record_s_recording_time_is_every_part_s() -> None:
    """ZENDESK_API=calls: the record's one recording is the first part's link, 16 s + 40 s long."""
    _, actions = decided(held_call(), [room_recording(ROOM, 50, 40)], api="calls")
    update = only(actions, UpdateCallRecord)
    assert (update.fields.recording_url, update.fields.recording_time) == (url(BEFORE), 56)
    assert update.parts == (url(BEFORE), url(ROOM))


def test_ticket_and_record_made_at_the_end_carry_the_parts_too() -> None:
    """TICKET_ON=end: the ticket's voice comment (or the record made with the ticket) carries both parts."""
    _, actions = decided(held_call(), [room_recording(ROOM, 50, 40)], ticket_on="end")
    ticket = only(actions, CreateTicket)
    assert ticket.ticket.voice_comment.recording_url == url(BEFORE)
    assert ticket.parts == (url(BEFORE), url(ROOM))
    _, actions = decided(held_call(), [room_recording(ROOM, 50, 40)], ticket_on="end", api="calls")
    record = only(actions, CreateCallRecord)
    assert (record.record.recording_url, record.record.recording_time) == (url(BEFORE), 56)
    assert record.parts == (url(BEFORE), url(ROOM))


def test_every_room_that_started_is_waited_for_and_the_parts_play_in_the_order_they_began() -> None:
    """A cold transfer starts a fresh room: both rooms' recordings, each over, in the order they began."""
    call = held_call()
    fresh = [room_event(what, at, leg=None).model_copy(update={"room": "CF" + "8" * 32}) for what, at in
             (("start", 95), ("end", 125))]  # fmt: skip
    later = room_recording(FRESH, 95, 30)
    call, actions = decided(call, [*fresh, later])
    assert only(actions, Timer).name == RECORDING_WAIT  # one of the two rooms' recordings is in
    call, actions = decided(call, [room_recording(ROOM, 50, 40, status="in-progress")])
    assert not [action for action in actions if isinstance(action, AddVoiceComment)]  # that one is not over
    _, actions = decided(call, [room_recording(ROOM, 50, 40)])
    assert only(actions, AddVoiceComment).parts == (url(BEFORE), url(ROOM), url(FRESH))


def test_with_only_the_provider_s_links_the_other_parts_are_noted_on_the_ticket() -> None:
    """RECORDINGS=twilio: the comment links part 1, and a private note lists every part in order."""
    _, actions = decided(held_call(), [room_recording(ROOM, 50, 40)], joined_recordings=False)
    note = only(actions, AddNote)
    assert note.name == "recording_parts"
    assert f"1. {url(BEFORE)}" in note.body
    assert f"2. {url(ROOM)}" in note.body
    assert only(actions, AddVoiceComment).voice_comment.recording_url == url(BEFORE)


def test_a_room_that_recorded_nothing_leaves_the_recording_in_one_part() -> None:
    """An absent room recording is no part: the comment is the call's one recording, as for any call."""
    _, actions = decided(held_call(), [room_recording(ROOM, 50, 0, status="absent")], api="calls")
    update = only(actions, UpdateCallRecord)
    assert (update.fields.recording_url, update.fields.recording_time, update.parts) == (url(BEFORE), 16, ())


def test_waited_long_enough_the_comment_goes_with_the_parts_that_came() -> None:
    """RECORDING_WAIT ran out before the room's recording came: the comment goes with the first part alone."""
    wait = CallEvent(kind=EventKind.TIMER, call_sid=SID, at=T0 + timedelta(seconds=300), timer=RECORDING_WAIT)
    _, actions = decided(held_call(), [room_event("left", 90.5), wait])
    comment = only(actions, AddVoiceComment)
    assert (comment.voice_comment.recording_url, comment.parts) == (url(BEFORE), ())


def test_the_room_s_recording_alone_is_the_recording_when_the_first_part_never_came() -> None:
    """Nothing recorded before the room (waited for): the room's recording, in one part, is the call's."""
    call = held_call()
    call.recording = None
    call.fired.append(RECORDING_WAIT)
    _, actions = decided(call, [room_recording(ROOM, 50, 40)], api="calls")
    update = only(actions, UpdateCallRecord)
    assert (update.fields.recording_url, update.fields.recording_time, update.parts) == (url(ROOM), 40, ())


def test_parts_without_lengths_have_no_recording_time() -> None:
    """Parts whose lengths were never reported sum to no length at all, not to zero."""
    call = held_call()
    assert call.recording is not None
    call.recording.duration = None
    event = room_recording(ROOM, 50, 0).model_copy(update={"recording_duration": None})
    _, actions = decided(call, [event], api="calls")
    update = only(actions, UpdateCallRecord)
    assert (update.fields.recording_time, len(update.parts)) == (None, 2)


PARTS = ("https://a.example/1.mp3", "https://a.example/2.mp3")
STORED: list[Action] = [
    AddVoiceComment(SID, VoiceComment(started_at="2026-12-07T09:00:00Z", call_duration=5), PARTS),
    CreateTicket(SID, VoiceTicket(via_id=45, subject="Call", external_id=SID), parts=PARTS),
    CreateCallRecord(SID, CallRecord(recording_url=PARTS[0]), parts=PARTS),
    UpdateCallRecord(SID, "ended", CallRecord(recording_url=PARTS[0]), parts=PARTS),
]


@pytest.mark.parametrize("action", STORED, ids=lambda action: type(action).__name__)
def test_the_parts_are_stored_with_the_action_and_older_rows_have_none(action: Action) -> None:
    """Each action that links a recording keeps its parts; a row stored before parts reads as one part."""
    stored = encode(action)
    assert stored["recording_parts"] == list(PARTS)
    due = T0.astimezone(UTC)
    assert decode(action.kind, action.key, SID, stored, due) == action
    older = {name: value for name, value in stored.items() if name != "recording_parts"}
    assert decode(action.kind, action.key, SID, older, due).parts == ()  # type: ignore[union-attr]


def test_a_single_recording_s_link_is_what_it_always_was_and_parts_are_signed_in_order() -> None:
    """Links already in Zendesk keep working; a link in parts is bound to its parts and their order."""
    secret = b"k" * 32
    signer = LinkSigner(secret, "https://bridge.example/")
    mac = hmac.new(secret, f"recording-link\n{BEFORE}".encode(), hashlib.sha256).digest()
    single = base64.urlsafe_b64encode(mac).decode().rstrip("=")
    assert signer.link(BEFORE) == f"https://bridge.example/recordings/{BEFORE}.mp3?sig={single}"
    both = signer.signature(BEFORE, [ROOM])
    assert signer.link(BEFORE, [ROOM]) == f"https://bridge.example/recordings/{BEFORE}.mp3?then={ROOM}&sig={both}"
    assert signer.valid(BEFORE, both, [ROOM])
    assert not signer.valid(BEFORE, single, [ROOM])  # a single recording's link cannot be stretched
    assert not signer.valid(BEFORE, both)  # nor a link in parts cut short
    assert not signer.valid(ROOM, signer.signature(ROOM, [BEFORE]), [BEFORE, FRESH])
    assert not signer.valid(ROOM, both, [BEFORE])  # the order is signed


def test_the_comment_waits_until_the_room_s_reports_say_whether_it_started() -> None:
    """Reports come in any order: nothing of the room yet, or one missing before its last, and it may have started."""
    call = held_call()
    assert call.room is not None
    reports = call.room.happened
    call.room.happened = [h for h in reports if h.what in ("moving", "entered", "left")]
    call.room.happened = [h.model_copy(update={"room": None}) for h in call.room.happened]
    _, actions = decided(call, [room_event("left", 90.5).model_copy(update={"room": None})])
    assert only(actions, Timer).name == RECORDING_WAIT  # the customer's room has not reported at all
    alone = [room_event("join", 20.4, seq=1, label="customer"),
             room_event("leave", 90, seq=6, label="customer", reason="participant_hung_up")]  # fmt: skip
    call, actions = decided(held_call().model_copy(update={"room": fold(alone)}), [room_event("left", 90.5)])
    assert only(actions, Timer).name == RECORDING_WAIT  # reports 2 to 5 may hold its start
    gaps_after_start = [*alone, room_event("start", 50, leg=None, seq=3)]
    call, actions = decided(held_call().model_copy(update={"room": fold(gaps_after_start)}),
                            [room_recording(ROOM, 50, 40)])  # fmt: skip
    assert only(actions, AddVoiceComment).parts == (url(BEFORE), url(ROOM))  # started: its recording was enough
