"""The live view in a real browser: Debian's chromium, driven by Playwright, against a running bridge.

The page is reached as Zendesk reaches the app's nav bar location (a form POST carrying the app's JWT); the
user's role is the sandbox's. Calls come from replayed recordings and from Twilio's stand-in. Screenshots of
each state are saved under test-artifacts/live/.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from bridge.appkeys import DESK
from bridge.devtools.demo import DEMO_NUMBER, LocalBridge
from tests import queue_flows as flows
from tests.conftest import ARTIFACTS, BridgeFactory, eventually, recording
from tests.softphone_kit import AUDIENCE, public_pem, zendesk_jwt

SHOTS = ARTIFACTS / "live"
SUPERVISOR_ROLE = 360001
NAV_BAR = {"width": 420, "height": 900}
WALL = {"width": 1920, "height": 1080}


def live_settings(**extra: Any) -> dict[str, Any]:
    """Return the settings the live view needs: the app's audience and key, and a supervisors' custom role."""
    return {"zendesk_app_audience": AUDIENCE, "zendesk_app_public_key": public_pem(),
            "supervisor_roles": str(SUPERVISOR_ROLE), "agents": dict(flows.TEAM), **extra}  # fmt: skip


async def open_live(context: BrowserContext, bridge: LocalBridge, user: int) -> Page:
    """Open the nav bar's page as Zendesk does: a form POST of the signed token to the app's URL."""
    page = await context.new_page()
    form = (f'<form method="post" action="{escape(bridge.url)}/zendesk/live">'
            f'<input type="hidden" name="token" value="{escape(zendesk_jwt(user))}"></form>')  # fmt: skip
    await page.set_content(form)
    async with page.expect_navigation():
        await page.evaluate("document.forms[0].submit()")
    return page


def figure(page: Page, line: str, name: str) -> Locator:
    """Return the value of a line's figure, found by the figure's accessible name."""
    return page.get_by_role("region", name=line).get_by_role("group", name=name, exact=True).locator(".value")


async def shot(page: Page, name: str) -> None:
    """Save a screenshot of the page's current state as a test artifact."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def test_a_supervisor_sees_the_day_a_new_caller_and_an_agents_change_without_reloading(
    make_bridge: BridgeFactory, browser: Browser
) -> None:
    """Replayed calls in the figures; a caller queues, agents change, and the page follows on its own."""
    async with make_bridge(stand_in=True, virtual_time=True, **live_settings()) as bridge:
        await bridge.replay([recording("inbound_answered"), recording("missed_caller_hung_up")])
        await bridge.settle_calls()
        bridge.sandbox.set_role(1002, "agent", SUPERVISOR_ROLE)
        context = await browser.new_context(viewport=NAV_BAR)
        requests: list[str] = []
        context.on("request", lambda request: requests.append(request.url))
        page = await open_live(context, bridge, 1002)
        await expect(page.locator("#connection")).to_have_text("Live")
        await expect(figure(page, "default", "Answered today")).to_have_text("1")
        await expect(figure(page, "default", "Missed today")).to_have_text("1")
        await expect(figure(page, "default", "Calls today")).to_have_text("2")
        await expect(figure(page, "default", "Callers waiting")).to_have_text("0")
        await expect(figure(page, "default", "Agents available")).to_have_text("2")
        chart = page.get_by_role("region", name="default").get_by_role("img")
        await expect(chart).to_have_attribute("aria-label", re.compile(r"^Calls per hour today beside the same day"))
        await shot(page, "nav-bar-day")

        # Everyone away; Dana calls and waits in the queue: the page shows her without a reload.
        await flows.choose(bridge, "away", flows.ALICE, flows.BOB)
        await expect(figure(page, "default", "Agents available")).to_have_text("0")
        call = await flows.twilio(bridge).incoming(flows.DANA, DEMO_NUMBER)
        await flows.queued(bridge, call)
        await expect(figure(page, "default", "Callers waiting")).to_have_text("1")
        queue = page.get_by_role("list", name="Callers waiting on default")
        await expect(queue).to_contain_text("…0123 waiting")
        bob = page.get_by_role("row", name="bob")
        await expect(bob.locator(".status")).to_have_text("Away")
        await shot(page, "nav-bar-waiting")

        # bob's status changes elsewhere (his softphone, another instance): the row follows.
        await bridge.app[DESK].choose(flows.BOB, "offline", by="agent")
        await expect(bob.locator(".status")).to_have_text("Offline")
        # The supervisor sets alice available from the page: the desk records who did, and Dana rings her.
        await page.get_by_role("combobox", name="Set status of alice").select_option("available")

        async def alice_available() -> bool:
            agent = await bridge.app[DESK].agent(flows.ALICE)
            return agent.chosen == "available" and agent.chosen_by == "supervisor 1002"

        await eventually(alice_available)
        alice = page.get_by_role("row", name="alice")
        await expect(alice.locator(".status")).to_have_text("Ringing")
        await expect(queue).to_contain_text("(ringing an agent)")  # still waiting until she answers
        fake = flows.twilio(bridge)
        await fake.answer(await fake.ringing(flows.ALICE))
        await expect(alice.locator(".status")).to_have_text("On a call")
        await expect(alice.locator(".on")).to_have_text("default, …0123")
        await expect(figure(page, "default", "Callers waiting")).to_have_text("0")
        await expect(queue).to_have_text("Nobody is waiting")
        await expect(figure(page, "default", "Answered today")).to_have_text("2")
        await shot(page, "nav-bar-answered")

        # The bridge stops answering: the page says so, and recovers when it answers again.
        await page.route("**/live/board", lambda route: route.abort())
        await expect(page.locator("#connection")).to_contain_text("Connection lost")
        await shot(page, "nav-bar-lost")
        await page.unroute("**/live/board")
        await expect(page.locator("#connection")).to_have_text("Live")

        wall = await open_live(await browser.new_context(viewport=WALL), bridge, 1002)
        await expect(figure(wall, "default", "Answered today")).to_have_text("2")
        size = await figure(wall, "default", "Answered today").evaluate("(node) => getComputedStyle(node).fontSize")
        assert float(size.removesuffix("px")) >= 50  # the wall screen's large type
        await shot(wall, "wall")
        assert all(url.startswith(bridge.url) for url in requests if not url.startswith("about:")), requests
        await context.close()


