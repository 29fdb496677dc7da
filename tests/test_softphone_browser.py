"""The softphone page in a real browser: Debian's chromium, driven by Playwright, against a running bridge.

The page is the bridge's own, reached as Zendesk reaches it (a form POST carrying the app's JWT). Only the two
globals it talks to are fakes, installed before its scripts run: ZAFClient and Twilio.Device
(bridge/devtools/fake_phone.js). A screenshot of each state is saved under test-artifacts/softphone/.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from html import escape
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from bridge.appkeys import DESK
from bridge.core import presence
from bridge.devtools.demo import LocalBridge
from bridge.dispatch import Desk
from tests.conftest import ARTIFACTS, BridgeFactory, eventually, recording, voice_comments
from tests.queue_flows import TWO_LINES
from tests.softphone_kit import other_key, softphone_settings, zendesk_jwt
from tests.test_call_on_ticket import from_ticket, open_ticket

FAKES = Path(__file__).parent.parent / "bridge" / "devtools" / "fake_phone.js"
SHOTS = ARTIFACTS / "softphone"
CALLER = "+14155550123"  # Dana Customer (2001) in the sandbox


async def phone_context(browser: Browser) -> BrowserContext:
    """A browser profile with the fakes installed and Zendesk's CDN (unreachable here) answering empty."""
    context = await browser.new_context(viewport={"width": 320, "height": 500})
    await context.add_init_script(path=str(FAKES))
    await context.route(
        "https://static.zdassets.com/**", lambda route: route.fulfill(body="", content_type="text/javascript")
    )
    return context


async def open_phone(context: BrowserContext, bridge: LocalBridge, token: str) -> Page:
    """Open the top bar as Zendesk does: a form POST of the signed token to the app's URL."""
    page = await context.new_page()
    form = (f'<form method="post" action="{escape(bridge.url)}/zendesk/softphone">'
            f'<input type="hidden" name="token" value="{escape(token)}"></form>')  # fmt: skip
    await page.set_content(form)
    async with page.expect_navigation():
        await page.evaluate("document.forms[0].submit()")
    return page


async def shot(page: Page, name: str) -> None:
    """Save a screenshot of the page's current state as a test artifact."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def fake_log(page: Page) -> list[Any]:
    """Return what the page asked of the fake SDK and ZAF, in order."""
    return list(await page.evaluate("window.__fake.log"))


async def logged(page: Page, entry: str) -> None:
    """Wait until the fake log holds an entry whose JSON contains `entry`."""
    await page.wait_for_function(
        "(entry) => window.__fake.log.some((item) => JSON.stringify(item).includes(entry))", arg=entry
    )


async def test_a_forged_or_expired_jwt_gets_no_phone(make_bridge: BridgeFactory, browser: Browser) -> None:
    """No page, no device, no token: the page says in words why."""
    async with make_bridge(**softphone_settings()) as bridge:
        context = await phone_context(browser)
        for name, token in [("forged", zendesk_jwt(key=other_key())), ("expired", zendesk_jwt(expires_in=-120))]:
            page = await open_phone(context, bridge, token)
            await expect(page.locator("#message-title")).to_have_text("Not signed in")
            await expect(page.locator("#message")).to_contain_text("could not be verified")
            assert await page.evaluate("window.__fake.device") is None
            status = await page.evaluate("fetch('/softphone/token', {method: 'POST'}).then((r) => r.status)")
            assert status == 401
            await shot(page, f"error-{name}-jwt")
        await context.close()


async def test_idle_then_an_incoming_call_pops_the_popover_and_answering_accepts(
    make_bridge: BridgeFactory, browser: Browser
) -> None:
    """Ready; a ring opens the popover with the caller's number and Zendesk name; Answer sends accept()."""
    async with make_bridge(**softphone_settings()) as bridge:
        await bridge.replay([recording("inbound_answered")])  # the bridge now knows Dana's user
        await bridge.settle_calls()
        context = await phone_context(browser)
        page = await open_phone(context, bridge, zendesk_jwt(1001))
        await expect(page.locator("#state")).to_have_text("Ready")
        await expect(page.locator("#who")).to_have_text("alice")
        assert ["register"] in await fake_log(page)
        await shot(page, "idle")

        # Zendesk (through ZAF, as the agent) knows user 2001's name; the bridge knows the number is 2001.
        await page.evaluate("window.__fake.users['2001'] = {name: 'Dana Customer'}")
        await page.evaluate(f"window.__fake.ring('{CALLER}')")
        await expect(page.locator("#state")).to_have_text("Ringing")
        await expect(page.locator("#incoming-number")).to_have_text(CALLER)
        await expect(page.locator("#incoming-name")).to_have_text("Dana Customer")
        await logged(page, '"popover","show"')
        await expect(page.locator("#answer")).to_be_focused()  # the keyboard can answer at once
        await shot(page, "ringing")

        await page.keyboard.press("Enter")
        await logged(page, '"accept"')
        await expect(page.locator("#state")).to_have_text("In call")
        await expect(page.locator("#duration")).to_have_text(re.compile(r"^0:0[1-9]$"), timeout=10_000)
        await page.get_by_role("button", name="Mute").click()
        await expect(page.locator("#mute")).to_have_attribute("aria-pressed", "true")
        await page.get_by_role("group", name="Keypad (sends tones)").get_by_role("button", name="5").click()
        assert ["mute", True] in await fake_log(page)
        assert ["digits", "5"] in await fake_log(page)
        await shot(page, "in-call")

        await page.get_by_role("button", name="Hang up").click()
        await expect(page.locator("#state")).to_have_text("Ready")
        assert ["disconnect"] in await fake_log(page)
        await context.close()


