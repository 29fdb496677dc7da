"""`bridge demo --softphone`: a person clicks through calls on a simulated device and sees them in the sandbox."""

from __future__ import annotations

import asyncio
import io
import re

import aiohttp
from playwright.async_api import Browser, expect

from bridge.devtools.softphone_demo import run_softphone_demo
from bridge.devtools.waiting import wait_until
from tests.conftest import ARTIFACTS, voice_comments


async def test_the_softphone_demo_rings_answers_dials_and_files_tickets(browser: Browser) -> None:
    """It prints the page's URL; the device rings; answering and click-to-call each land in the sandbox."""
    out, stop = io.StringIO(), asyncio.Event()
    demo = asyncio.create_task(run_softphone_demo(out, stop))
    try:
        await wait_until(lambda: "Ctrl-C" in out.getvalue(), within=60, what="the demo printing its URL")
        page_url = re.search(r"Open (\S+) in a browser", out.getvalue())
        zendesk = re.search(r"the sandbox Zendesk at (\S+),", out.getvalue())
        assert page_url, out.getvalue()
        assert zendesk, out.getvalue()
        context = await browser.new_context(viewport={"width": 320, "height": 700})
        page = await context.new_page()
        await page.goto(page_url.group(1))
        await expect(page.locator("#state")).to_have_text("Ringing", timeout=15_000)
        await page.get_by_role("button", name="Answer").click()
        await expect(page.locator("#demo-note")).to_contain_text("the call is on ticket #2", timeout=30_000)
        (ARTIFACTS / "softphone").mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "softphone" / "demo-answered.png"), full_page=True)
        await page.get_by_role("button", name="Hang up").click()
        await expect(page.locator("#state")).to_have_text("Ready")

        await page.get_by_role("button", name="Click-to-call from ticket #1").click()
        await expect(page.locator("#demo-note")).to_contain_text("the call is on ticket #1", timeout=30_000)
        await expect(page.locator("#state")).to_have_text("In call")
        await context.close()
        async with aiohttp.ClientSession() as session, session.get(zendesk.group(1) + "/sandbox/state") as response:
            tickets = {ticket["id"]: ticket for ticket in (await response.json())["tickets"]}
        assert tickets[2]["via_id"] == 45
        assert len(voice_comments(tickets[1])) == 1
        assert len(voice_comments(tickets[2])) == 1
        assert set(tickets) == {1, 2}
    finally:
        stop.set()
        assert await demo == 0
