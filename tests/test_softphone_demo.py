"""`bridge demo --softphone`: a person clicks through calls on simulated devices and sees them in the sandbox."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from playwright.async_api import Browser, Page, expect

from bridge.devtools.softphone_demo import run_softphone_demo
from bridge.devtools.waiting import wait_until
from tests.conftest import ARTIFACTS, eventually, voice_comments

SHOTS = ARTIFACTS / "softphone"


@asynccontextmanager
async def softphone_demo() -> AsyncIterator[tuple[str, str, io.StringIO]]:
    """Run the demo until the block ends; yield alice's page URL, the sandbox's URL and what it printed."""
    out, stop = io.StringIO(), asyncio.Event()
    demo = asyncio.create_task(run_softphone_demo(out, stop))
    try:
        await wait_until(lambda: "Ctrl-C" in out.getvalue(), within=60, what="the demo printing its URL")
        page_url = re.search(r"Open (\S+) in a browser", out.getvalue())
        zendesk = re.search(r"the sandbox Zendesk at (\S+),", out.getvalue())
        assert page_url, out.getvalue()
        assert zendesk, out.getvalue()
        yield page_url.group(1), zendesk.group(1), out
    finally:
        stop.set()
        assert await demo == 0


async def tickets(zendesk: str) -> dict[int, dict[str, Any]]:
    """Return the sandbox's tickets by id."""
    async with aiohttp.ClientSession() as session, session.get(zendesk + "/sandbox/state") as response:
        return {ticket["id"]: ticket for ticket in (await response.json())["tickets"]}


async def test_the_softphone_demo_rings_answers_dials_and_files_tickets(browser: Browser) -> None:
    """It prints the page's URL; the device rings; answering and click-to-call each land in the sandbox."""
    async with softphone_demo() as (page_url, zendesk, _):
        context = await browser.new_context(viewport={"width": 320, "height": 700})
        page = await context.new_page()
        await page.goto(page_url)
        await expect(page.locator("#state")).to_have_text("Ringing", timeout=15_000)
        await page.get_by_role("button", name="Answer").click()
        await expect(page.locator("#demo-note")).to_contain_text("the call is on ticket #2", timeout=30_000)
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / "demo-answered.png"), full_page=True)
        await page.get_by_role("button", name="Hang up").click()
        await expect(page.locator("#state")).to_have_text("Ready")
        await expect(page.locator("#demo-note")).to_contain_text("hung up")

        await page.get_by_role("button", name="Click-to-call from ticket #1").click()
        await expect(page.locator("#demo-note")).to_contain_text("the call is on ticket #1", timeout=30_000)
        await expect(page.locator("#state")).to_have_text("In call")
        await context.close()

        async def filed() -> bool:
            held = await tickets(zendesk)
            return set(held) == {1, 2} and all(len(voice_comments(held[n])) == 1 for n in (1, 2))

        await eventually(filed, within=30)
        assert (await tickets(zendesk))[2]["via_id"] == 45


async def phone(browser: Browser, url: str) -> Page:
    """Open one agent's demo phone in a browser profile of its own."""
    context = await browser.new_context(viewport={"width": 320, "height": 800})
    page = await context.new_page()
    await page.goto(url)
    return page


