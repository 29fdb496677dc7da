"""The live view over HTTP: who may open it (Zendesk's JWT, the role Zendesk says), the board, actions, GET /live."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from bridge.appkeys import DESK, SCHEDULES
from bridge.core.call_model import Call
from bridge.devtools.demo import LocalBridge, calls_mode
from bridge.devtools.sandbox.faults import FaultRule
from bridge.devtools.sandbox.seed import SCHEDULE_ID
from bridge.devtools.waiting import wait_until
from bridge.live.routes import LIVE
from bridge.store.routing_rows import ParsedCalls
from tests import hours_flows
from tests import queue_flows as flows
from tests.conftest import BridgeFactory, ManualClock, recording
from tests.softphone_kit import other_key, softphone_settings, zendesk_jwt

SUPERVISOR_ROLE = 360001


async def open_live(bridge: LocalBridge, user: int, **claims: Any) -> tuple[int, str]:
    """Open the nav bar's page as Zendesk does: a form POST of the signed token."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(bridge.url + "/zendesk/live", data={"token": zendesk_jwt(user, **claims)}) as response,
    ):
        return response.status, await response.text()


def config_of(page: str) -> dict[str, Any]:
    """Return the page's configuration: the session, the user."""
    match = re.search(r'<script id="live-config" type="application/json">(.*?)</script>', page)
    assert match, page
    return dict(json.loads(match.group(1)))


