"""A handoff to a person, end to end: the customer's Web Chat and the agent console at /agent
side by side in one chromium (two contexts), against the live app."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

pytestmark = pytest.mark.browser

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WAIT_MS = 20_000
AGENT, AGENT_NAME, AGENT_PASSWORD = "alex", "Alex", "kettle-lamp-orbit-42"
NOAH_EMAIL = "noah.brown7922@example.com"
NOAH_ORDER = "#W7678072"
# Web Chat's message bubbles from the bot's side (the assistant, and agents speaking through it).
BOT_BUBBLE = ".webchat__bubble:not(.webchat__bubble--from-user)"
SEND_BOX = '[data-id="webchat-sendbox-input"]'


async def add_agent(env: dict[str, str]) -> None:
    """Creates the agent's account with the CLI, in the live app's store."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "agents",
        "add",
        AGENT,
        "--display-name",
        AGENT_NAME,
        "--password-stdin",
        cwd=PROJECT_ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(f"{AGENT_PASSWORD}\n".encode()), 60)
    assert process.returncode == 0, output.decode()


async def say(page: Page, text: str) -> None:
    box = page.locator(SEND_BOX)
    await box.fill(text)
    await box.press("Enter")


async def sees(page: Page, text: str) -> None:
    await page.get_by_text(text).first.wait_for(timeout=WAIT_MS)


async def bot_messages(page: Page) -> list[str]:
    return await page.locator(BOT_BUBBLE).all_inner_texts()


async def bot_answers(page: Page, before: int, pattern: str) -> list[str]:
    """Waits (20 s at most) for a bot message after the first `before` that matches `pattern`."""
    deadline = asyncio.get_running_loop().time() + WAIT_MS / 1000
    while True:
        new = (await bot_messages(page))[before:]
        if any(re.search(pattern, text, re.I) for text in new):
            return new
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no bot message matching {pattern!r}; the new ones: {new}")
        await asyncio.sleep(0.2)


