"""Retention in the stores themselves: an SQLite file from before retention is upgraded in
place, and Cosmos DB items of conversation data carry a `ttl` in a container with TTL on.

(The Cosmos DB test server keeps `defaultTtl` and each item's `ttl` as written but never
expires anything: Cosmos DB's own deletion cannot be shown here, only that it is asked for.)
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.cosmos import PartitionKey
from azure.cosmos.aio import CosmosClient

from bot.retention import DAY_S, conversation_retention
from shop.store.cosmos import CosmosStore, item_id
from shop.store.sqlite import SqliteStore
from tests.support.cosmos import TEST_KEY

NOW = 1_750_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def old_sqlite_file(path: Path) -> None:
    """A store file as the app wrote it before retention: `state` without `written_at`."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE state (key TEXT PRIMARY KEY, body TEXT NOT NULL, etag TEXT NOT NULL)")
        db.executemany(
            "INSERT INTO state VALUES (?, ?, ?)",
            [
                ("directline/conversations/old", '{"dialog": {"turn": 3}}', "e1"),
                ("dl/old", '{"user_id": "dl_user"}', "e2"),
                ("dl/signing-key", '{"key": "ab"}', "e3"),
            ],
        )
    db.close()


async def test_an_old_sqlite_file_gains_written_at_and_its_rows_count_as_written_now(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    old_sqlite_file(path)
    clock = Clock(NOW)
    store = await SqliteStore.open(path, retention=conversation_retention(90), clock=clock)
    try:
        read = await store.read_state("directline/conversations/old")
        assert read is not None and read.doc == {"dialog": {"turn": 3}} and read.etag == "e1"
        await store.write_state("directline/conversations/new", {"turns": 1})
        clock.now = NOW + 89 * DAY_S
        assert await store.purge_expired() == 0  # the old rows' age starts at the upgrade
        clock.now = NOW + 91 * DAY_S
        assert await store.purge_expired() == 3
        assert [key async for key in store.iter_state_keys("")] == ["dl/signing-key"]
    finally:
        await store.aclose()
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(state)")}
        indexes = {row[1] for row in db.execute("PRAGMA index_list(state)")}
    db.close()
    assert "written_at" in columns and "state_written_at" in indexes


async def test_two_processes_opening_an_old_file_at_once_both_succeed(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old_sqlite_file(path)
    first, second = await asyncio.gather(SqliteStore.open(path), SqliteStore.open(path))
    try:
        for store in (first, second):
            assert await store.read_state("dl/old") is not None
    finally:
        await first.aclose()
        await second.aclose()


async def test_reopening_an_upgraded_file_keeps_the_times_written(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    clock = Clock(NOW)
    store = await SqliteStore.open(path, retention=conversation_retention(1), clock=clock)
    await store.write_state("directline/conversations/c", {"turns": 1})
    await store.aclose()
    clock.now = NOW + 2 * DAY_S
    store = await SqliteStore.open(path, retention=conversation_retention(1), clock=clock)
    try:
        assert await store.purge_expired() == 1
    finally:
        await store.aclose()


@pytest.fixture
async def cosmos_state(cosmos_endpoint: str) -> Any:
    """(the store with a 90-day policy, the raw `state` container of its database)."""
    database = f"test-{uuid.uuid4().hex[:12]}"
    store = await CosmosStore.open(
        cosmos_endpoint, TEST_KEY, database, verify_tls=False, retention=conversation_retention(90)
    )
    client = CosmosClient(cosmos_endpoint, TEST_KEY, connection_verify=False)
    yield store, client.get_database_client(database).get_container_client("state")
    await client.close()
    await store.aclose()


async def test_cosmos_state_container_has_ttl_on_without_a_default(cosmos_state: Any) -> None:
    _, container = cosmos_state
    properties = await container.read()
    assert properties["defaultTtl"] == -1


async def test_cosmos_conversation_items_carry_a_ttl_and_configuration_items_none(
    cosmos_state: Any,
) -> None:
    store, container = cosmos_state
    etag = await store.write_state("directline/conversations/c1", {"turns": 1})  # upsert
    await store.write_state("directline/conversations/c1", {"turns": 2}, etag=etag)  # replace
    await store.write_state("msteams/conversations/19:a#b", {"turns": 1}, etag="cleared")  # create
    await store.insert_state("dl/c1", {"user_id": "u"})
    await store.insert_state("dl/c1/0000000", {"text": "hi"})
    await store.insert_state("handoff/conversation/c1", {"status": "queued"})
    await store.write_state("agent/session/s1", {"agent": "alex"})
    for key in ("dl/signing-key", "calls/ticket-key", "handoff/index", "agent/account/alex", "vectors/m/ab"):
        await store.write_state(key, {"k": key})

    async def ttl(key: str) -> Any:
        item = await container.read_item(item_id(key), partition_key=item_id(key))
        return item.get("ttl")

    for key in (
        "directline/conversations/c1",
        "msteams/conversations/19:a#b",
        "dl/c1",
        "dl/c1/0000000",
        "handoff/conversation/c1",
        "agent/session/s1",
    ):
        assert await ttl(key) == 90 * DAY_S, key
    for key in ("dl/signing-key", "calls/ticket-key", "handoff/index", "agent/account/alex", "vectors/m/ab"):
        assert await ttl(key) is None, key
    # Cosmos DB deletes expired items itself; the app has nothing to purge there.
    assert await store.purge_expired() == 0


async def test_cosmos_warns_when_the_state_container_has_ttl_off(
    cosmos_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A container provisioned without TTL (an old deployment) is used, but said to be wrong."""
    database = f"test-{uuid.uuid4().hex[:12]}"
    async with CosmosClient(cosmos_endpoint, TEST_KEY, connection_verify=False) as client:
        db = await client.create_database_if_not_exists(database)
        await db.create_container_if_not_exists("state", PartitionKey("/id"))
    with caplog.at_level(logging.WARNING, logger="shop.store.cosmos"):
        store = await CosmosStore.open(
            cosmos_endpoint, TEST_KEY, database, verify_tls=False, retention=conversation_retention(90)
        )
    await store.aclose()
    assert any("TTL off" in record.getMessage() for record in caplog.records)
