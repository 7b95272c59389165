"""The app killed with SIGKILL in the middle of a burst, and started again on the same
store and port: what customers were told was received is still there, their
conversations carry on, and an action waiting for a yes still runs on that yes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp
import pytest

from bot.store.sqlite import SqliteStore
from tests.reliability.conftest import Apps
from tests.reliability.harness import (
    StreamWatcher,
    client_session,
    is_bot_message,
    transcript,
    turn_finished,
)
from tests.support.directline import DirectLineConversation, start_conversation

CUSTOMERS = 20
# Killed once this many customer messages have been acknowledged (of 200 the burst sends).
KILL_AFTER_ACKS = 80
ORDER = "#W6207110"  # Evelyn Ito's only pending order (the cancel conversation suite's)
# Two start-ups (about 20 s each) plus the burst and the checks.
pytestmark = pytest.mark.timeout(180)


@dataclass
class Customer:
    conversation: DirectLineConversation
    acknowledged: dict[str, str] = field(default_factory=dict)  # server id -> text


async def keep_sending(customer: Customer, acked: asyncio.Queue[str]) -> None:
    """Sends messages back to back until the app stops acknowledging them."""
    for n in range(10):
        text = f"where is my order? (message {n})"
        try:
            server_id, _ = await customer.conversation.send(text)
        except (aiohttp.ClientError, AssertionError):
            return  # the app went away mid-request: this message was never acknowledged
        customer.acknowledged[server_id] = text
        acked.put_nowait(server_id)


async def propose_cancellation(conversation: DirectLineConversation) -> None:
    """Verifies by email and asks to cancel the pending order, up to the summary."""
    async with StreamWatcher(conversation) as watcher:
        for text in (
            "Hi, I want to cancel my order",
            "evelyn.ito2168@example.com",
            "I ordered it by mistake",
        ):
            server_id, _ = await conversation.send(text)
            await watcher.wait_for_turns([server_id], within_s=30)
    summary = [a for a in watcher.activities.values() if is_bot_message(a)][-1]["text"]
    assert f"Cancel order {ORDER}" in summary, summary


async def test_a_killed_app_restarts_with_every_acknowledged_message_and_the_pending_yes(
    apps: Apps, sqlite_env: dict[str, str]
) -> None:
    first = await apps.start(sqlite_env, name="before-kill")
    async with client_session() as session:
        confirming = await start_conversation(session, first.url)
        await propose_cancellation(confirming)

        customers = [Customer(await start_conversation(session, first.url)) for _ in range(CUSTOMERS)]
        acked: asyncio.Queue[str] = asyncio.Queue()
        senders = [asyncio.create_task(keep_sending(c, acked)) for c in customers]
        async with asyncio.timeout(60):
            for _ in range(KILL_AFTER_ACKS):
                await acked.get()
        await first.kill()
        async with asyncio.timeout(30):
            await asyncio.gather(*senders)

        second = await apps.start(sqlite_env, port=first.port, name="after-restart")
        lost: list[str] = []
        unanswered = 0
        for customer in customers:
            activities = {a["id"]: a for a in await transcript(customer.conversation)}
            for server_id, text in customer.acknowledged.items():
                if activities.get(server_id, {}).get("text") != text:
                    lost.append(server_id)
                elif not turn_finished(list(activities.values()), server_id):
                    unanswered += 1
        assert sum(len(c.acknowledged) for c in customers) >= KILL_AFTER_ACKS
        assert lost == [], f"acknowledged messages missing after the restart: {lost}"

        async def carry_on(customer: Customer) -> None:
            async with StreamWatcher(customer.conversation) as watcher:
                server_id, _ = await customer.conversation.send("thanks, that's all")
                await watcher.wait_for_turns([server_id], within_s=60)

        async with asyncio.timeout(90):
            await asyncio.gather(*(carry_on(c) for c in customers))

        async with StreamWatcher(confirming) as watcher:
            server_id, _ = await confirming.send("yes")
            await watcher.wait_for_turns([server_id], within_s=30)
        confirmation = " ".join(
            a["text"]
            for a in watcher.activities.values()
            if is_bot_message(a) and a.get("replyToId") == server_id
        )
        assert "cancelled" in confirmation, confirmation

    store = await SqliteStore.open(sqlite_env["SQLITE_PATH"])
    try:
        order = await store.get_order(ORDER)
    finally:
        await store.aclose()
    assert order is not None and order.doc["status"] == "cancelled"
    assert second.error_lines() == []
    print(f"\n{unanswered} acknowledged messages had no answer when the app came back")
