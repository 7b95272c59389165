"""SupportBot keeps per-conversation state in the configured store, once per turn."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestServer

from bot.service import STORES
from tests.support.directline import answers, bot_replies, start_conversation


async def test_turns_are_counted_in_conversation_state(
    http: aiohttp.ClientSession, base_url: str, server: TestServer
) -> None:
    conv = await start_conversation(http, base_url)
    for n in range(3):
        server_id, _ = await conv.send(f"turn {n}")
        await conv.poll_until(answers(server_id))
    stored = await server.app[STORES].state.read_state(f"directline/conversations/{conv.conversation_id}")
    assert stored is not None
    assert stored.doc["dialog"]["turn"] == 3


async def test_ready_reports_the_store(http: aiohttp.ClientSession, base_url: str) -> None:
    async with http.get(f"{base_url}/readyz") as resp:
        body = await resp.json()
    assert resp.status == 200, body
    assert body["checks"] == {"webchat_bundle": True, "store": True}


async def test_every_message_is_answered_once(http: aiohttp.ClientSession, base_url: str) -> None:
    conv = await start_conversation(http, base_url)
    sent = [(await conv.send(f"burst {n}"))[0] for n in range(5)]
    activities = await conv.poll_until(answers(sent[-1]))
    replies = bot_replies(activities)
    answered = list(dict.fromkeys(r["replyToId"] for r in replies if r.get("replyToId")))
    assert answered == sent


async def test_each_reply_carries_the_customers_sentiment(
    http: aiohttp.ClientSession, base_url: str, server: TestServer
) -> None:
    conv = await start_conversation(http, base_url)
    scores = []
    for text in (
        "where is my order?",
        "lovely, thank you so much!",
        "this is useless, my parcel is lost again",
    ):
        server_id, _ = await conv.send(text)
        answer = next(a for a in await conv.poll_until(answers(server_id)) if a.get("replyToId") == server_id)
        scores.append(answer["channelData"]["aftercare"]["sentiment"])
    assert scores[0] == 0.0 and scores[1] > 0.5 and scores[2] < -0.3
    stored = await server.app[STORES].state.read_state(f"directline/conversations/{conv.conversation_id}")
    assert stored is not None and stored.doc["dialog"]["sentiment"] == scores
