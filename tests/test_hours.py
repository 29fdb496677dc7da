"""Business hours, pure: open or closed at a moment across daylight saving, holidays, span edges, Zendesk schedules.

And the state machine's side: a call that came after hours is decided the same whatever order its events came in.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.core.actions import CreateCallRecord, CreateTicket, Timer, UpdateCallRecord
from bridge.core.calls import RECORDING_WAIT, Call, Policy, step
from bridge.core.events import CallEvent, EventKind
from bridge.core.hours import after_hours, closed_words, holiday_dates, opening, resolved, spoken, week_of_intervals
from bridge.core.lines import Hours, Line, Lines, Span, Target
from bridge.ops.settings import load_settings

MINUTES = 60


def hours(zone: str, *, holidays: tuple[date, ...] = (), **days: str) -> Hours:
    """Build hours as the TOML would: weekday spans `HH:MM-HH:MM`, comma-separated."""
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

    def spans(text: str) -> tuple[Span, ...]:
        out = []
        for part in filter(None, text.split(",")):
            start, end = part.split("-")
            out.append(Span(_minute(start), _minute(end)))
        return tuple(out)

    week = tuple(spans(days.get(name, "")) for name in names)
    return Hours(timezone=zone, zone=ZoneInfo(zone), week=week, holidays=frozenset(holidays))


def _minute(clock: str) -> int:
    hour, minute = clock.split(":")
    return int(hour) * MINUTES + int(minute)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """Return an instant in UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# Sunday 8 March 2026, 02:00 in Chicago: clocks jump to 03:00 (CST, UTC-6, to CDT, UTC-5).
# Sunday 1 November 2026, 02:00 in Chicago: clocks fall back to 01:00 (CDT to CST).
NIGHT = hours("America/Chicago", sun="01:00-04:00")


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (utc(2026, 3, 8, 6, 59), False),  # 00:59 CST
        (utc(2026, 3, 8, 7, 0), True),  # 01:00 CST: the span opens
        (utc(2026, 3, 8, 7, 59), True),  # 01:59 CST
        (utc(2026, 3, 8, 8, 0), True),  # 03:00 CDT: 02:00 to 02:59 never happen
        (utc(2026, 3, 8, 8, 59), True),  # 03:59 CDT
        (utc(2026, 3, 8, 9, 0), False),  # 04:00 CDT: the span closes, two real hours after it opened
        (utc(2026, 11, 1, 5, 59), False),  # 00:59 CDT
        (utc(2026, 11, 1, 6, 0), True),  # 01:00 CDT
        (utc(2026, 11, 1, 7, 30), True),  # 01:30 CST: the repeated hour counts both times
        (utc(2026, 11, 1, 9, 59), True),  # 03:59 CST
        (utc(2026, 11, 1, 10, 0), False),  # 04:00 CST: four real hours after it opened
    ],
)
def test_a_span_crossing_the_daylight_saving_switch_keeps_its_wall_clock_hours(moment: datetime, open_: bool) -> None:
    """A night span across the switch opens and closes at its local times: shorter in March, longer in November."""
    assert opening(NIGHT, moment).open is open_


WEEKDAYS = hours("America/Chicago", mon="09:00-17:00", tue="09:00-17:00", sat="10:00-14:00")


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        # The Monday after each switch: 09:00 local is 14:00 UTC in daylight time, 15:00 UTC in standard time.
        (utc(2026, 3, 9, 13, 59), False),
        (utc(2026, 3, 9, 14, 0), True),
        (utc(2026, 3, 9, 21, 59), True),
        (utc(2026, 3, 9, 22, 0), False),
        (utc(2026, 11, 2, 14, 59), False),
        (utc(2026, 11, 2, 15, 0), True),
        (utc(2026, 11, 2, 22, 59), True),
        (utc(2026, 11, 2, 23, 0), False),
        # The switch Saturdays and Sundays themselves: only Saturday's hours, in that day's offset.
        (utc(2026, 3, 7, 16, 0), True),  # Saturday 10:00 CST
        (utc(2026, 3, 8, 16, 0), False),  # Sunday: no hours
        (utc(2026, 10, 31, 15, 0), True),  # Saturday 10:00 CDT
        (utc(2026, 10, 31, 19, 0), False),  # Saturday 14:00 CDT: the end is excluded
    ],
)
def test_weekday_hours_on_the_switch_days(moment: datetime, open_: bool) -> None:
    """Nine to five stays nine to five through the changes to and from daylight saving time."""
    assert opening(WEEKDAYS, moment).open is open_


