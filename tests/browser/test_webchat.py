"""The real Web Chat, in Debian chromium, against the app's own Direct Line."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, expect

SEND_BOX = '[data-id="webchat-sendbox-input"]'

pytestmark = pytest.mark.browser


async def say(page: Page, text: str) -> None:
    box = page.locator(SEND_BOX)
    await box.fill(text)
    await box.press("Enter")


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_customer_types_and_sees_the_reply(
    live_app: str, browser: BrowserContext, artifacts_dir: Path, transport: str
) -> None:
    page = browser.pages[0] if browser.pages else await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    query = "?transport=polling" if transport == "polling" else ""
    await page.goto(f"{live_app}/{query}")

    # The welcome is rendered before the customer says anything.
    await page.get_by_text("support assistant").first.wait_for(timeout=20_000)
    await say(page, "Where is my order W2611340?")
    await page.get_by_text("Order help is on its way").first.wait_for(timeout=20_000)
    # The customer's own message is shown as sent, not as failed.
    await page.get_by_text("Where is my order W2611340?").first.wait_for()
    assert await page.get_by_text("Send failed").count() == 0
    # The connection settles as online: no lingering "Connecting…" notice.
    await expect(page.get_by_text("Connecting")).to_have_count(0, timeout=10_000)

    await page.screenshot(path=str(artifacts_dir / f"webchat-{transport}.png"), full_page=True)
    assert not errors, errors