async def call(
    bridge: LocalBridge, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[int, Any]:
    """Send one request with a bearer token; return the status and the JSON (or text) answer."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, bridge.url + path, headers=headers, json=body) as r,
    ):
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


def settings(**extra: Any) -> dict[str, Any]:
    """Return a bridge whose app is set up, with supervisors in a custom role."""
    return softphone_settings(supervisor_roles=str(SUPERVISOR_ROLE), **extra)


async def supervisor_session(bridge: LocalBridge, user: int = 1002) -> str:
    """Make `user` a supervisor in Zendesk, open the page as them and return its session."""
    bridge.sandbox.set_role(user, "agent", SUPERVISOR_ROLE)
    status, page = await open_live(bridge, user)
    assert status == 200, page
    return str(config_of(page)["session"])


async def test_the_page_opens_for_admins_and_supervisor_roles_and_refuses_everyone_else(
    make_bridge: BridgeFactory,
) -> None:
    """The role is Zendesk's, read when the page opens: an admin and a custom role named in SUPERVISOR_ROLES."""
    async with make_bridge(**settings()) as bridge:
        bridge.sandbox.set_role(1001, "admin")
        status, page = await open_live(bridge, 1001)
        assert status == 200
        assert config_of(page)["user"] == 1001
        assert "https://" not in page  # the page loads nothing from any other host

        status, page = await open_live(bridge, 1003)  # a plain agent
        assert status == 403
        assert "SUPERVISOR_ROLES" in page
        assert "live-config" not in page

        bridge.sandbox.set_role(1002, "agent", SUPERVISOR_ROLE)
        assert (await open_live(bridge, 1002))[0] == 200
        bridge.sandbox.set_role(1002, "agent", 999)  # moved to another role in Zendesk: refused at once
        assert (await open_live(bridge, 1002))[0] == 403

        assert (await open_live(bridge, 2001))[0] == 403  # an end-user
        assert (await open_live(bridge, 1004))[0] == 403  # suspended
        assert (await open_live(bridge, 987654))[0] == 403  # no such user in Zendesk

        async with (
            aiohttp.ClientSession() as http,
            http.post(bridge.url + "/zendesk/live", data={"token": zendesk_jwt(1001, key=other_key())}) as forged,
        ):
            assert forged.status == 401
            assert "could not be verified" in await forged.text()
            assert forged.headers["Content-Security-Policy"].startswith("default-src 'self'")
        async with aiohttp.ClientSession() as http, http.post(bridge.url + "/zendesk/live", data={}) as empty:
            assert empty.status == 401


async def test_a_supervisor_demoted_in_zendesk_loses_the_board_and_its_actions_within_a_minute(
    make_bridge: BridgeFactory,
) -> None:
    """The role is read again while the page stays open: demoted, 403 within RECHECK; given back, the board again."""
    clock = ManualClock()
    async with make_bridge(clock=clock, **settings()) as bridge:
        session = await supervisor_session(bridge, 1002)
        assert (await call(bridge, "GET", "/live/board", session))[0] == 200
        bridge.sandbox.set_role(1002, "agent", 999)
        assert (await call(bridge, "GET", "/live/board", session))[0] == 200  # Zendesk's word holds a minute
        clock.advance(61)
        status, said = await call(bridge, "GET", "/live/board", session)
        assert status == 403
        assert "SUPERVISOR_ROLES" in str(said)
        away = {"agent": "client:alice", "status": "away"}
        assert (await call(bridge, "POST", "/live/agents/status", session, away))[0] == 403
        assert (await call(bridge, "POST", "/live/callbacks/cancel", session, {"id": "x"}))[0] == 403
        assert (await bridge.app[DESK].agent("client:alice")).chosen == "available"  # nothing changed
        bridge.sandbox.set_role(1002, "agent", SUPERVISOR_ROLE)  # given back
        clock.advance(61)
        assert (await call(bridge, "GET", "/live/board", session))[0] == 200


async def test_while_zendesk_cannot_say_a_supervisors_last_word_holds_a_while(make_bridge: BridgeFactory) -> None:
    """Zendesk failing: the board stays for 15 minutes on Zendesk's last word, then asks to reload (503)."""
    clock = ManualClock()
    async with make_bridge(clock=clock, **settings()) as bridge:
        session = await supervisor_session(bridge, 1002)
        bridge.sandbox.add_faults([FaultRule("GET", "/api/v2/users/1002", "500", times=1000)])
        clock.advance(61)
        assert (await call(bridge, "GET", "/live/board", session))[0] == 200
        clock.advance(15 * 60)
        status, said = await call(bridge, "GET", "/live/board", session)
        assert status == 503
        assert "reload" in str(said)


async def test_a_role_name_in_supervisor_roles_lets_that_role_in(make_bridge: BridgeFactory) -> None:
    """SUPERVISOR_ROLES=agent lets every agent in; end-users never."""
    async with make_bridge(**softphone_settings(supervisor_roles="agent")) as bridge:
        assert (await open_live(bridge, 1003))[0] == 200
        assert (await open_live(bridge, 2001))[0] == 403


async def test_without_the_apps_settings_the_page_says_what_to_set(make_bridge: BridgeFactory) -> None:
    """No audience, no key: 503 naming the settings."""
    async with make_bridge() as bridge:
        status, page = await open_live(bridge, 1001)
        assert status == 503
        assert "ZENDESK_APP_AUDIENCE" in page


async def test_when_zendesk_cannot_say_who_the_user_is_the_page_says_so(make_bridge: BridgeFactory) -> None:
    """Zendesk failing to answer is a 503 asking to reload, never the page."""
    async with make_bridge(**settings()) as bridge:
        bridge.sandbox.add_faults([FaultRule("GET", "/api/v2/users/1001", "500", times=10)])
        status, page = await open_live(bridge, 1001)
        assert status == 503
        assert "reload to try again" in page


async def test_the_board_needs_the_pages_session_and_renews_it(make_bridge: BridgeFactory) -> None:
    """GET /live/board: 401 without a session or with the softphone's; the board and a renewed session with it."""
    async with make_bridge(**settings()) as bridge:
        session = await supervisor_session(bridge)
        status, made = await call(bridge, "GET", "/live/board", session)
        assert status == 200
        assert [line["key"] for line in made["lines"]] == ["default"]
        assert {agent["identity"] for agent in made["agents"]} >= {"client:alice", "client:bob"}
        assert made["session"]
        assert made["service_level_seconds"] == 20
        assert (await call(bridge, "GET", "/live/board"))[0] == 401
        assert (await call(bridge, "GET", "/live/board", session + "x"))[0] == 401
        # A softphone session is signed for another purpose: it opens no live view.
        async with (
            aiohttp.ClientSession() as http,
            http.post(bridge.url + "/zendesk/softphone", data={"token": zendesk_jwt(1001)}) as phone,
        ):
            match = re.search(r'"session": "([^"]+)"', await phone.text())
            assert match
        assert (await call(bridge, "GET", "/live/board", match.group(1)))[0] == 401


async def test_a_supervisor_sets_an_agents_status_and_the_desk_says_who(make_bridge: BridgeFactory) -> None:
    """POST /live/agents/status: through the desk, `chosen_by` naming the supervisor; bad input changes nothing."""
    async with make_bridge(**settings()) as bridge:
        session = await supervisor_session(bridge)
        status, body = await call(
            bridge, "POST", "/live/agents/status", session, {"agent": "client:bob", "status": "away"}
        )
        assert status == 200
        assert body == {"agent": "client:bob", "chosen": "away", "chosen_by": "supervisor 1002"}
        bob = await bridge.app[DESK].agent("client:bob")
        assert (bob.chosen, bob.chosen_by) == ("away", "supervisor 1002")
        _, made = await call(bridge, "GET", "/live/board", session)
        assert {a["identity"]: a["status"] for a in made["agents"]}["client:bob"] == "away"

        for bad in [{"agent": "client:bob", "status": "asleep"}, {"status": "away"}, "away", None]:
            status, body = await call(bridge, "POST", "/live/agents/status", session, bad)
            assert status == 400, bad
        status, _ = await call(
            bridge, "POST", "/live/agents/status", session, {"agent": "client:zed", "status": "away"}
        )
        assert status == 404
        assert (await bridge.app[DESK].agent("client:bob")).chosen == "away"
        assert (await call(bridge, "POST", "/live/agents/status", None, {"agent": "client:bob"}))[0] == 401
        # Callbacks: one that is not waiting in line cannot be cancelled.
        status, body = await call(bridge, "POST", "/live/callbacks/cancel", session, {"id": "1"})
        assert status == 409
        assert "not pending" in body["error"]


class Book:
    """A store of callbacks as the hook expects one (bridge/live/callbacks.py)."""

    def __init__(self) -> None:
        self.items = [{"id": "7", "line": "default", "caller": "…0123", "due": None}]
        self.cancelled: list[tuple[str, str]] = []

    async def pending(self) -> list[dict[str, Any]]:
        return [item for item in self.items if item["id"] not in {c for c, _ in self.cancelled}]

    async def cancel(self, callback_id: str, by: str) -> bool:
        if callback_id not in {item["id"] for item in await self.pending()}:
            return False
        self.cancelled.append((callback_id, by))
        return True


async def test_with_a_store_of_callbacks_the_board_lists_them_and_a_supervisor_cancels_one(
    make_bridge: BridgeFactory,
) -> None:
    """The hook: pending callbacks on the board, cancelled once, by whom."""
    book = Book()
    async with make_bridge(**settings()) as bridge:
        bridge.app[LIVE].view.callbacks = book
        session = await supervisor_session(bridge)
        _, made = await call(bridge, "GET", "/live/board", session)
        assert made["callbacks"] == book.items
        assert (await call(bridge, "POST", "/live/callbacks/cancel", session, {"id": "7"}))[0] == 200
        assert book.cancelled == [("7", "supervisor 1002")]
        assert (await call(bridge, "POST", "/live/callbacks/cancel", session, {"id": "7"}))[0] == 409
        assert (await call(bridge, "POST", "/live/callbacks/cancel", session, ["7"]))[0] == 400


async def test_get_live_answers_wall_screens_with_the_token_only(make_bridge: BridgeFactory) -> None:
    """LIVE_TOKEN unset: 404. Set: 401 without it or with another, the board with it."""
    async with make_bridge(**settings()) as bridge:
        assert (await call(bridge, "GET", "/live", "anything"))[0] == 404
    async with make_bridge(**settings(live_token="wall-secret")) as bridge:
        assert (await call(bridge, "GET", "/live"))[0] == 401
        assert (await call(bridge, "GET", "/live", "wall-secrex"))[0] == 401
        assert (await call(bridge, "GET", "/live", "wáll"))[0] == 401
        status, made = await call(bridge, "GET", "/live", "wall-secret")
        assert status == 200
        assert made["lines"][0]["today"]["calls"] == 0
        assert "session" not in made
        assert (await call(bridge, "GET", "/live/static/live.js"))[0] == 200
        assert (await call(bridge, "GET", "/live/static/other.js"))[0] == 404


async def test_the_day_is_counted_from_the_stores_calls_on_either_store(
    make_bridge: BridgeFactory, database_url: str
) -> None:
    """A replayed answered call and a missed one: today's figures, /metrics, and calls_arrived's window."""
    async with make_bridge(**settings(live_token="t"), database_url=database_url) as bridge:
        await bridge.replay([recording("inbound_answered"), recording("missed_caller_hung_up")])
        await bridge.settle_calls()
        now = bridge.clock()
        assert len(await bridge.store.calls_arrived(now - timedelta(hours=1), now + timedelta(seconds=1))) == 2
        assert await bridge.store.calls_arrived(now + timedelta(seconds=1), now + timedelta(hours=1)) == []
        bridge.app[LIVE].view.forget()
        _, made = await call(bridge, "GET", "/live", "t")
        day = made["lines"][0]["today"]
        assert (day["calls"], day["answered"], day["missed"]) == (2, 1, 1)
        assert sum(made["lines"][0]["per_hour"]["today"]) == 2
        async with aiohttp.ClientSession() as http, http.get(bridge.url + "/metrics") as response:
            text = await response.text()
        assert 'bridge_line_calls_today{line="default",outcome="answered"} 1.0' in text
        assert 'bridge_line_calls_today{line="default",outcome="missed"} 1.0' in text


@pytest.mark.parametrize("flow", ["queued_then_answered", "queued_then_hung_up"])
async def test_a_queue_flows_figures(make_bridge: BridgeFactory, flow: str) -> None:
    """Through Twilio's stand-in: a caller answered after 45 s, or one who hung up after 75 s in line."""
    run, own, _ = flows.FLOWS[flow]
    options = {"agents": dict(flows.TEAM), **calls_mode(), **own, "live_token": "t"}
    async with make_bridge(stand_in=True, virtual_time=True, **options) as bridge:
        await run(bridge)
        bridge.app[LIVE].view.forget()
        _, made = await call(bridge, "GET", "/live", "t")
    day = made["lines"][0]["today"]
    if flow == "queued_then_answered":
        assert (day["answered"], day["missed"], day["average_wait"], day["longest_wait"]) == (1, 0, 45, 45)
        assert day["service_level"] == 0.0  # 45 s is past the 20 s of SERVICE_LEVEL_SECONDS
    else:
        assert (day["answered"], day["missed"], day["abandoned"], day["longest_wait"]) == (0, 1, 1, 75)


async def test_a_line_on_a_zendesk_schedule_counts_its_day_in_the_schedules_time_zone(
    make_bridge: BridgeFactory,
) -> None:
    """Support follows the sandbox's schedule (America/Chicago): its day is Chicago's once the schedule is read."""
    lines = hours_flows.support("voicemail", f"schedule_id = {SCHEDULE_ID}")
    options = {"lines": lines, "agents": dict(flows.TEAM), "live_token": "t"}
    async with make_bridge(stand_in=True, virtual_time=True, stand_in_start=hours_flows.CHRISTMAS, **options) as bridge:
        await wait_until(lambda: SCHEDULE_ID in bridge.app[SCHEDULES].schedules, what="the schedule read")
        _, made = await call(bridge, "GET", "/live", "t")
    (line,) = made["lines"]
    assert (line["name"], line["timezone"], line["day"]) == ("Support", "America/Chicago", "2026-12-25")


async def test_two_instances_on_one_postgresql_show_the_same_board(make_bridge: BridgeFactory, pg_url: str) -> None:
    """A supervisor's change through one instance, and a call replayed into the other: both boards say the same."""
    async with (
        make_bridge(**settings(live_token="t"), database_url=pg_url) as one,
        make_bridge(**settings(live_token="t"), database_url=pg_url) as two,
    ):
        session = await supervisor_session(one)
        away = {"agent": "client:bob", "status": "away"}
        assert (await call(one, "POST", "/live/agents/status", session, away))[0] == 200
        await two.replay([recording("inbound_answered")])
        await two.settle_calls()

        async def agree() -> bool:
            boards = [(await call(bridge, "GET", "/live", "t"))[1] for bridge in (one, two)]
            for made in boards:
                made.pop("at")
                for agent in made["agents"]:
                    agent.pop("seconds")
            bob = {agent["identity"]: agent["status"] for agent in boards[0]["agents"]}["client:bob"]
            return boards[0] == boards[1] and bob == "away" and boards[0]["lines"][0]["today"]["answered"] == 1

        await wait_until(agree, what="both instances showing the same board")


async def test_bad_input_is_a_clear_4xx_and_changes_nothing(make_bridge: BridgeFactory) -> None:
    """A form in a charset Python does not know, a body that is not JSON: 400, and nothing cancelled or set."""
    async with make_bridge(**settings()) as bridge:
        session = await supervisor_session(bridge)
        book = Book()
        bridge.app[LIVE].view.callbacks = book
        headers = {"Authorization": f"Bearer {session}"}
        async with aiohttp.ClientSession() as http:
            form = {"Content-Type": "application/x-www-form-urlencoded; charset=no-such-charset"}
            async with http.post(bridge.url + "/zendesk/live", data=b"token=x", headers=form) as response:
                assert response.status == 400
                assert "cannot be read" in (await response.json())["error"]
            for path in ("/live/callbacks/cancel", "/live/agents/status"):
                async with http.post(bridge.url + path, data=b"{not json", headers=headers) as response:
                    assert response.status == 400, path
        assert book.cancelled == []
        assert (await bridge.app[DESK].agent("client:bob")).chosen_by is None


def test_a_call_whose_state_did_not_change_is_not_parsed_again() -> None:
    """The live view's reads reuse the parsed call of an unchanged row, from either of the last two reads."""
    parsed = ParsedCalls()
    state = Call(sid="CA1", direction="inbound").model_dump_json()
    (first,) = parsed.calls([("CA1", state)])
    assert parsed.calls([("CA2", Call(sid="CA2").model_dump_json())])[0].sid == "CA2"  # the other span's read
    (again,) = parsed.calls([("CA1", state)])
    assert again is first
    changed = Call(sid="CA1", direction="inbound", line="Sales").model_dump_json()
    (fresh,) = parsed.calls([("CA1", changed)])
    assert fresh is not first
    assert fresh.line == "Sales"
