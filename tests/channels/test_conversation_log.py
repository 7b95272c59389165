"""The Direct Line log in the state store: restarts and sibling instances see the same conversation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.channels.directline_log import ConversationRegistry
from shop.errors import ConcurrencyConflict
from shop.store.base import JsonDict
from shop.store.sqlite import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "log.sqlite3")
    yield opened
    await opened.aclose()


async def test_a_restarted_registry_finds_the_conversation_and_every_activity(store: SqliteStore) -> None:
    first = ConversationRegistry(store, idle_limit_s=60)
    conversation, created = await first.open("conv-1", "dl_user")
    assert created
    for n in range(5):
        await first.append(conversation, {"type": "message", "text": f"m{n}"})

    restarted = ConversationRegistry(store, idle_limit_s=60)  # a new process on the same store
    again = await restarted.get("conv-1")
    assert again is not None and again.user_id == "dl_user"
    assert [a["text"] for a in again.activities] == [f"m{n}" for n in range(5)]
    assert [a["id"] for a in again.activities] == [f"conv-1|{n:07d}" for n in range(5)]
    assert (await restarted.open("conv-1", "someone-else"))[1] is False


async def test_two_instances_appending_at_once_get_distinct_ordered_watermarks(store: SqliteStore) -> None:
    a = ConversationRegistry(store, idle_limit_s=60)
    b = ConversationRegistry(store, idle_limit_s=60)
    conv_a, _ = await a.open("conv-2", "dl_user")
    conv_b = await b.get("conv-2")
    assert conv_b is not None

    async def burst(registry: ConversationRegistry, conversation: object, name: str) -> None:
        for n in range(10):
            await registry.append(conversation, {"type": "message", "text": f"{name}{n}"})  # type: ignore[arg-type]

    await asyncio.gather(burst(a, conv_a, "a"), burst(b, conv_b, "b"))
    await a.refresh(conv_a)
    await b.refresh(conv_b)
    ids_a = [x["id"] for x in conv_a.activities]
    assert ids_a == [x["id"] for x in conv_b.activities]
    assert len(ids_a) == len(set(ids_a)) == 20
    texts = [x["text"] for x in conv_a.activities]
    assert sorted(texts) == sorted([f"a{n}" for n in range(10)] + [f"b{n}" for n in range(10)])
    # Each instance's own messages keep their order.
    assert [t for t in texts if t.startswith("a")] == [f"a{n}" for n in range(10)]


async def test_refresh_pushes_what_a_sibling_appended_to_subscribers(store: SqliteStore) -> None:
    a = ConversationRegistry(store, idle_limit_s=60)
    b = ConversationRegistry(store, idle_limit_s=60)
    conv_a, _ = await a.open("conv-3", "dl_user")
    subscription = conv_a.subscribe()
    conv_b = await b.get("conv-3")
    assert conv_b is not None
    await b.append(conv_b, {"type": "message", "text": "from the other instance"})
    assert subscription.queue.empty()
    fresh = await a.refresh(conv_a)
    assert [activity["text"] for _, activity in fresh] == ["from the other instance"]
    index, pushed = subscription.queue.get_nowait()  # type: ignore[misc]
    assert index == 0 and pushed["text"] == "from the other instance"


async def test_unknown_conversation_is_none(store: SqliteStore) -> None:
    assert await ConversationRegistry(store, idle_limit_s=60).get("nope") is None


async def test_a_conversation_started_with_no_activity_yet_appends_from_the_start(
    store: SqliteStore,
) -> None:
    await ConversationRegistry(store, idle_limit_s=60).open("conv-4", "dl_user")
    registry = ConversationRegistry(store, idle_limit_s=60)  # e.g. restarted before the welcome
    conversation = await registry.get("conv-4")
    assert conversation is not None and conversation.activities == []
    stored = await registry.append(conversation, {"type": "message", "text": "hello"})
    assert stored["id"] == "conv-4|0000000"


class PausedActivityWrite:
    """A store whose first activity insert waits until released: an instance that decided
    on its slot while a sibling took the same one."""

    def __init__(self, inner: SqliteStore) -> None:
        self._inner = inner
        self.paused = asyncio.Event()
        self.release = asyncio.Event()
        self.conflicted = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def insert_state(self, key: str, doc: JsonDict) -> str:
        if key.count("/") == 2 and not self.paused.is_set():  # dl/{conversation}/{index}
            self.paused.set()
            await self.release.wait()
        try:
            return await self._inner.insert_state(key, doc)
        except ConcurrencyConflict:
            self.conflicted = True
            raise


async def test_an_append_never_overwrites_the_slot_a_sibling_took(store: SqliteStore) -> None:
    slow = PausedActivityWrite(store)
    a = ConversationRegistry(slow, idle_limit_s=60)
    b = ConversationRegistry(store, idle_limit_s=60)
    conv_a, _ = await a.open("conv-5", "dl_user")
    subscription = conv_a.subscribe()
    conv_b = await b.get("conv-5")
    assert conv_b is not None

    first = asyncio.create_task(a.append(conv_a, {"type": "message", "text": "to instance a"}))
    await asyncio.wait_for(slow.paused.wait(), 5)  # a is about to create slot 0
    stored_b = await b.append(conv_b, {"type": "message", "text": "to instance b"})  # b takes it
    slow.release.set()
    stored_a = await asyncio.wait_for(first, 10)

    assert slow.conflicted
    assert (stored_b["id"], stored_a["id"]) == ("conv-5|0000000", "conv-5|0000001")
    again = await ConversationRegistry(store, idle_limit_s=60).get("conv-5")
    assert again is not None
    assert [(x["id"], x["text"]) for x in again.activities] == [
        ("conv-5|0000000", "to instance b"),
        ("conv-5|0000001", "to instance a"),
    ]
    # a's customers saw b's activity too, before a's own, each once.
    pushed = [subscription.queue.get_nowait() for _ in range(subscription.queue.qsize())]
    assert [(index, item["text"]) for index, item in pushed] == [(0, "to instance b"), (1, "to instance a")]  # type: ignore[index]


async def test_two_registries_opening_one_conversation_at_once_share_it(store: SqliteStore) -> None:
    a = ConversationRegistry(store, idle_limit_s=60)
    b = ConversationRegistry(store, idle_limit_s=60)
    (conv_a, created_a), (conv_b, created_b) = await asyncio.gather(
        a.open("conv-6", "dl_user"), b.open("conv-6", "dl_user")
    )
    assert sorted([created_a, created_b]) == [False, True]
    assert conv_a.user_id == conv_b.user_id == "dl_user"
