"""A customer in Web Chat (the local Direct Line) and an agent in the console: queueing,
the packet, claiming, the relay both ways with the bot silent, hand-back and close with
a rating. The real app in-process; the agent speaks the console's JSON API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bot.handoff.agents import Agents
from bot.handoff.store import HandoffStore
from bot.service import HANDOFF, STORES
from tests.handoff.conftest import NOAH_ORDER, AgentClient, say, texts, waiting_for_a_person
from tests.support.directline import bot_replies


async def test_no_agent_online_tells_the_hours_and_the_bot_keeps_helping(
    server: TestServer, base_url: str, http: aiohttp.ClientSession
) -> None:
    conversation, said = await waiting_for_a_person(http, base_url)
    assert "No one from our support team is online right now" in said
    assert "Monday to Friday" in said and "leave any details here" in said
    record = await server.app[HANDOFF].store.get(conversation.conversation_id)
    assert record is not None and record.status == "queued"
    # Still queued, the bot answers questions, and the agent will see them.
    replies = await say(conversation, "what is your return policy?")
    assert "return" in texts(replies).lower()
    record = await server.app[HANDOFF].store.get(conversation.conversation_id)
    assert record is not None
    assert [e.role for e in record.log[-2:]] == ["customer", "bot"]


async def test_an_agent_takes_over_relays_both_ways_and_hands_back(
    server: TestServer,
    base_url: str,
    http: aiohttp.ClientSession,
    add_agent: Callable[[TestServer, str], Any],
    agent_client: Callable[[str], AgentClient],
) -> None:
    await add_agent(server, "alex")
    agent = agent_client(base_url)
    assert await agent.sign_in("alex") == 200
    await Agents(server.app[STORES].state).seen("alex")  # the console is open

    conversation, said = await waiting_for_a_person(http, base_url)
    assert "You're next in line" in said

    queue = await agent.queue()
    entry = next(e for e in queue if e["conversation_id"] == conversation.conversation_id)
    assert entry["status"] == "queued" and entry["customer_name"] == "Noah Brown"
    status, record = await agent.get(f"/conversations/{conversation.conversation_id}")
    assert status == 200
    packet = record["packet"]
    assert (
        packet["reason"] == "customer asked for a person"
        and packet["trigger"] == "customer asked for a person"
    )
    assert packet["customer_email"] == "noah.brown7922@example.com"
    assert NOAH_ORDER in [order["order_id"] for order in packet["orders"]]
    assert "talk to a real person" in packet["summary"]
    # The agent's transcript starts with the conversation so far, the request included.
    lines = [(e["role"], e["text"]) for e in record["log"]]
    assert lines[0] == ("customer", "noah.brown7922@example.com")
    assert ("customer", "I want to talk to a real person please") in lines
    assert ("system", "Handed off: customer asked for a person") in lines
    assert lines[-1][0] == "bot" and "next in line" in lines[-1][1]

    status, _ = await agent.post(f"/conversations/{conversation.conversation_id}/claim")
    assert status == 200
    joined = await conversation.poll_until(lambda a: "from the support team" in str(a.get("text")))
    assert any(a.get("from", {}).get("name") == "Alex (support team)" for a in bot_replies(joined))

    status, _ = await agent.post(
        f"/conversations/{conversation.conversation_id}/messages", {"text": "Hi Noah, I'm on it."}
    )
    assert status == 200
    await conversation.poll_until(lambda a: a.get("text") == "Hi Noah, I'm on it.")

    # The customer writes; the agent sees it and the bot says nothing.
    before = len(bot_replies(await conversation.poll()))
    await conversation.send("it was order #W7678072, thanks")
    await asyncio.sleep(1.0)
    assert len(bot_replies(await conversation.poll())) == before == 0
    status, record = await agent.get(f"/conversations/{conversation.conversation_id}")
    assert record["log"][-1]["role"] == "customer" and "#W7678072" in record["log"][-1]["text"]

    status, _ = await agent.post(f"/conversations/{conversation.conversation_id}/hand-back")
    assert status == 200
    await conversation.poll_until(lambda a: "handed you back" in str(a.get("text")))
    assert conversation.conversation_id not in [e["conversation_id"] for e in await agent.queue()]
    replies = await say(conversation, "what is your return policy?")
    assert "return" in texts(replies).lower()


async def test_a_closed_chat_asks_for_a_rating_and_stores_it(
    server: TestServer,
    base_url: str,
    http: aiohttp.ClientSession,
    add_agent: Callable[[TestServer, str], Any],
    agent_client: Callable[[str], AgentClient],
) -> None:
    await add_agent(server, "alex")
    agent = agent_client(base_url)
    await agent.sign_in("alex")
    conversation, _ = await waiting_for_a_person(http, base_url)
    await agent.post(f"/conversations/{conversation.conversation_id}/claim")
    status, _ = await agent.post(f"/conversations/{conversation.conversation_id}/close")
    assert status == 200
    received = await conversation.poll_until(lambda a: "How would you rate" in str(a.get("text")))
    question = next(a for a in received if "How would you rate" in str(a.get("text")))
    assert [action["value"] for action in question["suggestedActions"]["actions"]] == [
        "1",
        "2",
        "3",
        "4",
        "5",
    ]
    replies = await say(conversation, "5")
    assert "Thank you for rating" in texts(replies)
    record = await HandoffStore(server.app[STORES].state).get(conversation.conversation_id)
    assert record is not None and record.status == "closed" and record.rating == 5
    # Then the bot is back for whatever comes next.
    assert "return" in texts(await say(conversation, "what is your return policy?")).lower()
    # A second request in the same chat queues it again and keeps the first in brief.
    await say(conversation, "actually, can I talk to a person again?")
    again = await HandoffStore(server.app[STORES].state).get(conversation.conversation_id)
    assert again is not None and again.status == "queued"
    assert again.earlier[0]["rating"] == 5 and again.earlier[0]["agent"] == "alex"