def test_span_edges_start_included_end_excluded_and_24_00_is_the_days_end() -> None:
    """09:00-17:00 opens at 09:00 and is closed at 17:00; 22:00-24:00 runs to the last minute before midnight."""
    late = hours("UTC", mon="09:00-17:00,22:00-24:00", tue="00:00-02:00")
    monday = utc(2026, 3, 2)  # a Monday
    at = {minute: opening(late, monday + timedelta(minutes=minute)).open for minute in range(0, 26 * 60 + 1)}
    assert (at[8 * 60 + 59], at[9 * 60], at[16 * 60 + 59], at[17 * 60]) == (False, True, True, False)
    assert (at[21 * 60 + 59], at[22 * 60], at[23 * 60 + 59]) == (False, True, True)
    assert (at[24 * 60], at[25 * 60 + 59], at[26 * 60]) == (True, True, False)  # Tuesday 00:00, 01:59, 02:00


def test_a_holiday_starts_at_local_midnight_while_utc_is_still_the_day_before() -> None:
    """Auckland (UTC+13 in December): Christmas there runs from 11:00 UTC on the 24th to 11:00 UTC on the 25th."""
    every_day = {day: "00:00-24:00" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    auckland = hours("Pacific/Auckland", holidays=(date(2026, 12, 25),), **every_day)
    assert opening(auckland, utc(2026, 12, 24, 10, 59)).open is True  # 23:59 on the 24th there
    closed = opening(auckland, utc(2026, 12, 24, 11, 0))  # 00:00 on the 25th there; still the 24th in UTC
    assert (closed.open, closed.why) == (False, "holiday 2026-12-25")
    assert opening(auckland, utc(2026, 12, 25, 10, 59)).open is False
    assert opening(auckland, utc(2026, 12, 25, 11, 0)).open is True  # the 26th there


def test_zendesk_intervals_become_monday_first_weekday_spans() -> None:
    """Minutes since Sunday 00:00 (Zendesk docs, Schedules): 1980-2460 is Monday 9 to 5; 10080 ends Saturday."""
    week = week_of_intervals([(1980, 2460), (3840, 4320), (9360, 10080), (0, 120), (2100 + 1440 * 2, 3000 + 1440 * 2)])
    assert week[0] == (Span(540, 1020),)  # Monday
    assert week[1] == (Span(960, 1440),)  # Tuesday 16:00 to midnight
    assert week[2] == (Span(660, 1440),)  # Wednesday 11:00, across midnight (split) ...
    assert week[3] == (Span(0, 120),)  # ... to Thursday 02:00
    assert week[5] == (Span(720, 1440),)  # Saturday noon to midnight
    assert week[6] == (Span(0, 120),)  # Sunday 00:00 to 02:00


def test_zendesk_holidays_close_every_day_from_start_to_end() -> None:
    """A holiday is a single day or several: its start and end dates included."""
    days = holiday_dates([(date(2026, 12, 30), date(2027, 1, 2)), (date(2026, 7, 4), date(2026, 7, 4))])
    assert days == {date(2026, 12, 30), date(2026, 12, 31), date(2027, 1, 1), date(2027, 1, 2), date(2026, 7, 4)}


def test_a_schedule_line_is_open_until_its_schedule_is_read_then_as_the_schedule_says() -> None:
    """Not read: open (callers reach agents rather than a guess). Read: its hours and holidays decide."""
    line = Line(key="Support", number="+13125550140", hours=Hours(schedule_id=42), after_hours=Target("message"))
    saturday = utc(2026, 9, 19, 15, 0)
    unknown = opening(line.hours, saturday, {})
    assert (unknown.open, unknown.why) == (None, "Zendesk schedule 42: not read, so treated as open")
    assert after_hours(line, saturday, {}) is None
    read = {42: WEEKDAYS}
    assert opening(line.hours, saturday, read).why == "Zendesk schedule 42: sat 10:00 America/Chicago"
    assert after_hours(line, saturday + timedelta(hours=5), read) == "message"
    assert resolved(line.hours, read) is WEEKDAYS
    assert resolved(line.hours, None) is None


def test_the_closed_words_say_the_hours_or_the_lines_own_message() -> None:
    """The bridge's words name the hours grouped by day; `after_hours_message` replaces them; a forward says none."""
    split = hours("America/New_York", mon="09:00-12:00,13:00-17:30", tue="09:00-12:00,13:00-17:30",
                  sat="00:00-24:00")  # fmt: skip
    assert spoken(split) == (
        "Monday to Tuesday, 9 AM to noon and 1 PM to 5:30 PM; Saturday, midnight to midnight, New York time"
    )
    line = Line(key="Support")
    assert closed_words(line, "voicemail", WEEKDAYS) == (
        "Thank you for calling. We are closed now. Our hours are Monday to Tuesday, 9 AM to 5 PM; Saturday, "
        "10 AM to 2 PM, Chicago time. Please leave a message after the tone, and we will call you back."
    )
    assert closed_words(line, "message", hours("UTC")) == "Thank you for calling. We are closed now. Goodbye."
    assert closed_words(line, "forward", WEEKDAYS) == ""
    own = Line(key="Support", after_hours_message="Closed for the holidays.")
    assert closed_words(own, "forward", WEEKDAYS) == "Closed for the holidays."


# --- the state machine: a call after hours, its events in any order ---------------------------------------------

T0 = datetime(2026, 9, 19, 15, 0, tzinfo=UTC)
SID = "CA" + "7" * 32
CALLER, NUMBER, FORWARD = "+14155550123", "+16505550100", "+16505550177"
SUPPORT = Line(key="Support", number=NUMBER, name="Support", group_id=5001, after_hours=Target("forward", FORWARD))
FORWARDING = Lines((SUPPORT,), configured=True)


def event(kind: EventKind, seconds: float, **fields: Any) -> CallEvent:
    """An event of the inbound call from CALLER to the line."""
    base = {"direction": "inbound", "from_number": CALLER, "to_number": NUMBER}
    return CallEvent(kind=kind, call_sid=SID, at=T0 + timedelta(seconds=seconds), **{**base, **fields})


FORWARDED = [
    event(EventKind.CALL_STARTED, 0, after_hours="forward"),
    event(
        EventKind.DIAL_ENDED,
        50,
        after_hours="forward",
        dial_status="completed",
        dial_bridged=True,
        duration=40,
        leg_sid="CA" + "8" * 32,
    ),
    event(EventKind.CALL_STATUS, 51, status="completed", sequence=0, duration=51),
]


def fold(events: list[CallEvent], policy: Policy) -> tuple[Call, list[Any]]:
    """Fold events in order; return the call and every action."""
    call: Call | None = None
    actions: list[Any] = []
    for number, item in enumerate(events):
        outcome = step(call, item, T0 + timedelta(seconds=100 + number), policy)
        assert outcome.route is None  # never routed: nobody is offered the call, it never waits
        call, actions = outcome.call, actions + outcome.actions
    assert call is not None
    return call, actions


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(FORWARDED)))))
@pytest.mark.parametrize("api", ["tickets", "calls"])
def test_a_forward_after_hours_is_one_call_note_whatever_the_order(order: tuple[int, ...], api: str) -> None:
    """The forward's dial action, the arrival and the end, in any order: one via 45 note, one record, no agent.

    The forward is a menu's: the number's leg answered, named by the forward (its <Dial action> names a sid).
    """
    # RECORD_CALLS off: a recorded forward's record would wait for its recording too.
    policy = Policy(agents={"client:alice": 1001}, api=api, lines=FORWARDING, record_calls=False)  # type: ignore[arg-type]
    call, actions = fold([FORWARDED[index] for index in order], policy)
    assert call.after_hours == "forward"
    assert call.answered_leg == "CA" + "8" * 32
    assert call.legs[call.answered_leg].to == FORWARD
    (ticket,) = [action for action in actions if isinstance(action, CreateTicket)]
    assert ticket.ticket.via_id == 45
    assert ticket.group_id == 5001
    assert ticket.ticket.comment is not None
    assert ticket.ticket.comment.body.endswith(
        f"the line was closed, so it was forwarded to {FORWARD}, which answered."
    )
    assert ticket.ticket.tags == ["after_hours"]
    records = [action for action in actions if isinstance(action, CreateCallRecord)]
    if api == "calls":
        (record,) = records
        # Made at the answer, its end sent once the call is over (TICKET_ON=answer, the default).
        fields = record.record.wire()
        for update in (action for action in actions if isinstance(action, UpdateCallRecord)):
            fields |= update.fields.wire()
        assert fields["outside_business_hours"] is True
        assert (fields["completion_status"], fields["talk_time"], fields["duration"]) == ("completed", 40, 51)
        assert "agent_id" not in fields or fields["agent_id"] is None
    else:
        assert records == []


