"""The live view's figures, pure: a line's day from calls as the store keeps them, and the whole board."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bridge.core.call_model import Call, Leg, Placed, Recording
from bridge.core.events import LegStatus
from bridge.core.lines import Hours, Line, Lines
from bridge.core.presence import Agent, PresencePolicy
from bridge.core.routing import Waiting
from bridge.live.board import Rows, Settings, board, days
from bridge.live.figures import Arrived, day_of, inbound_on, today, waited, windows

NOW = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)  # a Monday, after the US changed to daylight saving time
CHICAGO = ZoneInfo("America/Chicago")
POLICY = PresencePolicy()


def answered(sid: str, at: datetime, wait: float, *, line: str = "default") -> Arrived:
    """A call answered `wait` seconds after it arrived, talked a minute."""
    leg = Leg(sid=sid + "-leg", to="client:alice", status=LegStatus.COMPLETED,
              answered_at=at + timedelta(seconds=wait))  # fmt: skip
    call = Call(sid=sid, direction="inbound", first_seen=at, legs={leg.sid: leg}, answered_leg=leg.sid, line=line,
                placed=Placed(kind="offer", at=at), ended_at=at + timedelta(seconds=wait + 60))  # fmt: skip
    return Arrived(at, call)


def abandoned(sid: str, at: datetime, after: float) -> Arrived:
    """A caller who hung up in the queue after `after` seconds."""
    call = Call(sid=sid, direction="inbound", first_seen=at, line="default", placed=Placed(kind="queue", at=at),
                queued_at=at, ended_at=at + timedelta(seconds=after), abandoned_position=1)  # fmt: skip
    return Arrived(at, call)


def voicemail(sid: str, at: datetime, after: float) -> Arrived:
    """A caller nobody could take, sent to voicemail after `after` seconds, who left a message."""
    gave_up = at + timedelta(seconds=after)
    call = Call(sid=sid, direction="inbound", first_seen=at, line="default", queued_at=at,
                no_agent="exceeded_queue_time", placed=Placed(kind="voicemail", at=gave_up),
                ended_at=gave_up + timedelta(seconds=30),
                voicemail=Recording(sid="RE1", status="completed", duration=20))  # fmt: skip
    return Arrived(at, call)


def test_a_day_counts_each_outcome_once_and_the_waits_and_service_level_from_them() -> None:
    """Two answered (10 s, 30 s), one abandoned (50 s), one voicemail (300 s), one after hours, one waiting, one out."""
    start = NOW - timedelta(hours=2)
    waiting_now = Call(sid="CA6", direction="inbound", first_seen=start, line="default",
                       placed=Placed(kind="queue", at=start), queued_at=start)  # fmt: skip
    closed = Call(sid="CA5", direction="inbound", first_seen=start, line="default", after_hours="voicemail",
                  placed=Placed(kind="voicemail", at=start), ended_at=start + timedelta(seconds=40),
                  voicemail=Recording(sid="RE2", status="completed"))  # fmt: skip
    out = Call(sid="CA7", direction="outbound", first_seen=start, line="default")
    rows = [
        answered("CA1", start, 10),
        answered("CA2", start, 30),
        abandoned("CA3", start, 50),
        voicemail("CA4", start, 300),
        Arrived(start, closed),
        Arrived(NOW - timedelta(seconds=90), waiting_now),
        Arrived(start, out),
    ]
    lines = Lines()
    day = day_of(NOW, None)
    mine = inbound_on(rows, "default", lines, day)
    assert [row.call.sid for row in mine] == ["CA1", "CA2", "CA3", "CA4", "CA5", "CA6"]
    figures = today(mine, NOW, 20, day)
    assert figures.as_json() == {
        "calls": 6,
        "answered": 2,
        "missed": 2,
        "abandoned": 1,
        "voicemails": 2,  # the one after hours left a message too
        "after_hours": 1,
        "average_wait": 20,
        "longest_wait": 300,
        "service_level": 0.25,  # 1 of 2 answered + 2 missed was answered within 20 s
    }
    assert figures.per_hour[13] == 5 and figures.per_hour[14] == 1  # noqa: PT018


def test_a_day_without_calls_has_no_waits_and_no_service_level() -> None:
    """Nothing to divide: the figures say "none", not zero."""
    figures = today([], NOW, 20, day_of(NOW, None)).as_json()
    assert figures["calls"] == 0
    assert figures["average_wait"] is None
    assert figures["service_level"] is None


def test_a_wait_that_no_call_could_last_is_unknown() -> None:
    """A replay of an old recording dates the call by Twilio and its arrival by the bridge: no wait, not a wrong one."""
    row = answered("CA1", NOW, 10)
    broken = row.call.model_copy(update={"first_seen": NOW - timedelta(days=400)})
    assert waited(Arrived(NOW, broken), NOW) is None
    assert waited(Arrived(NOW, broken.model_copy(update={"first_seen": None})), NOW) is None


def test_a_lines_day_is_its_time_zones_day_and_a_week_ago_is_the_same_weekday() -> None:
    """America/Chicago's Monday starts at 05:00 UTC after DST began, 06:00 UTC the week before (before it)."""
    day = day_of(NOW, CHICAGO)
    assert (day.date, day.start, day.end - day.start) == ("2026-03-09", datetime(2026, 3, 9, 5, tzinfo=UTC),
                                                         timedelta(hours=24))  # fmt: skip
    before = day_of(NOW, CHICAGO, 1)
    assert (before.date, before.start) == ("2026-03-02", datetime(2026, 3, 2, 6, tzinfo=UTC))
    assert day.hour(datetime(2026, 3, 9, 14, 30, tzinfo=UTC)) == 9
    assert windows([day, day_of(NOW, None)]) == (datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 10, 5, tzinfo=UTC))


