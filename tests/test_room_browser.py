"""Hold, transfers and a third party on the page, in Chromium: alice and bob on the softphone demo's devices."""

from __future__ import annotations

from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.conftest import eventually, voice_comments
from tests.test_softphone_demo import SHOTS, softphone_demo, tickets

LONG = 30_000  # the demo's Twilio runs on the wall clock: a ring, a move and a poll each take a moment


async def phone(context: BrowserContext, url: str) -> Page:
    """Open one agent's demo phone and wait until it is ready."""
    page = await context.new_page()
    await page.goto(url)
    return page


async def answered(browser: Browser, url: str) -> tuple[BrowserContext, Page, Page]:
    """Open alice's and bob's phones; the demo's first call rings both; alice answers."""
    context = await browser.new_context(viewport={"width": 320, "height": 900})
    alice = await phone(context, url)
    bob = await phone(context, url + "?agent=bob")
    await expect(alice.locator("#state")).to_have_text("Ringing", timeout=LONG)
    await alice.get_by_role("button", name="Answer").click()
    await expect(alice.get_by_role("button", name="Hold", exact=True)).to_be_enabled(timeout=LONG)
    await expect(bob.locator("#state")).to_have_text("Ready", timeout=LONG)
    return context, alice, bob


async def choose(page: Page, option: str) -> None:
    """Pick who Transfer, Consult and Add to call are for, in the Transfer to combobox."""
    target = page.get_by_role("combobox", name="Transfer to")
    await expect(target.locator("option", has_text=option)).to_have_count(1, timeout=LONG)
    await target.select_option(label=next(iter(await target.locator("option", has_text=option).all_inner_texts())))


async def test_hold_then_resume(browser: Browser) -> None:
    """Hold: the page says the customer hears the hold music; Resume brings alice back into the call."""
    async with softphone_demo() as (url, _, _):
        context, alice, _ = await answered(browser, url)
        await alice.get_by_role("button", name="Hold", exact=True).click()
        await expect(alice.locator("#room-state")).to_have_text(
            "On hold: the customer hears the hold music", timeout=LONG
        )
        resume = alice.get_by_role("button", name="Resume", exact=True)
        await expect(resume).to_be_enabled(timeout=LONG)
        SHOTS.mkdir(parents=True, exist_ok=True)
        await alice.screenshot(path=str(SHOTS / "in-call-on-hold.png"), full_page=True)
        await resume.click()
        await expect(alice.get_by_role("button", name="Hold", exact=True)).to_be_enabled(timeout=LONG)
        await expect(alice.locator("#room-state")).to_have_text("")
        await expect(alice.locator("#state")).to_have_text("In call")
        await alice.get_by_role("button", name="Hang up").click()
        await expect(alice.locator("#state")).to_have_text("Ready")
        await context.close()


async def test_hang_up_with_the_customer_on_hold_ends_the_call(browser: Browser) -> None:
    """alice holds the customer and hangs up: the call ends for the customer too, and goes on its ticket."""
    async with softphone_demo() as (url, zendesk, _):
        context, alice, _ = await answered(browser, url)
        await alice.get_by_role("button", name="Hold", exact=True).click()
        await expect(alice.get_by_role("button", name="Resume", exact=True)).to_be_enabled(timeout=LONG)
        await alice.get_by_role("button", name="Hang up").click()
        await expect(alice.locator("#state")).to_have_text("Ready", timeout=LONG)

        async def over() -> bool:
            return any(voice_comments(ticket) for ticket in (await tickets(zendesk)).values())

        await eventually(over, within=30)
        await expect(alice.locator("#busy")).not_to_have_text("On a call", timeout=LONG)
        await context.close()


async def test_transfer_cold_to_a_colleague(browser: Browser) -> None:
    """alice transfers to bob: bob's phone rings, he answers, alice's is free again."""
    async with softphone_demo() as (url, _, _):
        context, alice, bob = await answered(browser, url)
        transfer = alice.get_by_role("button", name="Transfer", exact=True)
        await expect(transfer).to_have_accessible_description("Choose who, in Transfer to, first.")
        await choose(alice, "bob")
        await transfer.click()
        await expect(bob.locator("#state")).to_have_text("Ringing", timeout=LONG)
        await bob.get_by_role("button", name="Answer").click()
        await expect(bob.locator("#state")).to_have_text("In call")
        await expect(alice.locator("#state")).to_have_text("Ready", timeout=LONG)
        await bob.get_by_role("button", name="Hang up").click()
        await expect(bob.locator("#state")).to_have_text("Ready")
        await context.close()


async def test_consult_then_complete_and_consult_then_cancel(browser: Browser) -> None:
    """alice consults bob (the customer on hold), then completes: bob has the call; a second consult is cancelled."""
    async with softphone_demo() as (url, _, _):
        context, alice, bob = await answered(browser, url)
        await choose(alice, "bob")
        await alice.get_by_role("button", name="Consult", exact=True).click()
        await expect(bob.locator("#state")).to_have_text("Ringing", timeout=LONG)
        await bob.get_by_role("button", name="Answer").click()
        await expect(bob.locator("#demo-note")).to_contain_text("in the call's room", timeout=LONG)
        complete = alice.get_by_role("button", name="Complete transfer")
        await expect(alice.locator("#why-complete")).to_have_text("", timeout=LONG)
        await expect(complete).to_be_enabled(timeout=LONG)
        await expect(alice.locator("#room-state")).to_have_text("Consulting bob: the customer is on hold")
        await alice.screenshot(path=str(SHOTS / "in-call-consulting.png"), full_page=True)
        await alice.locator("#call").screenshot(path=str(SHOTS / "softphone-consulting.png"))  # docs/softphone.md
        await complete.click()
        await expect(alice.locator("#state")).to_have_text("Ready", timeout=LONG)
        await expect(bob.locator("#state")).to_have_text("In call")

        # bob consults alice, and calls it off: he keeps the customer.
        await choose(bob, "alice")
        await bob.get_by_role("button", name="Consult", exact=True).click()
        await expect(alice.locator("#state")).to_have_text("Ringing", timeout=LONG)
        await alice.get_by_role("button", name="Answer").click()
        cancel = bob.get_by_role("button", name="Cancel transfer")
        await expect(cancel).to_be_enabled(timeout=LONG)
        await cancel.click()
        await expect(alice.locator("#state")).to_have_text("Ready", timeout=LONG)
        await expect(bob.get_by_role("button", name="Hold", exact=True)).to_be_enabled(timeout=LONG)
        await bob.get_by_role("button", name="Hang up").click()
        await context.close()


async def test_add_a_third_party_by_number(browser: Browser) -> None:
    """alice adds a phone number: the three are on the call; the page says nobody is on hold."""
    async with softphone_demo() as (url, _, _):
        context, alice, _ = await answered(browser, url)
        await choose(alice, "A phone number")
        await alice.get_by_role("textbox", name="Number to transfer to").fill("+14155550177")
        await alice.get_by_role("button", name="Add to call").click()
        await expect(alice.get_by_role("button", name="Hold", exact=True)).to_be_enabled(timeout=LONG)
        await expect(alice.locator("#state")).to_have_text("In call", timeout=LONG)
        await alice.get_by_role("button", name="Hang up").click()
        await expect(alice.locator("#state")).to_have_text("Ready")
        await context.close()