def test_a_message_after_hours_makes_no_ticket_without_missed_call_tickets_but_a_record() -> None:
    """The message's ticket is a missed call's: MISSED_CALL_TICKETS=false leaves only the record."""
    policy = Policy(api="calls", missed_call_tickets=False, lines=FORWARDING)
    events = [
        event(EventKind.CALL_STARTED, 0, after_hours="message"),
        event(EventKind.CALL_STATUS, 20, status="completed", sequence=0, duration=20),
    ]
    _, actions = fold(events, policy)
    assert not [action for action in actions if isinstance(action, CreateTicket)]
    (record,) = [action for action in actions if isinstance(action, CreateCallRecord)]
    assert (record.record.completion_status, record.record.outside_business_hours) == ("completed", True)
    assert record.comment is None


@pytest.mark.parametrize(("voicemail", "kind"), [(True, "voicemail"), (False, "message")])
def test_after_hours_left_out_follows_voicemail(voicemail: bool, kind: str) -> None:
    """A line that does not say where callers go after hours: voicemail, or the message with VOICEMAIL=false."""
    lines = f'[[line]]\nnumber = "{NUMBER}"\n\n[line.hours]\ntimezone = "UTC"\n'
    settings = load_settings(None, lines=lines, agents={"client:alice": 1001}, voicemail=voicemail)
    (line,) = settings.phone_lines.all
    assert line.after_hours == Target(kind)  # type: ignore[arg-type]
    assert after_hours(line, T0) == kind


