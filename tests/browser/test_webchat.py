"""The real Web Chat, in Debian chromium, against the app's own Direct Line, as a customer uses it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, expect

from shop.store.sqlite import SqliteStore

SEND_BOX = '[data-id="webchat-sendbox-input"]'
IVAN_EMAIL = "ivan.santos3158@example.com"
DELIVERED_ORDER = "#W6893533"  # Garden Hose + Wireless Earbuds, paid with PayPal

pytestmark = pytest.mark.browser


async def say(page: Page, text: str) -> None:
    box = page.locator(SEND_BOX)
    await box.fill(text)
    await box.press("Enter")


async def sees(page: Page, text: str) -> None:
    await page.get_by_text(text).first.wait_for(timeout=20_000)


async def open_chat(browser: BrowserContext, url: str) -> tuple[Page, list[str]]:
    page = browser.pages[0] if browser.pages else await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The page runs under a strict Content-Security-Policy: nothing it needs may be refused.
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    await page.goto(url)
    # The welcome is rendered before the customer says anything.
    await sees(page, "support assistant")
    return page, errors


async def test_a_new_customer_is_helped_end_to_end_over_the_websocket(
    live_app: str, live_app_store: Path, browser: BrowserContext, artifacts_dir: Path
) -> None:
    page, errors = await open_chat(browser, f"{live_app}/")

    await say(page, f"hi, my email is {IVAN_EMAIL}")
    await sees(page, "Thanks, Ivan")
    await say(page, f"where is my order {DELIVERED_ORDER}?")
    await sees(page, "is delivered")
    await sees(page, "262530041486")  # its tracking number, from the store
    await say(page, "I want to return the garden hose")
    await sees(page, "Shall I go ahead?")
    await say(page, "yes")
    await sees(page, "is requested")
    await say(page, "what is your return policy?")
    await sees(page, "Returns policy")
    await say(page, "I want to talk to a person")
    await sees(page, "passing you to a person")
    # No agent is signed in: the customer hears so, and when the team is there.
    await sees(page, "No one from our support team is online right now")

    assert await page.get_by_text("Send failed").count() == 0
    # The connection settles as online: no lingering "Connecting…" notice.
    await expect(page.get_by_text("Connecting\u2026", exact=True)).to_have_count(0, timeout=10_000)
    await page.screenshot(path=str(artifacts_dir / "webchat-websocket.png"), full_page=True)
    assert not errors, errors
    # The return really was recorded in the shop's store.
    store = await SqliteStore.open(live_app_store)
    try:
        order = await store.get_order(DELIVERED_ORDER)
        assert order is not None and order.doc["status"] == "return requested"
    finally:
        await store.aclose()


async def test_polling_mode_answers_too(live_app: str, browser: BrowserContext, artifacts_dir: Path) -> None:
    page, errors = await open_chat(browser, f"{live_app}/?transport=polling")
    await say(page, f"my email is {IVAN_EMAIL}")
    await sees(page, "Thanks, Ivan")
    await say(page, f"status of {DELIVERED_ORDER} please")
    await sees(page, "is delivered")
    assert await page.get_by_text("Send failed").count() == 0
    await asyncio.sleep(0)  # let the last frame paint before the screenshot
    await page.screenshot(path=str(artifacts_dir / "webchat-polling.png"), full_page=True)
    assert not errors, errors


async def test_a_happy_customer_is_offered_products_in_a_card(
    live_app: str, browser: BrowserContext, artifacts_dir: Path
) -> None:
    page, errors = await open_chat(browser, f"{live_app}/?transport=polling")
    await say(page, "do you have anything for hiking?")
    await sees(page, "Hiking Boots")
    await say(page, f"my email is {IVAN_EMAIL}")
    await sees(page, "Thanks, Ivan")
    await say(page, f"where is {DELIVERED_ORDER}?")
    await sees(page, "is delivered")
    await say(page, "great, thank you so much!")
    await sees(page, "You might also like")  # the Adaptive Card's title
    await sees(page, "No thanks")  # a suggested action to decline
    await page.screenshot(path=str(artifacts_dir / "webchat-suggestions.png"), full_page=True)
    assert not errors, errors
