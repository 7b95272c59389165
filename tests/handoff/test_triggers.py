"""Every way a conversation reaches a person queues it, with the trigger recorded for the
agent: asked outright, misunderstood twice, two requests the bot cannot handle, a
complaint no tool can settle, an unverifiable customer, and the GPT dialog's tool."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.handoff.records import HandoffStatus, Trigger
from bot.service import HANDOFF, create_app
from bot.settings import Settings
from dialogs import OfflineResources
from tests.handoff.conftest import say, texts
from tests.support.directline import start_conversation
from tests.support.scripted_openai import ScriptedOpenAI, Step

CASES = {
    "asked": (["hello", "can I speak to a human agent?"], Trigger.ASKED),
    "misunderstood": (["blorp zizzle frank", "wub wub quantum"], Trigger.MISUNDERSTOOD),
    "out of scope": (["can you tell me a joke?", "write me a poem about the sea"], Trigger.OUT_OF_SCOPE),
    "lost parcel": (
        [
            "this is ridiculous, my parcel never arrived",
            "noah.brown7922@example.com",
            "yesterday",
            "yes, I've asked the neighbours",
        ],
        Trigger.COMPLAINT,
    ),
    "double charge": (
        ["I'm so angry, you charged me twice for my order", "noah.brown7922@example.com", "yes, for weeks"],
        Trigger.COMPLAINT,
    ),
    "unverifiable": (
        ["where is my order?", "nobody1@example.com", "nobody2@example.com", "nobody3@example.com"],
        Trigger.VERIFICATION,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_each_trigger_queues_the_conversation_with_its_reason(
    case: str, server: TestServer, base_url: str, http: aiohttp.ClientSession
) -> None:
    messages, trigger = CASES[case]
    conversation = await start_conversation(http, base_url)
    said = ""
    for message in messages:
        said = texts(await say(conversation, message))
    record = await server.app[HANDOFF].store.get(conversation.conversation_id)
    assert record is not None, f"no handoff after {messages}; the bot said {said!r}"
    assert record.status == HandoffStatus.QUEUED and record.packet.trigger == trigger
    # The customer is told what happens next, not just that a person is coming.
    assert "support team" in said and ("online" in said or "line" in said or "queue" in said)


async def test_a_lost_parcel_reaches_the_agent_written_up(
    server: TestServer, base_url: str, http: aiohttp.ClientSession
) -> None:
    conversation = await start_conversation(http, base_url)
    for message in CASES["lost parcel"][0]:
        await say(conversation, message)
    record = await server.app[HANDOFF].store.get(conversation.conversation_id)
    assert record is not None
    # What the agent reads first: the complaint, the order and its tracking, what the
    # customer said, and the policy that applies.
    reason = record.packet.reason
    for fact in (
        "parcel marked delivered but not received",
        "#W7678072",
        "517177699738",
        "yesterday",
        "neighbours",
    ):
        assert fact in reason, reason
    assert "Lost and late parcels policy" in reason


async def test_a_damaged_item_is_settled_by_the_bot_not_queued(
    server: TestServer, base_url: str, http: aiohttp.ClientSession
) -> None:
    conversation = await start_conversation(http, base_url)
    await say(conversation, "this is ridiculous, my package arrived damaged")
    await say(conversation, "noah.brown7922@example.com")
    said = texts(await say(conversation, "the kettle"))
    assert "replacement" in said and "refund" in said
    assert await server.app[HANDOFF].store.get(conversation.conversation_id) is None


def asks_for_a_person(body: dict[str, object]) -> Step:
    messages = body["messages"]
    assert isinstance(messages, list)
    if messages[-1]["role"] == "tool":
        return {"text": "I've asked a colleague to join; they'll be with you soon."}
    reason = {"reason": "customer disputes a charge with their bank"}
    return {"tool_calls": [{"name": "request_human_agent", "arguments": reason}]}


@pytest.fixture
async def gpt_base_url(
    scripted: ScriptedOpenAI, make_settings: Callable[..., Settings], offline_resources: OfflineResources
) -> AsyncIterator[tuple[str, TestServer]]:
    scripted.responder = asks_for_a_person
    settings = make_settings(LLM_PROVIDER="openai", OPENAI_BASE_URL=f"{scripted.base_url}/v1")
    server = TestServer(create_app(settings, offline_resources=offline_resources), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), server
    await server.close()


async def test_the_gpt_dialogs_tool_queues_the_conversation(
    gpt_base_url: tuple[str, TestServer], http: aiohttp.ClientSession
) -> None:
    base_url, server = gpt_base_url
    conversation = await start_conversation(http, base_url)
    said = texts(await say(conversation, "my bank says you charged me for something I never ordered"))
    record = await server.app[HANDOFF].store.get(conversation.conversation_id)
    assert record is not None and record.packet.trigger == Trigger.MODEL
    assert "disputes a charge" in record.packet.reason
    assert "support team" in said
