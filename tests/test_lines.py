"""Lines: LINES and LINES_FILE read at start-up (every error names the line and the key), and business hours."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.cli import describe_lines, main
from bridge.core.lines import DEFAULT_LINE, Hours, Lines, Span, Target, is_open
from bridge.ops.settings import ConfigError, Settings, load_settings

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "docs" / "lines.example.toml"
EXAMPLE_AGENTS = {"client:priya": 1001, "client:tomas": 1002, "client:ana": 1003, "+13125550198": 1004}
TWO = """
[[line]]
number = "+13125550140"
name = "Support"

[[line]]
number = "+13125550141"
name = "Sales"
"""


def lines_of(text: str, **settings: Any) -> Lines:
    """Return the lines LINES=text makes, with AGENTS alice and bob unless told otherwise."""
    settings.setdefault("agents", {"client:alice": 1001, "client:bob": 1002})
    return load_settings(None, lines=text, **settings).phone_lines


def refused(text: str, **settings: Any) -> str:
    """Return the start-up error LINES=text gives."""
    settings.setdefault("agents", {"client:alice": 1001, "client:bob": 1002})
    with pytest.raises(ConfigError) as caught:
        load_settings(None, lines=text, **settings)
    return str(caught.value)


def test_without_lines_one_line_is_made_from_the_settings() -> None:
    """No LINES: one line, the global settings' own, that every number reaches and every agent serves."""
    settings = Settings(agents={"client:alice": 1001}, routing="longest_idle", zendesk_group_id=5)
    lines = settings.phone_lines
    assert not lines.configured
    assert [line.key for line in lines.all] == [DEFAULT_LINE]
    assert lines.called("+19995550100") is lines.first
    assert lines.first.serves("client:alice")
    assert settings.routing_policy() == Settings(agents={"client:alice": 1001}, routing="longest_idle").routing_policy()
    assert settings.routing_policy().lines == {}  # routing exactly as before lines


def test_the_example_file_parses_into_three_lines() -> None:
    """docs/lines.example.toml, as LINES_FILE, is what docs/lines.md says it is."""
    settings = load_settings(
        None, lines_file=str(EXAMPLE), agents=EXAMPLE_AGENTS, caller_id="+13125550100", twilio_account_sid="AC1"
    )
    support, sales, emergencies = settings.phone_lines.all
    assert (support.key, support.number) == ("Support", "+13125550140")
    assert (support.group_id, support.brand_id) == (360001, 2001)
    assert support.agents == ("client:priya", "client:tomas")
    assert support.caller_id == "+13125550140"  # caller_id = true: the line's own number
    assert support.routing is not None
    assert (support.routing.strategy, support.routing.max_wait, support.routing.queue) == ("longest_idle", 600, True)
    assert support.hours is not None
    assert support.hours.week[1] == (Span(9 * 60, 12 * 60), Span(13 * 60, 17 * 60))
    assert support.hours.week[5] == ()  # Saturday absent: closed
    assert date(2026, 12, 25) in support.hours.holidays
    assert support.menu is not None
    assert support.menu.options == {
        "1": Target("line", "Sales"),
        "2": Target("line", "Support"),
        "9": Target("voicemail"),
    }
    assert (support.menu.timeout, support.menu.default) == (6, Target("line", "Support"))
    assert sales.after_hours == Target("message")
    assert sales.routing is not None
    assert (sales.routing.strategy, sales.routing.max_size, sales.routing.max_wait) == ("round_robin", 10, 300)
    assert sales.queue != support.queue
    assert emergencies.caller_id == "+13125550100"  # none of its own: CALLER_ID
    assert emergencies.after_hours == Target("forward", "+13125550199")
    assert emergencies.hours == Hours(schedule_id=1234)
    assert emergencies.group_id is None  # ZENDESK_GROUP_ID, at delivery
    assert support.log_on_open_ticket
    assert not sales.log_on_open_ticket
    assert support.routing.preferred_seconds == 12
    assert support.routing.priority_organizations == frozenset({360009})
    assert support.routing.priority_tags == frozenset({"vip"})
    assert sales.routing.preferred_seconds == 0  # PREFERRED_AGENT_SECONDS
    assert not sales.routing.knows_customers
    routing = settings.routing_policy()
    assert list(routing.lines) == ["Support", "Sales", "Emergencies"]
    assert routing.serves is not None
    assert routing.serves["client:tomas"] == frozenset({"Support", "Sales"})