async def test_click_to_call_dials_with_the_ticket_and_the_call_lands_on_that_ticket(
    make_bridge: BridgeFactory, browser: Browser, tmp_path: Path
) -> None:
    """voice.dialout in the background location reaches the top bar, which dials To with TicketId; the
    call Twilio then makes (replayed with that TicketId) adds its voice comment to that ticket."""
    async with make_bridge(**softphone_settings()) as bridge:
        ticket = open_ticket(bridge)
        context = await phone_context(browser)
        page = await open_phone(context, bridge, zendesk_jwt(1001))
        await expect(page.locator("#state")).to_have_text("Ready")
        background = await context.new_page()
        await background.goto(bridge.url + "/softphone/static/background.html")
        await background.wait_for_function("window.__fake && window.__fake.zaf.handlers['voice.dialout']")
        dialout = {"number": "+14155550199", "userId": 2002, "ticketId": ticket}
        await background.evaluate(f"window.__fake.zaf.fire('voice.dialout', {json.dumps(dialout)})")

        await logged(page, '"connect"')
        connect = next(item for item in await fake_log(page) if item[0] == "connect")
        assert connect[1] == {"To": "+14155550199", "TicketId": str(ticket)}
        await expect(page.locator("#state")).to_have_text("Calling…")
        await expect(page.locator("#call-ticket")).to_have_text(f"Logged on ticket #{ticket}")
        await shot(page, "calling-from-ticket")
        await page.evaluate("window.__fake.answerRemote()")
        await expect(page.locator("#state")).to_have_text("In call")
        await shot(page, "in-call-on-ticket")

        # Twilio forwards the page's params to the TwiML App's Voice URL: replay that call with them.
        await bridge.replay([from_ticket(tmp_path, int(connect[1]["TicketId"]))])
        await bridge.settle_calls()
        tickets = bridge.sandbox.list_tickets()
        assert [t["id"] for t in tickets] == [ticket]
        (voice,) = voice_comments(tickets[0])
        assert voice["to"] == "+14155550199"
        await page.evaluate("window.__fake.hangUpRemote()")
        await expect(page.locator("#state")).to_have_text("Ready")

        # The keypad can log a call on a ticket too, when the agent names it.
        await page.get_by_label("Number", exact=True).fill("+14155550188")
        await page.get_by_label("Log the call on ticket (optional)").fill(str(ticket))
        await page.get_by_role("button", name="Call", exact=True).click()
        await logged(page, '"+14155550188"')
        last = [item for item in await fake_log(page) if item[0] == "connect"][-1]
        assert last[1] == {"To": "+14155550188", "TicketId": str(ticket)}
        await context.close()


async def test_an_agent_on_several_lines_chooses_which_to_call_from(
    make_bridge: BridgeFactory, browser: Browser
) -> None:
    """bob serves Support and Sales: `Call from` lists both and the call carries his choice (CallFrom); alice
    serves Support alone and sees no choice."""
    async with make_bridge(**softphone_settings(), lines=TWO_LINES) as bridge:
        context = await phone_context(browser)
        page = await open_phone(context, bridge, zendesk_jwt(1002))
        await expect(page.locator("#state")).to_have_text("Ready")
        choice = page.get_by_label("Call from")
        await expect(choice).to_be_visible()
        assert await choice.locator("option").all_text_contents() == [
            "Support (+16505550100)",
            "Sales (+16505550101)",
        ]
        await choice.select_option(label="Sales (+16505550101)")
        await shot(page, "call-from")
        await page.get_by_label("Number", exact=True).fill("+14155550188")
        await page.get_by_role("button", name="Call", exact=True).click()
        await logged(page, '"connect"')
        connect = next(item for item in await fake_log(page) if item[0] == "connect")
        assert connect[1] == {"To": "+14155550188", "CallFrom": "+16505550101"}

        alice = await open_phone(context, bridge, zendesk_jwt(1001))
        await expect(alice.locator("#state")).to_have_text("Ready")
        await expect(alice.locator("#call-from-row")).to_be_hidden()
        await alice.get_by_label("Number", exact=True).fill("+14155550188")
        await alice.get_by_role("button", name="Call", exact=True).click()
        await logged(alice, '"connect"')
        connect = next(item for item in await fake_log(alice) if item[0] == "connect")
        assert connect[1] == {"To": "+14155550188"}
        await context.close()