def test_a_message_after_hours_waits_boundedly_for_twilios_duration() -> None:
    """The call ended without its CallDuration: the record waits RECORDING_WAIT for it, then goes as known."""
    policy = Policy(api="calls", lines=FORWARDING)
    ended = [
        event(EventKind.CALL_STARTED, 0, after_hours="message"),
        event(EventKind.CALL_STATUS, 20, status="completed", sequence=0),
    ]
    _, actions = fold(ended, policy)
    assert [a.name for a in actions if isinstance(a, Timer)] == [RECORDING_WAIT]
    assert not [a for a in actions if isinstance(a, CreateCallRecord)]
    _, actions = fold([*ended, event(EventKind.TIMER, 140, timer=RECORDING_WAIT)], policy)
    (record,) = [a for a in actions if isinstance(a, CreateCallRecord)]
    assert record.record.outside_business_hours is True


def test_schedule_hours_are_not_evaluated_without_the_schedule() -> None:
    """A Zendesk schedule's hours say nothing on their own: open or closed is unknown until it is read."""
    from bridge.core.lines import is_open

    assert is_open(Hours(schedule_id=42), utc(2026, 12, 7, 15)).open is None
    assert is_open(Hours(timezone="Nowhere/Unknown"), utc(2026, 12, 7, 15)).open is None  # its zone never resolved


def test_a_place_routing_decided_first_stands_when_the_line_turns_out_closed() -> None:
    """A replay's late arrival: routing already offered the call, so after hours marks it but moves nobody."""
    from bridge.core.calls import Placed
    from bridge.core.hours import close

    call = Call(sid=SID, placed=Placed(kind="offer", at=T0))
    close(call, "voicemail", Line(key="Support"), T0)
    assert call.after_hours == "voicemail"
    assert call.placed is not None
    assert call.placed.kind == "offer"
