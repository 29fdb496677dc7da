"""The recording's pauses and resumes in the pure core: folded in any order, counted on the call's record."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from bridge.core import call_controls
from bridge.core.actions import UpdateCallRecord
from bridge.core.call_controls import Toggle
from bridge.core.calls import Call, step
from bridge.core.events import CallEvent, EventKind
from bridge.twilio.controls import Recorded
from tests.test_call_records import AT_END, CALLS, emitted
from tests.test_calls import ANSWERED, SID, T0, run

PAUSE, RESUME = EventKind.RECORDING_PAUSED, EventKind.RECORDING_RESUMED


def control(kind: EventKind, seconds: float) -> CallEvent:
    """A pause or resume the provider confirmed `seconds` into the call."""
    return CallEvent(kind=kind, call_sid=SID, at=T0 + timedelta(seconds=seconds))


def toggled(*events: CallEvent) -> list[Toggle]:
    """Fold the events into an empty list of toggles."""
    toggles: list[Toggle] = []
    for event in events:
        call_controls.fold(toggles, event)
    return toggles


def test_pauses_and_resumes_count_whatever_order_they_come_in() -> None:
    """Each toggle is kept once and sorted by when it took effect: the paused time is the same in any order."""
    events = [control(PAUSE, 30), control(RESUME, 45), control(PAUSE, 60), control(RESUME, 70)]
    for seed in range(5):
        shuffled = events + events
        random.Random(seed).shuffle(shuffled)
        toggles = toggled(*shuffled)
        assert len(toggles) == 4
        assert call_controls.not_recording_seconds(toggles, T0 + timedelta(seconds=100)) == 25
        assert call_controls.state(toggles, recorded=True) == "on"


def test_a_pause_open_at_the_end_runs_to_the_end_and_a_second_pause_changes_nothing() -> None:
    """Paused at 30 s, paused again at 40 s, never resumed: paused until the call ended at 100 s."""
    toggles = toggled(control(PAUSE, 30), control(PAUSE, 40), control(EventKind.TIMER, 50))
    assert call_controls.state(toggles, recorded=True) == "paused"
    assert call_controls.record_fields(toggles, T0 + timedelta(seconds=100)) == {
        "recording_control_interactions": 2,
        "not_recording_time": 70,
    }
    assert call_controls.not_recording_seconds(toggles, None) == 0  # the end unknown: nothing counted yet


def test_no_recording_is_off_and_an_untouched_recording_adds_no_fields() -> None:
    """A call that is not recorded has no recording to pause; one never paused keeps its record as it was."""
    assert call_controls.state([], recorded=False) == "off"
    assert call_controls.state([], recorded=True) == "on"
    assert call_controls.record_fields([], None) == {}
    assert call_controls.not_recording_seconds(toggled(control(RESUME, 5)), None) == 0  # a resume alone


@pytest.mark.parametrize("policy", [CALLS, AT_END], ids=["ticket_on_answer", "ticket_on_end"])
def test_the_record_counts_the_pauses_made_during_the_call(policy: object) -> None:
    """Paused 20 s into the talk for 15 s: the record's final fields say one pause, one resume, 15 s."""
    events = [*ANSWERED[:4], control(PAUSE, 28), control(RESUME, 43), *ANSWERED[4:]]
    typed = emitted(events, policy)  # type: ignore[arg-type]
    final = [a for a in typed if hasattr(a, "record") and a.record.completion_status] + [  # type: ignore[attr-defined]
        a for a in typed if isinstance(a, UpdateCallRecord)
    ]
    (fields,) = [getattr(a, "fields", None) or a.record for a in final]  # type: ignore[attr-defined]
    assert fields.recording_control_interactions == 2
    assert fields.not_recording_time == 15


def test_a_toggle_told_after_the_records_end_corrects_it_and_the_last_word_stands() -> None:
    """Replayed out of order, a pause and its resume come after the end: each change is a correction after the last."""
    call, actions, _ = run([*ANSWERED, control(PAUSE, 28), control(RESUME, 43), control(RESUME, 43)], CALLS)
    updates = [key for kind, key in actions if key.startswith(f"{SID}:call_record:correction")]
    assert updates == [f"{SID}:call_record:correction:1", f"{SID}:call_record:correction:2"]
    outcome = step(call, control(PAUSE, 90), T0 + timedelta(seconds=2000), CALLS)
    assert not [key for key in outcome.cancel if ":call_record:" in key]  # each correction is whole: none is dropped
    (update,) = outcome.actions
    assert isinstance(update, UpdateCallRecord)
    assert (update.name, update.after) == ("correction:3", f"{SID}:call_record:correction:2")
    # The call ended at 104 s (its parent's completed): the last pause, still open, runs 14 s to it.
    assert update.fields.not_recording_time == 15 + 14
    assert update.fields.recording_control_interactions == 3


def test_tickets_mode_keeps_the_toggles_without_a_record() -> None:
    """ZENDESK_API=tickets: the toggles are kept in the call's state, and nothing more is sent for them."""
    call, actions, _ = run([*ANSWERED[:4], control(PAUSE, 28), *ANSWERED[4:]])
    assert isinstance(call, Call)
    assert [t.paused for t in call.recording_toggles] == [True]
    assert not any("call_record" in key for _, key in actions)


def test_a_recording_is_the_calls_own_until_the_call_is_in_a_conference() -> None:
    """Twilio docs: Call Recordings and Conference Recordings, update: the live one is Twilio.CURRENT of either."""
    assert Recorded("CA1").path == "/Calls/CA1/Recordings/Twilio.CURRENT.json"
    assert Recorded("CA1", conference_sid="CF2").path == "/Conferences/CF2/Recordings/Twilio.CURRENT.json"