async def test_errors_are_shown_in_words(make_bridge: BridgeFactory, browser: Browser) -> None:
    """Microphone refused, network lost, token expired; and a token about to expire is renewed."""
    async with make_bridge(**softphone_settings()) as bridge:
        context = await phone_context(browser)
        page = await open_phone(context, bridge, zendesk_jwt(1001))
        await expect(page.locator("#state")).to_have_text("Ready")

        await page.evaluate("window.__fake.expireSoon()")
        await logged(page, '"updateToken"')

        await page.evaluate(f"window.__fake.micRefused = true; window.__fake.ring('{CALLER}')")
        await page.get_by_role("button", name="Answer").click()
        await expect(page.get_by_role("alert")).to_contain_text("Microphone access was refused")
        await shot(page, "error-microphone")
        await page.get_by_role("button", name="Decline").click()
        await expect(page.locator("#state")).to_have_text("Ready")

        await context.set_offline(True)
        await expect(page.locator("#state")).to_have_text("Offline")
        await expect(page.get_by_role("alert")).to_contain_text("network connection was lost")
        await shot(page, "error-offline")
        await context.set_offline(False)
        await expect(page.locator("#state")).to_have_text("Ready")

        await page.evaluate("window.__fake.error(20104, 'AccessTokenExpired')")
        await expect(page.get_by_role("alert")).to_contain_text("token has expired")
        await shot(page, "error-token-expired")
        await context.close()


async def test_an_agent_without_a_browser_identity_is_told_so(make_bridge: BridgeFactory, browser: Browser) -> None:
    """A verified Zendesk user who is not a client: agent gets words, not a broken phone."""
    async with make_bridge(**softphone_settings()) as bridge:
        context = await phone_context(browser)
        page = await open_phone(context, bridge, zendesk_jwt(4242))
        await expect(page.locator("#message")).to_contain_text("client:YOURNAME=4242")
        await shot(page, "not-an-agent")
        await context.close()


async def bridge_agents(bridge: LocalBridge) -> str:
    """Run `bridge agents` as an admin would, on the bridge's database, and return what it prints."""
    agents = ",".join(f"{identity}={user}" for identity, user in bridge.settings.agents.items())
    env = {**os.environ, "DATABASE_URL": bridge.settings.database_url, "AGENTS": agents}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "agents", env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    return out.decode()


async def chosen(bridge: LocalBridge, status: str, identity: str = "client:alice") -> None:
    """Wait until the store says the agent chose `status`."""
    desk = bridge.app[DESK]
    await eventually(lambda: _chosen(desk, identity, status), within=15)


async def _chosen(desk: Desk, identity: str, status: str) -> bool:
    return (await desk.agent(identity)).chosen == status


async def test_the_status_select_sets_the_agents_presence(make_bridge: BridgeFactory, browser: Browser) -> None:
    """The Status control shows the bridge's value and changes it; `bridge agents` and the store agree."""
    async with make_bridge(**softphone_settings()) as bridge:
        context = await phone_context(browser)
        page = await open_phone(context, bridge, zendesk_jwt(1001))
        status = page.get_by_role("combobox", name="Status", exact=True)
        await expect(status).to_be_enabled()  # the first check-in answered
        await expect(status).to_have_value("available")
        assert [await option.text_content() for option in await status.locator("option").all()] == [
            "Available", "Away", "Offline"]  # fmt: skip
        assert (await bridge.app[DESK].agent("client:alice")).seen_at is not None
        await shot(page, "status-available")

        await status.select_option(label="Away")
        await chosen(bridge, "away")
        await expect(page.locator("body")).to_have_attribute("data-presence", "away")
        assert re.search(r"^client:alice\s+1001\s+away\s", await bridge_agents(bridge), re.MULTILINE)
        await shot(page, "status-away")

        await status.select_option(label="Offline")
        await chosen(bridge, "offline")
        await status.select_option(label="Available")
        await chosen(bridge, "available")
        assert re.search(r"^client:alice\s+1001\s+available\s", await bridge_agents(bridge), re.MULTILINE)
        assert (await bridge.app[DESK].agent("client:bob")).chosen_by is None  # nobody else changed

        await page.close()  # the page says goodbye: offline at once, her choice kept
        desk = bridge.app[DESK]
        await eventually(lambda: _left(desk), within=15)
        await context.close()


