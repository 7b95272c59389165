"""Streaming a model's answer: Teams streaming updates, sentence by sentence on a call.

The app is the real one behind `/api/messages` (anonymous local mode); the channel is a
recorder on loopback that plays the Bot Connector service, as Teams' or a telephony
channel's would be.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.service import create_app
from bot.settings import Settings
from dialogs import OfflineResources
from tests.support.scripted_openai import ScriptedOpenAI

ANSWER = (
    "Our returns window is thirty days from delivery. Items must be unused. "
    "Refunds go back to the original payment method."
)


@pytest.fixture
async def bot_url(
    scripted: ScriptedOpenAI, make_settings: Callable[..., Settings], offline_resources: OfflineResources
) -> AsyncIterator[str]:
    settings = make_settings(
        LLM_PROVIDER="openai", OPENAI_BASE_URL=f"{scripted.base_url}/v1", STREAM_UPDATE_INTERVAL_S=0.05
    )
    server = TestServer(create_app(settings, offline_resources=offline_resources), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def post_message(http: aiohttp.ClientSession, bot_url: str, channel_id: str, service_url: str) -> None:
    activity = {
        "type": "message",
        "id": "m-1",
        "text": "what is your return policy?",
        "channelId": channel_id,
        "serviceUrl": service_url,
        "from": {"id": "user-1", "role": "user"},
        "recipient": {"id": "bot", "role": "bot"},
        "conversation": {"id": "conv-1", "conversationType": "personal"},
    }
    async with http.post(f"{bot_url}/api/messages", json=activity) as resp:
        assert resp.status == 201


def stream_info(activity: dict[str, Any]) -> dict[str, Any] | None:
    return next((e for e in activity.get("entities") or [] if e.get("type") == "streaminfo"), None)


async def test_teams_gets_informative_then_growing_updates_then_the_final_message(
    scripted: ScriptedOpenAI,
    channel_inbox: tuple[str, list[dict[str, Any]]],
    bot_url: str,
    http: aiohttp.ClientSession,
) -> None:
    service_url, received = channel_inbox
    scripted.script({"text": ANSWER, "chunk_delay_s": 0.02})
    await post_message(http, bot_url, "msteams", service_url)

    infos = [(a["type"], stream_info(a)) for a in received]
    assert all(info is not None for _, info in infos), received
    kinds = [info["streamType"] for _, info in infos if info]
    assert kinds[0] == "informative" and kinds[-1] == "final"
    assert kinds.count("streaming") >= 2, kinds
    stream_id = "activity-1"  # the id the channel gave the informative update
    later = [info for _, info in infos[1:] if info]
    assert all(info["streamId"] == stream_id for info in later)
    sequences = [info["streamSequence"] for info in later if info["streamType"] == "streaming"]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences) and sequences[0] == 2
    # Each update carries the whole text so far; the final message carries all of it.
    texts = [a["text"] for a in received if (stream_info(a) or {}).get("streamType") == "streaming"]
    assert all(ANSWER.startswith(t) for t in texts)
    assert all(len(a) < len(b) for a, b in itertools.pairwise(texts))
    final = received[-1]
    assert final["type"] == "message" and final["text"] == ANSWER


async def test_a_call_hears_the_answer_sentence_by_sentence(
    scripted: ScriptedOpenAI,
    channel_inbox: tuple[str, list[dict[str, Any]]],
    bot_url: str,
    http: aiohttp.ClientSession,
) -> None:
    service_url, received = channel_inbox
    scripted.script({"text": ANSWER, "chunk_delay_s": 0.01})
    await post_message(http, bot_url, "telephony", service_url)

    messages = [a for a in received if a["type"] == "message"]
    assert [m["speak"] for m in messages] == [
        "Our returns window is thirty days from delivery.",
        "Items must be unused.",
        "Refunds go back to the original payment method.",
    ]
    assert not any(a["type"] == "typing" for a in received)  # nothing visual on a call


async def test_web_chat_gets_a_typing_indicator_then_the_message(
    scripted: ScriptedOpenAI,
    channel_inbox: tuple[str, list[dict[str, Any]]],
    bot_url: str,
    http: aiohttp.ClientSession,
) -> None:
    service_url, received = channel_inbox
    scripted.script({"text": ANSWER})
    await post_message(http, bot_url, "webchat", service_url)
    assert [a["type"] for a in received] == ["typing", "message"]
    assert received[-1]["text"] == ANSWER and stream_info(received[-1]) is None
