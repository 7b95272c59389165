"""Abuse over Direct Line, through the whole app: one insult gets a calm line, a second
hands the conversation to an online agent with its reason, or, with nobody online, ends
the chat politely; swearing about a parcel gets help and no warning."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bot.handoff.agents import Agents
from bot.handoff.records import HandoffStatus, Trigger
from bot.service import HANDOFF, STORES
from dialogs.safety import CALM, ENDED
from tests.handoff.conftest import AgentClient, say, texts
from tests.support.directline import start_conversation


async def test_a_second_insult_goes_to_the_agent_online(
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

    conversation = await start_conversation(http, base_url)
    assert texts(await say(conversation, "you stupid bot")) == CALM
    assert await server.app[HANDOFF].store.get(conversation.conversation_id) is None
    said = texts(await say(conversation, "fuck off"))
    assert "passing it to a person" in said and "You're next in line" in said
    record = await server.app[HANDOFF].store.get(conversation.conversation_id)
    assert record is not None and record.status == HandoffStatus.QUEUED
    assert record.packet.trigger == Trigger.ABUSE and record.packet.reason == "abusive messages"
    # The agent reads what was said, insults included.
    status, body = await agent.get(f"/conversations/{conversation.conversation_id}")
    assert status == 200 and ("customer", "fuck off") in [(e["role"], e["text"]) for e in body["log"]]


async def test_with_nobody_online_the_chat_ends_politely(
    server: TestServer, base_url: str, http: aiohttp.ClientSession
) -> None:
    conversation = await start_conversation(http, base_url)
    await say(conversation, "you're a complete idiot")
    said = texts(await say(conversation, "screw you"))
    assert "ending our chat" in said and "start a new chat" in said
    assert await server.app[HANDOFF].store.get(conversation.conversation_id) is None
    assert texts(await say(conversation, "where is my order?")) == ENDED


async def test_swearing_about_a_parcel_is_helped_not_warned(
    server: TestServer, base_url: str, http: aiohttp.ClientSession
) -> None:
    conversation = await start_conversation(http, base_url)
    said = texts(await say(conversation, "where the hell is my parcel? this is fucking ridiculous"))
    assert "respectful" not in said and "email" in said
    said = texts(await say(conversation, "noah.brown7922@example.com"))
    assert "respectful" not in said and "Noah" in said
    assert await server.app[HANDOFF].store.get(conversation.conversation_id) is None