async def _left(desk: Desk) -> bool:
    return (await desk.agent("client:alice")).left


async def test_end_wrap_up_frees_the_agent(make_bridge: BridgeFactory, browser: Browser) -> None:
    """After her call alice sees Wrap-up and End wrap-up; pressing it ends wrap-up in the store."""
    async with make_bridge(**softphone_settings(wrap_up_seconds=600)) as bridge:
        await bridge.replay([recording("inbound_answered")])  # alice answers, the call ends
        await bridge.settle_calls()
        context = await phone_context(browser)
        page = await open_phone(context, bridge, zendesk_jwt(1001))
        await expect(page.locator("#busy")).to_contain_text("Wrap-up until")
        end = page.get_by_role("button", name="End wrap-up")
        await expect(end).to_be_visible()
        await shot(page, "wrap-up")
        await end.click()
        await expect(end).to_be_hidden()
        await expect(page.locator("#busy")).to_be_hidden()
        await expect(page.get_by_role("combobox", name="Status", exact=True)).to_be_focused()
        alice = await bridge.app[DESK].agent("client:alice")
        assert presence.busy_now(alice, bridge.clock()) is None
        await context.close()


async def test_the_softphone_says_why_the_bridge_set_the_agent_away(
    make_bridge: BridgeFactory, browser: Browser
) -> None:
    """An offer rang out with MISSED_OFFERS_AWAY=1: Away, and why; choosing Available clears both."""
    async with make_bridge(**softphone_settings(missed_offers_away=1)) as bridge:
        await bridge.replay([recording("voicemail_transcribed")])  # alice's leg rings out
        await bridge.settle_calls()
        context = await phone_context(browser)
        page = await open_phone(context, bridge, zendesk_jwt(1001))
        status = page.get_by_role("combobox", name="Status", exact=True)
        await expect(status).to_have_value("away")
        await expect(page.locator("#why")).to_contain_text("The bridge set you away")
        await shot(page, "away-missed-offers")
        await status.select_option(label="Available")
        await expect(page.locator("#why")).to_be_hidden()
        await chosen(bridge, "available")
        await context.close()


@pytest.mark.parametrize("worker", ["loads", "blocked"])
async def test_the_softphone_checks_in_on_its_own(make_bridge: BridgeFactory, browser: Browser, worker: str) -> None:
    """The worker's clock keeps checking in (a third of a short PRESENCE_TIMEOUT_SECONDS): seen_at moves on.
    A worker that cannot load leaves the page's own timer to do it."""
    async with make_bridge(**softphone_settings(presence_timeout_seconds=10)) as bridge:
        context = await phone_context(browser)
        urls: list[str] = []
        context.on("request", lambda request: urls.append(request.url))
        if worker == "blocked":
            await context.route("**/softphone/static/ticker.js", lambda route: route.fulfill(status=404))
        page = await open_phone(context, bridge, zendesk_jwt(1001))
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        desk = bridge.app[DESK]
        await eventually(lambda: _seen(desk), within=15)
        first = (await desk.agent("client:alice")).seen_at
        assert first is not None

        async def seen_again() -> bool:
            seen = (await desk.agent("client:alice")).seen_at
            return seen is not None and seen > first

        await eventually(seen_again, within=20)  # nothing but the page's own clock makes it check in
        assert errors == []
        assert bridge.url + "/softphone/static/ticker.js" in urls  # the clock is the worker's
        await context.close()


async def _seen(desk: Desk) -> bool:
    return (await desk.agent("client:alice")).seen_at is not None


async def test_the_softphone_counts_who_waits_and_the_callbacks_kept_in_line(
    make_bridge: BridgeFactory, browser: Browser, tmp_path: Path
) -> None:
    """A caller asked to be called back (the first part of a recorded callback): the page says so beside the status."""
    lines = recording("callback_answered").read_text().splitlines()
    asked = next(index for index, line in enumerate(lines) if '"/twilio/voice/callback-number' in line)
    first_part = tmp_path / "asked.jsonl"
    first_part.write_text("\n".join(lines[: asked + 1]) + "\n")
    async with make_bridge(**softphone_settings()) as bridge:
        await choose_all(bridge, "away")
        report = await bridge.replay([first_part])
        assert report.ok, report.failures
        context = await phone_context(browser)
        page = await open_phone(context, bridge, zendesk_jwt(1001))
        await expect(page.locator("#queue")).to_have_text("0 waiting, 1 callback")
        await shot(page, "queue-callback")
        await context.close()


async def choose_all(bridge: LocalBridge, status: str) -> None:
    """Set every agent's chosen status."""
    desk = bridge.app[DESK]
    for agent in await desk.agents():
        await desk.choose(agent.identity, status, by="test")  # type: ignore[arg-type]
