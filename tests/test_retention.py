"""Retention: which state documents are conversation data, and the purge on SQLite with a
fake clock (the handoff queue kept consistent). The app's side: test_retention_app.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.channels.call_tickets import TICKET_KEY_DOC
from bot.handoff.records import HandoffRecord, HandoffStatus, Packet, Trigger
from bot.handoff.store import INDEX_KEY, HandoffStore, record_key
from bot.retention import DAY_S, conversation_retention, is_conversation_data, purge_once
from bot.service import SIGNING_KEY_DOC
from shop.store.sqlite import SqliteStore

NOW = 1_750_000_000.0
CONVERSATION_KEYS = (
    "directline/conversations/Xq3-k_9aZ0bC1dE2fG3hI4jK",
    "msteams/conversations/a:1xYz-19:abc@thread.v2;messageid=1",
    "voice/conversations/call-7",
    "dl/Xq3-k_9aZ0bC1dE2fG3hI4jK",
    "dl/Xq3-k_9aZ0bC1dE2fG3hI4jK/0000012",
    "handoff/conversation/Xq3-k_9aZ0bC1dE2fG3hI4jK",
    "agent/session/0AbC_dEf",
)
CONFIGURATION_KEYS = (
    SIGNING_KEY_DOC,
    TICKET_KEY_DOC,
    INDEX_KEY,
    "agent/account/alex",
    "agent/presence",
    "vectors/all-minilm-l6-v2/0123456789abcdef",
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("key", CONVERSATION_KEYS)
def test_conversation_data_expires(key: str) -> None:
    assert is_conversation_data(key)


@pytest.mark.parametrize("key", CONFIGURATION_KEYS)
def test_configuration_is_kept(key: str) -> None:
    assert not is_conversation_data(key)


def handoff(conversation_id: str, at: float) -> Callable[[HandoffRecord | None], HandoffRecord]:
    def queue(current: HandoffRecord | None) -> HandoffRecord:
        return HandoffRecord(
            conversation_id=conversation_id,
            channel_id="directline",
            status=HandoffStatus.QUEUED,
            reference={},
            packet=Packet(reason="asked", trigger=Trigger.ASKED, summary="wants a person"),
            queued_at=at,
        )

    return queue


@pytest.fixture
async def clocked_store(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, Clock]]:
    clock = Clock(NOW)
    store = await SqliteStore.open(tmp_path / "r.sqlite3", retention=conversation_retention(90), clock=clock)
    yield store, clock
    await store.aclose()


async def test_the_purge_deletes_expired_conversations_and_keeps_configuration_and_fresh_ones(
    clocked_store: tuple[SqliteStore, Clock],
) -> None:
    store, clock = clocked_store
    handoffs = HandoffStore(store)
    for key in CONVERSATION_KEYS + CONFIGURATION_KEYS:
        await store.write_state(key, {"at": "start"})
    await handoffs.change("old", handoff("old", NOW))
    clock.now = NOW + 89 * DAY_S
    await store.write_state("directline/conversations/fresh", {"turn": 1})
    await store.insert_state("dl/fresh", {"user_id": "u"})
    await handoffs.change("fresh", handoff("fresh", clock.now))
    # The index moved when "fresh" was queued: it is written now, but it is configuration anyway.
    assert await purge_once(store) == 0

    clock.now = NOW + 90 * DAY_S + 1
    purged = await purge_once(store)

    left = sorted([key async for key in store.iter_state_keys("")])
    assert purged == len(CONVERSATION_KEYS) + 1  # and the "old" handoff record
    assert left == sorted(
        [*CONFIGURATION_KEYS, "directline/conversations/fresh", "dl/fresh", record_key("fresh")]
    )
    index, _ = await handoffs.index()
    assert list(index.entries) == ["fresh"]  # the queue no longer points at the purged record
    assert await handoffs.get("fresh") is not None


async def test_a_conversation_written_to_again_is_kept_from_its_last_write(
    clocked_store: tuple[SqliteStore, Clock],
) -> None:
    store, clock = clocked_store
    key = "directline/conversations/long"
    etag = await store.write_state(key, {"turn": 1})
    clock.now = NOW + 60 * DAY_S
    await store.write_state(key, {"turn": 2}, etag=etag)
    clock.now = NOW + 100 * DAY_S
    assert await store.purge_expired() == 0
    clock.now = NOW + 151 * DAY_S
    assert await store.purge_expired() == 1