async def test_an_agent_takes_over_a_web_chat_and_hands_it_back(
    live_app: str, live_app_env: dict[str, str], chromium_browser: Browser, artifacts_dir: Path
) -> None:
    await add_agent(live_app_env)
    customer_context = await chromium_browser.new_context(viewport={"width": 900, "height": 800})
    agent_context = await chromium_browser.new_context(viewport={"width": 1280, "height": 860})
    customer, agent = await customer_context.new_page(), await agent_context.new_page()
    errors: list[str] = []
    customer.on("pageerror", lambda exc: errors.append(f"customer: {exc}"))
    agent.on("pageerror", lambda exc: errors.append(f"agent: {exc}"))
    # A CSP violation shows only as a console error; failed requests (the 401s) are expected.
    agent.on(
        "console",
        lambda msg: (
            errors.append(f"agent console: {msg.text}")
            if msg.type == "error" and "Failed to load resource" not in msg.text
            else None
        ),
    )

    try:
        # The customer opens Web Chat and verifies.
        await customer.goto(f"{live_app}/")
        await sees(customer, "support assistant")
        await say(customer, f"hi, my email is {NOAH_EMAIL}")
        await sees(customer, "Thanks, Noah")

        # The agent signs in (a wrong password first); the queue is live and empty.
        await agent.goto(f"{live_app}/agent")
        await agent.get_by_test_id("sign-in-name").fill(AGENT)
        await agent.get_by_test_id("sign-in-password").fill("not-the-password")
        await agent.get_by_test_id("sign-in-submit").click()
        await expect(agent.get_by_test_id("sign-in-error")).to_contain_text("not right", timeout=WAIT_MS)
        await agent.get_by_test_id("sign-in-password").fill(AGENT_PASSWORD)
        await agent.get_by_test_id("sign-in-submit").click()
        await expect(agent.get_by_test_id("signed-in-as")).to_have_text(AGENT_NAME, timeout=WAIT_MS)
        await expect(agent.locator("#live")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        queue_items = agent.get_by_test_id("queue-item")
        await expect(queue_items).to_have_count(0)

        # The customer asks for a person and hears about the queue.
        before = len(await bot_messages(customer))
        await say(customer, "I want to talk to a person")
        await bot_answers(customer, before, r"queue|agent|support team")

        # The request reaches the agent's queue without a reload; the packet tells who and why.
        await expect(queue_items).to_have_count(1, timeout=WAIT_MS)
        item = queue_items.first
        await expect(item).to_contain_text("Noah Brown")
        await expect(item).to_contain_text("Waiting")
        conversation_id = await item.get_attribute("data-conversation-id")
        assert conversation_id
        await item.click()
        packet = agent.get_by_test_id("packet")
        await expect(agent.get_by_test_id("packet-reason")).to_contain_text("person", timeout=WAIT_MS)
        await expect(agent.get_by_test_id("packet-summary")).to_contain_text("talk to a person")
        await expect(packet).to_contain_text("Noah Brown")
        await expect(packet).to_contain_text(NOAH_EMAIL)
        await expect(packet).to_contain_text(NOAH_ORDER)
        await expect(agent.get_by_test_id("hand-back")).to_be_hidden()
        await expect(agent.get_by_test_id("reply-text")).to_be_hidden()

        # The agent claims it; the customer is greeted by the agent.
        await item.get_by_test_id("claim").click()
        await expect(agent.get_by_test_id("hand-back")).to_be_visible(timeout=WAIT_MS)
        await expect(agent.get_by_test_id("close-chat")).to_be_visible()
        await expect(item).to_contain_text("With you", timeout=WAIT_MS)
        await sees(customer, "from the support team")

        # A canned response goes into the box; then the agent writes their own reply (Enter sends).
        reply = agent.get_by_test_id("reply-text")
        await agent.get_by_test_id("canned").select_option(label="Checking")
        await expect(reply).to_have_value(re.compile("give me a moment"))
        await reply.fill("Hi Noah, I'm looking at your order now.")
        await reply.press("Enter")
        await expect(reply).to_have_value("", timeout=WAIT_MS)
        await sees(customer, "looking at your order now")
        transcript = agent.get_by_test_id("transcript")
        await expect(transcript.locator('[data-role="agent"]')).to_contain_text(
            "I'm looking at your order now", timeout=WAIT_MS
        )

        # The customer's next message reaches the agent, and the bot stays silent.
        bot_count = len(await bot_messages(customer))
        await say(customer, f"thanks, it was order {NOAH_ORDER}")
        await expect(transcript.locator('[data-role="customer"]').last).to_contain_text(
            f"it was order {NOAH_ORDER}", timeout=WAIT_MS
        )
        await expect(item).to_contain_text(f"Customer: thanks, it was order {NOAH_ORDER}", timeout=WAIT_MS)
        await asyncio.sleep(2)
        assert len(await bot_messages(customer)) == bot_count, (
            "the bot answered while the agent held the chat"
        )
        await agent.screenshot(path=str(artifacts_dir / "handoff-agent.png"))

        # The agent hands the chat back: it leaves the queue, and the bot answers again.
        await agent.get_by_test_id("hand-back").click()
        await expect(queue_items).to_have_count(0, timeout=WAIT_MS)
        await expect(agent.get_by_test_id("conversation")).to_be_hidden()
        await sees(customer, "handed you back")
        before = len(await bot_messages(customer))
        await say(customer, "what is your return policy?")
        await bot_answers(customer, before, r"return")

        assert await customer.get_by_text("Send failed").count() == 0
        await customer.screenshot(path=str(artifacts_dir / "handoff-customer.png"), full_page=True)
        assert not errors, errors
    except BaseException:
        # What each side showed when it failed, for the CI artifacts.
        for name, page in (("customer", customer), ("agent", agent)):
            with contextlib.suppress(Exception):
                await page.screenshot(path=str(artifacts_dir / f"handoff-{name}-failure.png"))
        raise
    finally:
        await customer_context.close()
        await agent_context.close()
