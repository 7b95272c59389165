"""The Direct Line log in the state store: restarts and sibling instances see the same conversation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.channels.conversations import ConversationRegistry
from bot.errors import ConcurrencyConflict
from bot.store.base import JsonDict
from bot.store.sqlite import SqliteStore


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


async def test_an_append_that_died_between_its_writes_leaves_a_placeholder_not_a_stall(
    store: SqliteStore,
) -> None:
    import time

    # The head counts one activity whose document was never written (the process died).
    await store.write_state("dl/conv-4", {"user_id": "dl_user", "count": 1, "moved_at": time.time()})
    recent = await ConversationRegistry(store, idle_limit_s=60).get("conv-4")
    assert recent is not None and recent.activities == []  # maybe a sibling mid-append: wait
    await store.write_state("dl/conv-4", {"user_id": "dl_user", "count": 1, "moved_at": time.time() - 60})
    registry = ConversationRegistry(store, idle_limit_s=60)
    conversation = await registry.get("conv-4")
    assert conversation is not None
    assert [a["type"] for a in conversation.activities] == ["placeholder"]
    stored = await registry.append(conversation, {"type": "message", "text": "the log moves on"})
    assert stored["id"] == "conv-4|0000001"


class PausedActivityWrite:
    """A store whose first activity write waits until released: an instance caught
    between moving the head and writing the activity it counted."""

    def __init__(self, inner: SqliteStore) -> None:
        self._inner = inner
        self.paused = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def write_state(self, key: str, doc: JsonDict, *, etag: str | None = None) -> str:
        if key.count("/") == 2 and not self.paused.is_set():  # dl/{conversation}/{index}
            self.paused.set()
            await self.release.wait()
        return await self._inner.write_state(key, doc, etag=etag)


class NotesConflicts:
    def __init__(self, inner: SqliteStore) -> None:
        self._inner = inner
        self.conflicted = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def write_state(self, key: str, doc: JsonDict, *, etag: str | None = None) -> str:
        try:
            return await self._inner.write_state(key, doc, etag=etag)
        except ConcurrencyConflict:
            self.conflicted.set()
            raise


async def test_an_append_never_takes_the_slot_a_sibling_is_still_writing(store: SqliteStore) -> None:
    slow, watched = PausedActivityWrite(store), NotesConflicts(store)
    a = ConversationRegistry(slow, idle_limit_s=60)
    b = ConversationRegistry(watched, idle_limit_s=60)
    conv_a, _ = await a.open("conv-5", "dl_user")
    conv_b = await b.get("conv-5")
    assert conv_b is not None

    first = asyncio.create_task(a.append(conv_a, {"type": "message", "text": "to instance a"}))
    await asyncio.wait_for(slow.paused.wait(), 5)  # a has counted slot 0, not written it
    second = asyncio.create_task(b.append(conv_b, {"type": "message", "text": "to instance b"}))
    await asyncio.wait_for(watched.conflicted.wait(), 5)  # b has met a's head
    slow.release.set()
    stored_a, stored_b = await asyncio.wait_for(asyncio.gather(first, second), 10)

    assert stored_a["id"] != stored_b["id"]
    again = await ConversationRegistry(store, idle_limit_s=60).get("conv-5")
    assert again is not None
    assert [(x["id"], x["text"]) for x in again.activities] == [
        ("conv-5|0000000", "to instance a"),
        ("conv-5|0000001", "to instance b"),
    ]