def test_a_line_leaves_out_what_the_global_settings_give() -> None:
    """Keys a line leaves out take ROUTING, QUEUE_*, AGENT_RING_SECONDS, HOLD_MUSIC_URL and every agent."""
    (line,) = lines_of(
        '[[line]]\nnumber = "+13125550140"\n',
        routing="round_robin",
        queue_max_size=7,
        agent_ring_seconds=9,
        hold_music_url="https://example.com/hold.mp3",
    ).all
    assert line.key == "+13125550140"  # no name: the number names it
    assert line.name is None
    assert line.agents == ("client:alice", "client:bob")
    assert line.routing is not None
    assert (line.routing.strategy, line.routing.max_size, line.routing.agent_ring_seconds) == ("round_robin", 7, 9)
    assert line.routing.queue is False  # no TWILIO_ACCOUNT_SID: nobody can be moved out of a queue
    assert line.hold_music_url == "https://example.com/hold.mp3"
    assert line.hours is None
    assert line.after_hours == Target("voicemail")


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[[line]]\nname = "Support"', "LINES line 1 ('Support'): number: is required"),
        ('[[line]]\nnumber = "3125550140"', "LINES line 1 ('3125550140'): number: '3125550140' is not an E.164"),
        (TWO.replace("+13125550141", "+13125550140"), "LINES line 2 ('Sales'): number: +13125550140 is another"),
        (TWO.replace('"Sales"', '"support"'), "LINES line 2 ('support'): name: 'support' names another line"),
        (TWO.replace('"Support"', '"+13125550141"'), "LINES line 1 ('+13125550141'): name: '+13125550141' is a number"),
        ('[[line]]\nnumber = "+13125550140"\ngroupid = 5', "LINES line 1 ('+13125550140'): groupid: not a key"),
        ('[[line]]\nnumber = "+13125550140"\ngroup_id = 0', "group_id: 0 is not a Zendesk id"),
        ('[[line]]\nnumber = "+13125550140"\nbrand_id = "x"', "brand_id: 'x' is not a Zendesk id"),
        ('[[line]]\nnumber = "+13125550140"\nagents = ["client:zed"]', "agents: 'client:zed' is not in AGENTS"),
        ('[[line]]\nnumber = "+13125550140"\nagents = "client:alice"', "agents: must be a list"),
        ('[[line]]\nnumber = "+13125550140"\nrouting = "fastest"', "routing: 'fastest' is not one of ring_all"),
        ('[[line]]\nnumber = "+13125550140"\nqueue_max_size = -1', "queue_max_size: -1 is not a whole number"),
        ('[[line]]\nnumber = "+13125550140"\nqueue_max_wait_seconds = "5m"', "queue_max_wait_seconds: '5m' is not"),
        ('[[line]]\nnumber = "+13125550140"\nagent_ring_seconds = 2', "agent_ring_seconds: 2 is not a whole number"),
        ('[[line]]\nnumber = "+13125550140"\nhold_music_url = "ftp://x"', "hold_music_url: 'ftp://x' must be"),
        ('[[line]]\nnumber = "+13125550140"\npreferred_agent_seconds = -1', "preferred_agent_seconds: -1 is not"),
        ('[[line]]\nnumber = "+13125550140"\nlog_on_open_ticket = "yes"', "log_on_open_ticket: 'yes' is neither"),
        ('[[line]]\nnumber = "+13125550140"\npriority_organizations = ["Acme"]', "priority_organizations: must be"),
        ('[[line]]\nnumber = "+13125550140"\npriority_organizations = [true]', "priority_organizations: must be"),
        ('[[line]]\nnumber = "+13125550140"\npriority_tags = ["two words"]', "priority_tags: must be a list"),
        ('[[line]]\nnumber = "+13125550140"\npriority_tags = "vip"', "priority_tags: must be a list"),
        ('[[line]]\nnumber = "+13125550140"\ngreeting = ""', "greeting: must be a non-empty string"),
        ('[[line]]\nnumber = "+13125550140"\ncaller_id = "me"', "caller_id: 'me' is neither true"),
        ('[[line]]\nnumber = "+13125550140"\nafter_hours = "hang up"', "after_hours: 'hang up' is not voicemail"),
        ('[[line]]\nnumber = "+13125550140"\nhours = "9-5"', "hours: must be a table"),
        ('[[line]]\nnumber = "+13125550140"\n[line.hours]\nmon = "09:00-17:00"', "hours.timezone: is required"),
        (
            '[[line]]\nnumber = "+13125550140"\n[line.hours]\ntimezone = "Mars/Olympus"',
            "hours.timezone: 'Mars/Olympus' is not an IANA time zone",
        ),
        (
            '[[line]]\nnumber = "+13125550140"\n[line.hours]\ntimezone = "UTC"\nmonday = "09:00-17:00"',
            "hours.monday: not a key of hours",
        ),
        (
            '[[line]]\nnumber = "+13125550140"\n[line.hours]\ntimezone = "UTC"\nmon = "9-5"',
            "hours.mon: '9-5' is not HH:MM-HH:MM",
        ),
        (
            '[[line]]\nnumber = "+13125550140"\n[line.hours]\ntimezone = "UTC"\ntue = "22:00-02:00"',
            "hours.tue: '22:00-02:00' ends before it starts",
        ),
        (
            '[[line]]\nnumber = "+13125550140"\n[line.hours]\ntimezone = "UTC"\nwed = "09:00-24:30"',
            "hours.wed: '09:00-24:30' is not a time of day",
        ),
        (
            '[[line]]\nnumber = "+13125550140"\n[line.hours]\ntimezone = "UTC"\nholidays = ["25/12/2026"]',
            "hours.holidays: '25/12/2026' is not a date",
        ),
        (
            '[[line]]\nnumber = "+13125550140"\n[line.hours]\nschedule_id = 12\ntimezone = "UTC"',
            "hours: schedule_id takes the hours from Zendesk",
        ),
        ('[[line]]\nnumber = "+13125550140"\n[line.menu]\nprompt = "Hi"', "menu: names no key"),
        ('[[line]]\nnumber = "+13125550140"\n[line.menu]\n1 = "voicemail"', "menu.prompt: is required"),
        ('[[line]]\nnumber = "+13125550140"\n[line.menu]\nprompt = "Hi"\n12 = "voicemail"', "menu.12: not a key"),
        ('[[line]]\nnumber = "+13125550140"\n[line.menu]\nprompt = "Hi"\n1 = "sales"', "menu.1: 'sales' is not"),
        ('[[line]]\nnumber = "+13125550140"\n[line.menu]\nprompt = "Hi"\n1 = "message"', "menu.1: 'message' is"),
        (
            '[[line]]\nnumber = "+13125550140"\n[line.menu]\nprompt = "Hi"\n1 = "voicemail"\ntimeout = 0',
            "menu.timeout: 0 is not a whole number of seconds from 1 to 60",
        ),
        (
            '[[line]]\nnumber = "+13125550140"\n[line.menu]\nprompt = "Hi"\n"#" = "line:Billing"',
            "LINES line 1 ('+13125550140'): menu.#: line:Billing names no line",
        ),
        (
            '[[line]]\nnumber = "+13125550140"\n[line.menu]\nprompt = "Hi"\n1 = "voicemail"\ndefault = "line:X"',
            "menu.default: line:X names no line",
        ),
        ("[[line]]\nnumber = ", "LINES: not valid TOML"),
        ('number = "+13125550140"', "LINES: 'number' is not a key here: each line is a [[line]] table"),
        ("# no lines yet\n", "LINES: no lines"),
    ],
)
def test_each_mistake_names_the_line_and_the_key(toml: str, named: str) -> None:
    """A wrong line stops the bridge at start-up, saying which line and which key, as every setting does."""
    assert named in refused(toml)