async def test_an_agent_who_is_not_a_supervisor_is_refused(make_bridge: BridgeFactory, browser: Browser) -> None:
    """A plain agent gets the refusal page, in words, and no board."""
    async with make_bridge(**live_settings()) as bridge:
        context = await browser.new_context(viewport=NAV_BAR)
        page = await open_live(context, bridge, 1003)
        await expect(page.get_by_role("heading", name="Not for you")).to_be_visible()
        await expect(page.get_by_role("alert")).to_contain_text("SUPERVISOR_ROLES")
        await expect(page.locator("#lines")).to_have_count(0)
        await shot(page, "refused")
        await context.close()


async def test_each_line_has_its_own_figures_and_agents_say_which_lines_they_take(
    make_bridge: BridgeFactory, browser: Browser
) -> None:
    """Two lines: a region each, named, with its own figures; each agent's lines under their name."""
    async with make_bridge(**live_settings(lines=flows.TWO_LINES)) as bridge:
        bridge.sandbox.set_role(1002, "admin")
        context = await browser.new_context(viewport=WALL)
        page = await open_live(context, bridge, 1002)
        for line in ("Support", "Sales"):
            await expect(figure(page, line, "Callers waiting")).to_have_text("0")
            await expect(figure(page, line, "Service level")).to_have_text("\u2013")  # an en dash: nothing to divide
        await expect(page.get_by_role("row", name="alice").locator(".serves")).to_have_text("Support")
        await expect(page.get_by_role("row", name="bob").locator(".serves")).to_have_text("Support, Sales")
        await shot(page, "two-lines")
        await context.close()
