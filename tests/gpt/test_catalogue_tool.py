"""The GPT dialog answers catalogue questions with its `search_products` tool, through
the whole app (Direct Line -> real `openai` SDK -> scripted model)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.service import create_app
from bot.settings import Settings
from dialogs import OfflineResources
from tests.support.directline import answers, bot_replies, start_conversation
from tests.support.scripted_openai import ScriptedOpenAI, Step


def shopper_model(body: dict[str, Any]) -> Step:
    last = body["messages"][-1]
    if last["role"] == "tool":
        hits = json.loads(last["content"])
        names = ", ".join(f"{hit['name']} (from ${hit['price_from']})" for hit in hits)
        return {"text": f"We have: {names}."}
    return {"tool_calls": [{"name": "search_products", "arguments": {"query": last["content"]}}]}


@pytest.fixture
async def base_url(
    scripted: ScriptedOpenAI, make_settings: Callable[..., Settings], offline_resources: OfflineResources
) -> AsyncIterator[str]:
    scripted.responder = shopper_model
    settings = make_settings(LLM_PROVIDER="openai", OPENAI_BASE_URL=f"{scripted.base_url}/v1")
    server = TestServer(create_app(settings, offline_resources=offline_resources), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_a_catalogue_question_is_answered_from_the_index(
    base_url: str, scripted: ScriptedOpenAI, http: aiohttp.ClientSession
) -> None:
    conversation = await start_conversation(http, base_url)
    server_id, _ = await conversation.send("do you have good boots for hiking?")
    replies = bot_replies(await conversation.poll_until(answers(server_id)))
    text = next(r["text"] for r in replies if r.get("replyToId") == server_id)
    assert "Hiking Boots (from $" in text
    tools = [t["function"]["name"] for t in scripted.requests[0]["tools"]]
    assert "search_products" in tools