def test_menu_targets_name_lines_by_name_or_number() -> None:
    """`line:NAME` (or `line:+1…` for a line without a name) names a line; `*` and `#` are keys when quoted."""
    text = TWO + '[line.menu]\nprompt = "Press 1 or star"\n1 = "line:Support"\n"*" = "line:+13125550140"\n'
    text += '"#" = "+13125550199"\n'
    _, sales = lines_of(text).all
    assert sales.menu is not None
    assert sales.menu.options == {
        "1": Target("line", "Support"),
        "*": Target("line", "Support"),
        "#": Target("forward", "+13125550199"),
    }
    assert sales.menu.default is None  # no key within the timeout: the line's own agents and queue


def test_lines_and_lines_file_together_or_unreadable_are_errors(tmp_path: Path) -> None:
    """Both set is an error; so is a file that cannot be read; each message names the variable."""
    path = tmp_path / "lines.toml"
    path.write_text(TWO)
    with pytest.raises(ConfigError, match=r"set LINES .* or LINES_FILE .*, not both"):
        load_settings(None, lines=TWO, lines_file=str(path))
    with pytest.raises(ConfigError, match=r"LINES_FILE '.*missing\.toml' cannot be read"):
        load_settings(None, lines_file=str(tmp_path / "missing.toml"))
    path.write_text('[[line]]\nnumber = "+1"\n')
    with pytest.raises(ConfigError, match=rf"LINES_FILE {path} line 1 \('\+1'\): number:"):
        load_settings(None, lines_file=str(path))


