"""The call's controls on the page, in Chromium: on a live call through Twilio's stand-in (the softphone demo)."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.conftest import BridgeFactory
from tests.softphone_kit import softphone_settings, zendesk_jwt
from tests.test_softphone_browser import CALLER, open_phone, phone_context, shot
from tests.test_softphone_demo import SHOTS, softphone_demo


async def test_the_agent_pauses_and_resumes_the_recording_from_the_page(browser: Browser) -> None:
    """Answered: Pause recording works, Resume shows once Twilio confirmed, and the reason of a disabled one shows."""
    async with softphone_demo() as (page_url, _, _):
        context = await browser.new_context(viewport={"width": 320, "height": 800})
        page = await context.new_page()
        await page.goto(page_url)
        await expect(page.locator("#state")).to_have_text("Ringing", timeout=15_000)
        await page.get_by_role("button", name="Answer").click()
        await expect(page.locator("#state")).to_have_text("In call")
        pause = page.get_by_role("button", name="Pause recording", exact=True)
        resume = page.get_by_role("button", name="Resume recording", exact=True)
        await expect(pause).to_be_enabled(timeout=15_000)  # once the bridge heard of the answer
        await expect(resume).to_be_hidden()
        await expect(page.locator("#recording-state")).to_have_text("Recording")
        await pause.click()
        await expect(resume).to_be_enabled(timeout=15_000)
        await expect(pause).to_be_hidden()
        await expect(page.locator("#recording-state")).to_have_text("Recording paused: the customer is not recorded")
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / "in-call-recording-paused.png"), full_page=True)
        await resume.click()
        await expect(pause).to_be_enabled(timeout=15_000)
        await expect(page.locator("#recording-state")).to_have_text("Recording")
        await expect(page.locator("#error")).to_be_hidden()
        await page.get_by_role("button", name="Hang up").click()
        await expect(page.locator("#state")).to_have_text("Ready")
        await expect(page.locator("#controls")).to_be_hidden()
        await context.close()


async def test_a_control_the_bridge_cannot_use_yet_is_disabled_with_its_reason(
    make_bridge: BridgeFactory, browser: Browser
) -> None:
    """A call the bridge never heard of: Pause recording stays disabled, its description says why, no click goes."""
    async with make_bridge(**softphone_settings()) as bridge:
        context = await phone_context(browser)
        page = await open_phone(context, bridge, zendesk_jwt(1001))
        await expect(page.locator("#state")).to_have_text("Ready")
        await page.evaluate(f"window.__fake.ring('{CALLER}', 'CA{'e' * 32}')")
        await page.get_by_role("button", name="Answer").click()
        await expect(page.locator("#state")).to_have_text("In call")
        pause = page.get_by_role("button", name="Pause recording", exact=True)
        await expect(pause).to_be_disabled()
        await expect(pause).to_have_accessible_description("Waiting for the bridge to see the call…")
        await expect(page.get_by_role("button", name="Resume recording")).to_be_hidden()
        await shot(page, "in-call-controls-waiting")
        await context.close()