async def test_two_agents_one_away_calls_queue_and_go_to_the_other(browser: Browser) -> None:
    """bob away: calls ring alice only; with alice on a call the next caller queues, and bob choosing Available is
    offered that caller."""
    async with softphone_demo() as (alice_url, zendesk, out):
        assert f"{alice_url}?agent=bob in a second window" in out.getvalue()
        alice = await phone(browser, alice_url)
        await expect(alice.locator("#state")).to_have_text("Ringing", timeout=15_000)  # the first call rings both
        await alice.get_by_role("button", name="Answer").click()
        await expect(alice.locator("#demo-note")).to_contain_text("client:alice answered", timeout=30_000)
        await alice.get_by_role("button", name="Hang up").click()
        await expect(alice.locator("#state")).to_have_text("Ready")

        bob = await phone(browser, f"{alice_url}?agent=bob")
        await expect(bob.locator("#state")).to_have_text("Ready")
        bob_status = bob.get_by_role("combobox", name="Status", exact=True)
        await expect(bob_status).to_be_enabled()
        await bob_status.select_option(label="Away")
        await expect(bob.locator("body")).to_have_attribute("data-presence", "away")

        await alice.get_by_role("button", name="Simulate an incoming call").click()
        await expect(alice.locator("#demo-note")).to_contain_text("routing rings client:alice.", timeout=15_000)
        await expect(alice.locator("#state")).to_have_text("Ringing", timeout=15_000)
        await alice.get_by_role("button", name="Answer").click()
        await expect(alice.locator("#state")).to_have_text("In call")
        await expect(alice.locator("#busy")).to_have_text("On a call", timeout=15_000)
        await expect(bob.locator("#state")).to_have_text("Ready")

        await bob.get_by_role("button", name="Simulate an incoming call").click()
        await expect(bob.locator("#demo-note")).to_contain_text("wait in the queue, number 1 in line", timeout=15_000)
        await expect(bob.locator("#demo-queue")).to_have_text("Queue: 1 caller waiting for an agent")
        SHOTS.mkdir(parents=True, exist_ok=True)
        await bob.screenshot(path=str(SHOTS / "demo-bob-away-queue.png"), full_page=True)
        # Away is no bar to calling out, and a caller waiting meanwhile does not hold the call out up.
        await bob.get_by_role("button", name="Click-to-call from ticket #1").click()
        await expect(bob.locator("#demo-note")).to_contain_text("the call is on ticket #1", timeout=15_000)
        (voice,) = voice_comments((await tickets(zendesk))[1])
        assert voice["answered_by_id"] == 1002  # bob's call out, not the recording's alice
        await bob.get_by_role("button", name="Hang up").click()
        await expect(bob.locator("#state")).to_have_text("Ready")

        await bob_status.select_option(label="Available")
        await expect(bob.locator("#state")).to_have_text("Ringing", timeout=15_000)  # the waiting caller, moved
        await bob.get_by_role("button", name="Answer").click()
        await expect(bob.locator("#demo-note")).to_contain_text("client:bob answered", timeout=30_000)
        await expect(bob.locator("#demo-queue")).to_have_text("Queue: nobody waiting")
        await expect(bob.locator("#busy")).to_have_text("On a call", timeout=15_000)
        await bob.screenshot(path=str(SHOTS / "demo-bob-took-the-queued-call.png"), full_page=True)
        await expect(alice.locator("#state")).to_have_text("In call")
        for page in (alice, bob):
            await page.context.close()


async def test_the_demo_shows_the_live_view_beside_the_phone_and_both_move(browser: Browser) -> None:
    """/demo: alice's phone rings, the live view shows the caller; she answers, and it shows the call answered."""
    async with softphone_demo() as (_, _, out):
        side = re.search(r"Open (\S+) for alice's phone beside the supervisors' live view", out.getvalue())
        assert side, out.getvalue()
        context = await browser.new_context(viewport={"width": 1280, "height": 820})
        page = await context.new_page()
        await page.goto(side.group(1))
        phone, live = page.frame_locator("#phone"), page.frame_locator("#live")
        line = live.get_by_role("region", name="default")
        await expect(live.locator("#connection")).to_have_text("Live", timeout=15_000)
        await expect(phone.locator("#state")).to_have_text("Ringing", timeout=15_000)
        alice = live.get_by_role("row", name="alice")
        await expect(alice.locator(".status")).to_have_text("Ringing")  # a first ring: not in the queue
        await expect(alice.locator(".on")).to_have_text("default, …0123")
        await phone.get_by_role("button", name="Answer").click()
        await expect(alice.locator(".status")).to_have_text("On a call")
        await expect(line.get_by_role("group", name="Answered today", exact=True)).to_contain_text("1")
        await expect(line.get_by_role("group", name="Callers waiting", exact=True)).to_contain_text("0")
        (ARTIFACTS / "live").mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "live" / "demo.png"))
        await context.close()
