"""Callback turns Twilio refuses to place, purely: no attempt, and three in a row close the request."""

from __future__ import annotations

from bridge.core.actions import AddNote, PlaceCallback
from bridge.core.events import CallEvent, EventKind
from tests.test_callbacks_core import ALICE, BOB, CALLER, POLICY, QUEUEING, Desk, at, cb, freed, requested, turns


def refused(seconds: float, turn: int, who: str, why: str = "refused") -> CallEvent:
    """The dialer's word that Twilio refused (or was too busy) to create the turn's call: nothing rang."""
    return cb(EventKind.CALLBACK_LEG, seconds, turn, leg_to=who, status="failed", reason=why)


def test_turns_twilio_refuses_three_times_in_a_row_close_the_request_with_a_note() -> None:
    desk = Desk(QUEUEING, POLICY)
    requested(desk)
    freed(desk, 60)
    desk.feed(refused(60, 1, ALICE), at(60))
    assert desk.calls["CA1"].callback.refusals() == 1  # type: ignore[union-attr]
    freed(desk, 61, BOB)
    assert turns(desk)[-1] == PlaceCallback("CA1", 2, BOB)
    desk.feed(refused(61, 2, BOB), at(61))
    assert "CA1" in desk.waiting  # two refusals: still in line
    desk.free_up(at(300))
    third = turns(desk)[-1]
    assert third.turn == 3
    desk.feed(refused(300, 3, third.agent), at(300))
    assert "CA1" not in desk.waiting
    (closed,) = [a for a in desk.actions if isinstance(a, AddNote) and a.name == "callback_closed"]
    assert closed.tags == ("callback_refused",)
    assert "Twilio refused to place the bridge's calls 3 times in a row" in closed.body
    assert f"Call {CALLER} back from your phone" in closed.body
    desk.free_up(at(400))
    assert len(turns(desk)) == 3  # closed: never tried again


def test_a_turn_that_rang_breaks_a_run_of_refusals() -> None:
    desk = Desk(QUEUEING, POLICY)
    requested(desk)
    freed(desk, 60)
    desk.feed(refused(60, 1, ALICE), at(60))
    freed(desk, 61, BOB)
    desk.feed(cb(EventKind.CALLBACK_LEG, 61, 2, leg_sid="CAagent2", leg_to=BOB, status="no-answer"), at(61))
    desk.free_up(at(300))
    desk.feed(refused(300, 3, turns(desk)[-1].agent), at(300))
    callback = desk.calls["CA1"].callback
    assert callback is not None
    assert (callback.refusals(), callback.closed) == (1, None)
    assert "CA1" in desk.waiting


def test_turns_twilio_was_too_busy_for_keep_the_request_in_line() -> None:
    """An outage is no refusal: three turns Twilio was busy or out of reach for leave the request waiting."""
    desk = Desk(QUEUEING, POLICY)
    requested(desk)
    freed(desk, 60)
    desk.feed(refused(60, 1, ALICE, "busy"), at(60))
    freed(desk, 61, BOB)
    desk.feed(refused(61, 2, BOB, "busy"), at(61))
    desk.free_up(at(300))
    desk.feed(refused(300, 3, turns(desk)[-1].agent, "busy"), at(300))
    callback = desk.calls["CA1"].callback
    assert callback is not None
    assert (callback.refusals(), callback.closed) == (0, None)
    assert "CA1" in desk.waiting
    desk.free_up(at(400))
    assert turns(desk)[-1].turn > 3  # tried again, as Twilio may answer now