def test_a_bad_line_is_a_clear_start_up_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bridge serve` with a wrong LINES says which line and key, and does not start."""
    monkeypatch.setenv("AGENTS", "client:alice=1001")
    monkeypatch.setenv("LINES", '[[line]]\nnumber = "+13125550140"\nname = "Support"\nagents = ["client:bob"]\n')
    assert main(["serve"]) == 2
    assert "LINES line 1 ('Support'): agents: 'client:bob' is not in AGENTS" in capsys.readouterr().err


def test_a_number_no_line_names_is_none_and_calls_out_go_from_the_agents_line() -> None:
    """The directory: numbers to lines, agents to the lines they may call out from."""
    text = TWO.replace('name = "Sales"', 'name = "Sales"\nagents = ["client:bob"]')
    text = text.replace('name = "Support"', 'name = "Support"\nagents = ["client:alice", "client:bob"]')
    lines = lines_of(text)
    assert lines.called("+13125550141") is lines.find("Sales")
    assert lines.called("+19995550100") is None
    assert [line.key for line in lines.of_agent("client:bob")] == ["Support", "Sales"]
    assert lines.for_call_out("client:bob", None) is lines.find("Support")
    assert lines.for_call_out("client:bob", "+13125550141") is lines.find("Sales")
    assert lines.for_call_out("client:alice", "+13125550141") is None  # not hers: refused


CHICAGO = Hours(
    timezone="America/Chicago",
    zone=ZoneInfo("America/Chicago"),
    week=((Span(9 * 60, 17 * 60),), (Span(0, 24 * 60),), (), (), (), (), ()),
    holidays=frozenset({date(2026, 3, 9)}),
)


@pytest.mark.parametrize(
    ("utc", "open_"),
    [
        # Monday 2 March 2026, standard time (UTC-6): 09:00 local is 15:00 UTC.
        (datetime(2026, 3, 2, 14, 59, tzinfo=UTC), False),
        (datetime(2026, 3, 2, 15, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 2, 22, 59, tzinfo=UTC), True),
        (datetime(2026, 3, 2, 23, 0, tzinfo=UTC), False),  # 17:00 local: closed
        # Monday 16 March 2026, daylight time (UTC-5): the same local hours are an hour earlier in UTC.
        (datetime(2026, 3, 16, 14, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 16, 22, 0, tzinfo=UTC), False),
        (datetime(2026, 3, 9, 16, 0, tzinfo=UTC), False),  # a Monday, but a holiday
        (datetime(2026, 3, 10, 5, 59, tzinfo=UTC), True),  # Tuesday 00:59 local: all day
        (datetime(2026, 3, 11, 16, 0, tzinfo=UTC), False),  # Wednesday: absent, closed
    ],
)
def test_weekly_hours_follow_local_time_across_daylight_saving(utc: datetime, open_: bool) -> None:
    """Spans are local wall-clock time in the line's zone: the same 09:00-17:00 before and after the change."""
    assert is_open(CHICAGO, utc).open is open_


def test_lines_without_hours_are_open_and_schedules_are_not_evaluated() -> None:
    """No hours: always open. A Zendesk schedule: the bridge cannot say yet (None), and says why."""
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert is_open(None, now).open is True
    unknown = is_open(Hours(schedule_id=1234), now)
    assert unknown.open is None
    assert "1234" in unknown.why


def test_bridge_lines_says_each_line_and_whether_it_is_open_now(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bridge lines`: every line, its number, group, brand, agents, queue, caller id, and open or closed now."""
    settings = load_settings(None, lines_file=str(EXAMPLE), agents=EXAMPLE_AGENTS, twilio_account_sid="AC1")
    monday_ten = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # 10:00 in Chicago
    text = "\n".join(describe_lines(settings, monday_ten))
    assert text.startswith(f"3 lines (LINES_FILE {EXAMPLE}); now 2026-03-02 16:00 UTC")
    assert "Support  +13125550140  open: mon 10:00 America/Chicago" in text
    assert "  group 360001, brand 2001; longest_idle to client:priya, client:tomas" in text
    assert "  queue bridge-support (up to 50 callers, 600 s); calls out show +13125550140" in text
    assert "  menu: 1 line:Sales, 2 line:Support, 9 voicemail (else line:Support after 6 s)" in text
    assert "Emergencies  +13125550142  open?: Zendesk schedule 1234" in text
    christmas = "\n".join(describe_lines(settings, datetime(2026, 12, 25, 16, 0, tzinfo=UTC)))
    assert "Support  +13125550140  closed: holiday 2026-12-25" in christmas
    monkeypatch.setenv("AGENTS", "client:alice=1001")
    assert main(["lines"]) == 0
    out = capsys.readouterr().out
    assert "1 line (no LINES or LINES_FILE: one line made of the settings, answering every number)" in out
    assert "default  any number  open: always open (no hours)" in out