def test_the_board_shows_each_lines_queue_agents_and_day_beside_last_week() -> None:
    """Two lines: Support in Chicago, Sales in UTC; alice serves both, bob Sales only."""
    support = Line(key="Support", number="+15005550006", name="Support",
                   hours=Hours(timezone="America/Chicago", zone=CHICAGO), agents=("client:alice",))  # fmt: skip
    sales = Line(key="Sales", number="+15005550007", agents=("client:alice", "client:bob"))
    lines = Lines((support, sales), configured=True)
    settings = Settings(lines=lines, policy=POLICY, service_level=20)
    alice = Agent("client:alice", 1001, chosen_at=NOW - timedelta(minutes=5))
    bob = Agent("client:bob", 1002, chosen_at=NOW - timedelta(hours=1), busy="on_call", busy_call="CA9",
                busy_since=NOW - timedelta(seconds=42), day=NOW.date().isoformat(), calls=3)  # fmt: skip
    rows = Rows(
        agents=[alice, bob],
        waiting=[
            Waiting("CA8", NOW - timedelta(seconds=75), line="Support", queued=True, caller="+14155550123"),
            Waiting(
                "CA7",
                NOW - timedelta(seconds=30),
                line="Support",
                queued=True,
                caller="+14155550199",
                offered_to=("client:alice",),
                offered_until=NOW + timedelta(seconds=10),
            ),
        ],
        arrived=[
            answered("CA9", NOW - timedelta(minutes=1), 5, line="Sales"),
            answered("CA1", NOW - timedelta(days=7, minutes=30), 12, line="Support"),  # the same day last week
            answered("CA2", datetime(2026, 3, 9, 4, 30, tzinfo=UTC), 3, line="Support"),  # Sunday in Chicago
        ],
    )
    made = board(rows, settings, NOW)
    first, second = made["lines"]
    assert (first["name"], first["timezone"], first["day"]) == ("Support", "America/Chicago", "2026-03-09")
    assert first["callers_waiting"] == 2
    assert first["longest_wait"] == 75
    assert first["waiting"] == [
        {"position": 1, "caller": "…0123", "wait": 75, "state": "waiting"},
        {"position": 2, "caller": "…0199", "wait": 30, "state": "ringing"},
    ]
    assert first["agents_available"] == 1  # alice; bob does not serve Support
    assert first["today"]["calls"] == 0  # the 04:30 UTC call was Sunday in Chicago
    assert first["per_hour"]["last_week"][8] == 1  # 14:30 UTC a week ago was 08:30 in Chicago (before DST)
    assert sum(first["per_hour"]["last_week"]) == 1
    assert second["today"]["answered"] == 1
    assert second["agents_available"] == 1
    assert second["timezone"] == "UTC"
    by_name = {agent["name"]: agent for agent in made["agents"]}
    assert by_name["bob"]["status"] == "on_call"
    assert by_name["bob"]["seconds"] == 42
    assert by_name["bob"]["on"] == {"state": "on_call", "line": "+15005550007", "caller": "-", "direction": "inbound"}
    assert by_name["bob"]["calls_today"] == 3
    assert by_name["alice"]["lines"] == ["Support", "Sales"]
    assert "callbacks" not in made
    assert len(days(settings, NOW, 1)) == 2
    with_callbacks = board(Rows([], [], [], callbacks=[{"id": "cb1"}]), settings, NOW)
    assert with_callbacks["callbacks"] == [{"id": "cb1"}]
