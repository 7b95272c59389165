"""In the real Web Chat: an address change with a catalogue question in the middle. The
customer picks "a pending order" with the either/or question's button, asks about a
product halfway, gets the answer, and the address change carries on to the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page

from shop.store.sqlite import SqliteStore
from tests.browser.test_webchat import open_chat, say, sees

EMMA_EMAIL = "emma.brown5032@example.com"
EMMA_PENDING = "#W6460787"  # a skateboard, not shipped yet

pytestmark = pytest.mark.browser


async def tap(page: Page, label: str) -> None:
    """Taps one of the buttons Web Chat shows under the last reply (suggested actions)."""
    toolbar = page.get_by_role("toolbar", name="Suggested actions")
    await toolbar.get_by_role("button", name=label, exact=True).click()


async def test_a_product_question_in_the_middle_of_an_address_change(
    live_app: str, live_app_store: Path, browser: BrowserContext, artifacts_dir: Path
) -> None:
    page, errors = await open_chat(browser, f"{live_app}/")
    await say(page, f"hello, {EMMA_EMAIL} here")
    await sees(page, "Thanks, Emma")
    await say(page, "I need to change an address")
    await sees(page, "or the default address on your account?")
    await tap(page, "A pending order")
    await sees(page, "the new address?")

    await say(page, "oh, before that: do you have a good backpack for hiking?")
    await sees(page, "Backpack")  # the catalogue's answer, from the shop's products
    await sees(page, "Back to your address change")
    assert await page.get_by_text("trouble following").count() == 0  # no "person" for an aside

    await say(page, "2200 Pearl St, Boulder, CO 80302")
    await sees(page, "Shall I go ahead?")
    await tap(page, "Yes")
    await sees(page, "will now ship to 2200 Pearl St")
    await page.screenshot(path=str(artifacts_dir / "webchat-aside.png"), full_page=True)
    assert not errors, errors

    store = await SqliteStore.open(live_app_store)
    try:
        order = await store.get_order(EMMA_PENDING)
        assert order is not None
        assert order.doc["address"]["address1"] == "2200 Pearl St"
        assert order.doc["address"]["city"] == "Boulder" and order.doc["address"]["zip"] == "80302"
    finally:
        await store.aclose()
