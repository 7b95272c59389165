"""A customer message that was acknowledged but whose turn was lost (the instance that
took it died) is answered once, by whichever instance serves the conversation next."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.channels.directline_log import ConversationRegistry
from bot.service import create_app
from bot.settings import Settings
from bot.support_bot import INTERRUPTED, WELCOME
from dialogs import OfflineResources
from shop.store.sqlite import SqliteStore
from tests.reliability.harness import conversation_state_key
from tests.support.directline import DirectLineConversation, start_conversation

REPLAY_AFTER_S = 1.0


@pytest.fixture
async def app_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(DIRECT_LINE_REPLAY_AFTER_S=REPLAY_AFTER_S)


@pytest.fixture
async def served(app_settings: Settings, offline_resources: OfflineResources) -> AsyncIterator[str]:
    server = TestServer(create_app(app_settings, offline_resources=offline_resources), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def sibling_store(app_settings: Settings) -> AsyncIterator[SqliteStore]:
    """The store as another instance (the one that died) sees it."""
    store = await SqliteStore.open(app_settings.sqlite_path)
    yield store
    await store.aclose()


@pytest.fixture
async def conv(http: aiohttp.ClientSession, served: str) -> DirectLineConversation:
    """A customer's conversation, welcomed by the app under test."""
    started = await start_conversation(http, served)
    await started.poll_until(lambda a: a.get("text") == WELCOME)
    return started


async def acknowledged_by_a_dead_instance(
    store: SqliteStore, conv: DirectLineConversation, text: str, *, age_s: float
) -> str:
    """Appends a customer message to the log as the dead instance did before it died."""
    conversation = await ConversationRegistry(store, idle_limit_s=60).get(conv.conversation_id)
    assert conversation is not None
    posted = datetime.fromtimestamp(time.time() - age_s, UTC).isoformat(timespec="milliseconds")
    stored = await ConversationRegistry(store, idle_limit_s=60).append(
        conversation,
        {
            "type": "message",
            "text": text,
            "timestamp": posted.replace("+00:00", "Z"),
            "channelId": "directline",
            "serviceUrl": conv.base_url,
            "conversation": {"id": conv.conversation_id},
            "from": {"id": conversation.user_id, "role": "user"},
            "recipient": {"id": "aftercare-bot", "name": "Aftercare", "role": "bot"},
        },
    )
    return str(stored["id"])


async def answers_to(conv: DirectLineConversation, activity_id: str) -> list[dict[str, Any]]:
    conv.watermark = None
    return [
        a
        for a in await conv.poll()
        if a["type"] == "message" and a["from"]["role"] == "bot" and a.get("replyToId") == activity_id
    ]


async def test_a_lost_turn_is_answered_once(conv: DirectLineConversation, sibling_store: SqliteStore) -> None:
    lost = await acknowledged_by_a_dead_instance(sibling_store, conv, "where is my order?", age_s=5)

    await conv.poll_until(lambda a: a.get("replyToId") == lost and a["type"] == "message")
    await asyncio.sleep(REPLAY_AFTER_S + 0.5)  # later looks at the conversation change nothing
    replies = await answers_to(conv, lost)
    assert len(replies) == 1 and "email" in replies[0]["text"]


async def test_a_message_just_acknowledged_elsewhere_is_left_to_its_instance(
    conv: DirectLineConversation, sibling_store: SqliteStore
) -> None:
    fresh = await acknowledged_by_a_dead_instance(sibling_store, conv, "where is my order?", age_s=0)
    await asyncio.sleep(REPLAY_AFTER_S / 3)
    assert await answers_to(conv, fresh) == []  # its own instance may still be answering it
    await asyncio.sleep(REPLAY_AFTER_S)
    await conv.poll_until(lambda a: a.get("replyToId") == fresh and a["type"] == "message")


async def test_a_turn_saved_but_never_answered_is_not_run_twice(
    conv: DirectLineConversation, sibling_store: SqliteStore
) -> None:
    """The dead instance had saved the turn's state (so its effects happened) but not sent
    the answer: running it again could repeat an action, so the customer is asked instead."""
    lost = await acknowledged_by_a_dead_instance(sibling_store, conv, "yes", age_s=5)
    key = conversation_state_key(conv.conversation_id)
    stored = await sibling_store.read_state(key)
    state = dict(stored.doc) if stored else {}
    await sibling_store.write_state(key, {**state, "last_activity_id": lost})

    replies = await conv.poll_until(lambda a: a.get("replyToId") == lost and a["type"] == "message")
    assert [a["text"] for a in replies if a.get("replyToId") == lost and a["type"] == "message"] == [
        INTERRUPTED
    ]
