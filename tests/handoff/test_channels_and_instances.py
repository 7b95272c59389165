"""The handoff beyond one Web Chat on one instance: a restart while an agent holds the
conversation, two instances on one Cosmos DB server sharing one queue, Teams (proactive
messages through the Bot Connector), and an external contact centre's handoff events."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.handoff.agents import Agents
from bot.handoff.records import HandoffStatus
from bot.service import HANDOFF, STORES, create_app
from bot.settings import Settings
from dialogs import OfflineResources
from tests.handoff.conftest import PASSWORD, AgentClient, say, texts, waiting_for_a_person
from tests.support.cosmos import TEST_KEY, cosmos_server
from tests.support.directline import DirectLineConversation, bot_replies


@pytest.fixture(scope="module")
def cosmos_endpoint() -> Iterator[str]:
    with cosmos_server() as endpoint:
        yield endpoint


async def start(settings: Settings, resources: OfflineResources) -> TestServer:
    server = TestServer(create_app(settings, offline_resources=resources), host="127.0.0.1")
    await server.start_server()
    return server


def url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


async def next_event(response: aiohttp.ClientResponse, kind: str, within_s: float) -> dict[str, Any]:
    """The data of the next server-sent event of `kind`."""
    async with asyncio.timeout(within_s):
        event = ""
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == kind:
                data: dict[str, Any] = json.loads(line.removeprefix("data: "))
                return data
    raise AssertionError(f"the stream ended before a {kind} event")


async def test_a_restart_while_an_agent_holds_the_chat_loses_nothing(
    make_settings: Callable[..., Settings],
    offline_resources: OfflineResources,
    http: aiohttp.ClientSession,
    agent_client: Callable[[str], AgentClient],
) -> None:
    settings = make_settings()
    first = await start(settings, offline_resources)
    await Agents(first.app[STORES].state).add("alex", PASSWORD)
    conversation, _ = await waiting_for_a_person(http, url(first))
    agent = agent_client(url(first))
    await agent.sign_in("alex")
    assert (await agent.post(f"/conversations/{conversation.conversation_id}/claim"))[0] == 200
    await first.close()

    second = await start(settings, offline_resources)
    try:
        agent.base_url = conversation.base_url = url(second)  # same session, same token
        status, _ = await agent.post(
            f"/conversations/{conversation.conversation_id}/messages",
            {"text": "Still here after the restart."},
        )
        assert status == 200
        await conversation.poll_until(lambda a: a.get("text") == "Still here after the restart.")
        answered = len(bot_replies(await conversation.poll()))
        await conversation.send("great, thank you")
        await asyncio.sleep(1.0)
        assert len(bot_replies(await conversation.poll())) == answered  # the bot stays silent
        status, record = await agent.get(f"/conversations/{conversation.conversation_id}")
        assert record["status"] == "with_agent" and record["log"][-1]["text"] == "great, thank you"
    finally:
        await second.close()


async def test_two_instances_on_one_cosmos_db_share_one_queue(
    cosmos_endpoint: str,
    make_settings: Callable[..., Settings],
    offline_resources: OfflineResources,
    http: aiohttp.ClientSession,
    agent_client: Callable[[str], AgentClient],
) -> None:
    settings = make_settings(
        STORE="cosmos",
        COSMOS_ENDPOINT=cosmos_endpoint,
        COSMOS_KEY=TEST_KEY,
        COSMOS_DATABASE=f"handoff-{uuid.uuid4().hex[:8]}",
        SEED_ON_START=False,
    )
    customer_side = await start(settings, offline_resources)
    agent_side = await start(settings, offline_resources)
    try:
        await Agents(agent_side.app[STORES].state).add("alex", PASSWORD)
        agent = agent_client(url(agent_side))
        assert await agent.sign_in("alex") == 200
        async with agent.session.get(f"{url(agent_side)}/agent/api/events") as events:
            assert (await next_event(events, "queue", 10))["queue"] == []
            conversation, said = await waiting_for_a_person(http, url(customer_side), verify=False)
            assert "next in line" in said  # the agent on the other instance counts as online
            queued = await next_event(events, "queue", 10)  # noticed by polling the store
            assert [e["conversation_id"] for e in queued["queue"]] == [conversation.conversation_id]

            assert (await agent.post(f"/conversations/{conversation.conversation_id}/claim"))[0] == 200
            await agent.post(
                f"/conversations/{conversation.conversation_id}/messages", {"text": "Hello from B."}
            )
            await conversation.poll_until(lambda a: a.get("text") == "Hello from B.", within_s=10)

            await conversation.send("hi B, it's about a refund")
            async with asyncio.timeout(10):  # B's console hears of it, and re-reads the record
                while True:
                    changed = await next_event(events, "message", 10)
                    assert changed["conversation_id"] == conversation.conversation_id
                    _, record = await agent.get(f"/conversations/{conversation.conversation_id}")
                    if record["log"][-1]["text"] == "hi B, it's about a refund":
                        break
    finally:
        await customer_side.close()
        await agent_side.close()


def teams_message(text: str, service_url: str, message_id: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": message_id,
        "text": text,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": "29:teams-user", "name": "Noah", "role": "user"},
        "recipient": {"id": "28:bot", "role": "bot"},
        "conversation": {"id": "a:teams-conversation", "conversationType": "personal"},
    }


async def post(http: aiohttp.ClientSession, base_url: str, activity: dict[str, Any]) -> None:
    async with http.post(f"{base_url}/api/messages", json=activity) as resp:
        assert resp.status in (200, 201), await resp.text()


async def test_agents_reach_a_teams_chat_through_proactive_messages(
    server: TestServer,
    base_url: str,
    http: aiohttp.ClientSession,
    channel_inbox: tuple[str, list[dict[str, Any]]],
    agent_client: Callable[[str], AgentClient],
) -> None:
    service_url, received = channel_inbox
    await Agents(server.app[STORES].state).add("alex", PASSWORD)
    agent = agent_client(base_url)
    await agent.sign_in("alex")
    await post(http, base_url, teams_message("I need to talk to a person", service_url, "t-1"))
    assert any("support team" in str(a.get("text")) for a in received)
    assert (await agent.post("/conversations/a:teams-conversation/claim"))[0] == 200
    assert any("from the support team" in str(a.get("text")) for a in received)
    await agent.post("/conversations/a:teams-conversation/messages", {"text": "Hi Noah, Alex here."})
    assert any(a.get("text") == "Hi Noah, Alex here." for a in received)
    before = len(received)
    await post(http, base_url, teams_message("thanks Alex", service_url, "t-2"))
    assert len(received) == before  # the bot is silent while Alex has the chat
    record = await server.app[HANDOFF].store.get("a:teams-conversation")
    assert record is not None and record.log[-1].text == "thanks Alex"


@pytest.fixture
async def external_server(
    make_settings: Callable[..., Settings], offline_resources: OfflineResources
) -> AsyncIterator[TestServer]:
    server = await start(make_settings(HANDOFF_MODE="external"), offline_resources)
    yield server
    await server.close()


async def test_an_external_contact_centre_gets_handoff_initiate_but_teams_never_does(
    external_server: TestServer,
    http: aiohttp.ClientSession,
    channel_inbox: tuple[str, list[dict[str, Any]]],
) -> None:
    base_url = url(external_server)
    conversation, said = await waiting_for_a_person(http, base_url)
    assert "passed you to our support team" in said
    events = [a for a in await _all(conversation) if a.get("type") == "event"]
    initiate = next(a for a in events if a.get("name") == "handoff.initiate")
    assert initiate["value"]["reason"] == "customer asked for a person"
    transcript = initiate["attachments"][0]
    assert transcript["contentType"] == "application/vnd.microsoft.activity.transcript"
    assert any("real person" in a["text"] for a in transcript["content"]["activities"])

    # The contact centre accepts: the bot goes quiet; it completes: the bot is back.
    await conversation.send("", type="event", name="handoff.status", value={"state": "accepted"})
    await asyncio.sleep(0.5)
    record = await external_server.app[HANDOFF].store.get(conversation.conversation_id)
    assert record is not None and record.status == HandoffStatus.WITH_AGENT
    await conversation.send("", type="event", name="handoff.status", value={"state": "completed"})
    await asyncio.sleep(0.5)
    assert "return" in texts(await say(conversation, "what is your return policy?")).lower()

    service_url, received = channel_inbox
    await post(http, base_url, teams_message("I want a human agent", service_url, "t-9"))
    assert received and not any(a.get("name") == "handoff.initiate" for a in received)
    assert any("support team" in str(a.get("text")) for a in received)


async def _all(conversation: DirectLineConversation) -> list[dict[str, Any]]:
    conversation.watermark = None
    return await conversation.poll()
