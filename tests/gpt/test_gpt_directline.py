"""The GPT dialog end to end: Direct Line -> app -> real `openai` SDK -> scripted model -> store.

The scripted model below reads the conversation it is sent and answers as a tool-calling
model would; the app around it is the real one, configured with LLM_PROVIDER=openai.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.service import STORES, create_app
from bot.settings import Settings
from dialogs import OfflineResources
from tests.support.directline import DirectLineConversation, answers, bot_replies, start_conversation
from tests.support.scripted_openai import ScriptedOpenAI, Step

IVAN_EMAIL = "ivan.santos3158@example.com"
DELIVERED = "#W6893533"
GARDEN_HOSE = "5206946487"
NOAH_ORDER = "#W2611340"


def shop_model(body: dict[str, Any]) -> Step:
    """A scripted tool-calling model for the happy path (and one overreach)."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        content = last["content"]
        if content.startswith("NOT DONE YET"):
            return {"text": "Here is what I can do."}
        if content.startswith("Error:"):
            return {"text": "Sorry, I can't do that: " + content.removeprefix("Error: ")}
        if "Returns policy" in content or "returned" in content:
            return {"text": "Delivered orders can be returned (Returns policy)."}
        if content.strip('"') == "ivan_santos_6635":
            return {"text": "Thanks Ivan, you are verified."}
        return {"text": "Your order " + DELIVERED + " was delivered."}
    text = last["content"].lower()
    if "@" in text:
        return {"tool_calls": [{"name": "find_user_id_by_email", "arguments": {"email": IVAN_EMAIL}}]}
    if "noah" in text:
        arguments = {"order_id": NOAH_ORDER, "reason": "no longer needed"}
        return {"tool_calls": [{"name": "cancel_pending_order", "arguments": arguments}]}
    if "where" in text:
        return {"tool_calls": [{"name": "get_order_details", "arguments": {"order_id": DELIVERED}}]}
    if "return the" in text:
        arguments = {"order_id": DELIVERED, "item_ids": [GARDEN_HOSE], "payment_method_id": "paypal_6151711"}
        return {"tool_calls": [{"name": "return_delivered_order_items", "arguments": arguments}]}
    if "policy" in text:
        return {"tool_calls": [{"name": "search_policies", "arguments": {"query": "return policy"}}]}
    return {"text": "How can I help with your order?"}


@pytest.fixture
async def gpt_app(
    scripted: ScriptedOpenAI, make_settings: Callable[..., Settings], offline_resources: OfflineResources
) -> AsyncIterator[TestServer]:
    settings = make_settings(
        LLM_PROVIDER="openai",
        OPENAI_BASE_URL=f"{scripted.base_url}/v1",
        LLM_MAX_RETRIES=0,
        LLM_REQUEST_TIMEOUT_S=2,
    )
    server = TestServer(create_app(settings, offline_resources=offline_resources), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def turn(conv: DirectLineConversation, text: str) -> dict[str, Any]:
    """Sends one message; returns the bot's answer (several messages joined into one)."""
    server_id, _ = await conv.send(text)
    activities = await conv.poll_until(answers(server_id), within_s=20)
    replies = [a for a in bot_replies(activities) if a.get("replyToId") == server_id]
    return {
        "text": " ".join(r["text"] for r in replies),
        "attachments": [x for r in replies for x in r.get("attachments", [])],
        "channelData": replies[-1]["channelData"],
    }


async def order_status(app: TestServer, order_id: str) -> str:
    order = await app.app[STORES].orders.get_order(order_id)
    assert order is not None
    return str(order.doc["status"])


async def test_verify_status_confirmed_return_and_policy_through_direct_line(
    scripted: ScriptedOpenAI, gpt_app: TestServer, http: aiohttp.ClientSession
) -> None:
    scripted.responder = shop_model
    conv = await start_conversation(http, str(gpt_app.make_url("")).rstrip("/"))

    assert "verified" in (await turn(conv, f"hi, I'm {IVAN_EMAIL}"))["text"]
    status = await turn(conv, f"where is {DELIVERED}?")
    assert "delivered" in status["text"]
    assert status["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"

    proposal = await turn(conv, "I want to return the garden hose")
    assert "$95.08" in proposal["text"] and "yes" in proposal["text"].lower()
    assert await order_status(gpt_app, DELIVERED) == "delivered"  # nothing before the yes
    done = await turn(conv, "yes")
    assert "requested" in done["text"]
    assert await order_status(gpt_app, DELIVERED) == "return requested"

    policy = await turn(conv, "what is the return policy?")
    assert "Returns policy" in policy["text"]
    engines = [r["channelData"]["aftercare"]["engine"] for r in [status, proposal, done, policy]]
    # The yes needs no model: the shared engine runs the action and says what happened.
    assert engines == ["gpt", "gpt", "offline", "gpt"]


async def test_the_model_cannot_act_on_another_customers_order(
    scripted: ScriptedOpenAI, gpt_app: TestServer, http: aiohttp.ClientSession
) -> None:
    scripted.responder = shop_model
    conv = await start_conversation(http, str(gpt_app.make_url("")).rstrip("/"))
    await turn(conv, f"hi, I'm {IVAN_EMAIL}")
    before = await order_status(gpt_app, NOAH_ORDER)
    refused = await turn(conv, "cancel noah's order please")
    assert "can't" in refused["text"]
    await turn(conv, "yes")
    assert await order_status(gpt_app, NOAH_ORDER) == before


async def test_a_failing_endpoint_still_completes_the_path_with_the_offline_engine(
    scripted: ScriptedOpenAI, gpt_app: TestServer, http: aiohttp.ClientSession
) -> None:
    scripted.responder = lambda body: {"status": 503, "message": "model overloaded"}
    conv = await start_conversation(http, str(gpt_app.make_url("")).rstrip("/"))
    replies = [
        await turn(conv, f"my email is {IVAN_EMAIL}"),
        await turn(conv, f"where is my order {DELIVERED}?"),
        await turn(conv, "I want to return the garden hose"),
        await turn(conv, "yes"),
        await turn(conv, "what is your return policy?"),
    ]
    assert "Ivan" in replies[0]["text"]
    assert "delivered" in replies[1]["text"]
    assert "Shall I go ahead?" in replies[2]["text"]
    assert "requested" in replies[3]["text"]
    assert "Returns policy" in replies[4]["text"]
    assert await order_status(gpt_app, DELIVERED) == "return requested"
    # Every reply says the offline engine answered it, and so does the stored transcript.
    assert {r["channelData"]["aftercare"]["engine"] for r in replies} == {"offline"}
    state = await gpt_app.app[STORES].state.read_state(f"directline/conversations/{conv.conversation_id}")
    assert state is not None
    bot_turns = [e for e in state.doc["dialog"]["transcript"] if e["role"] == "bot"]
    assert bot_turns and {e["engine"] for e in bot_turns} == {"offline"}
    assert scripted.requests  # the model was tried before the fallback
