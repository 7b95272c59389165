"""Stores for the data-layer tests: a local Cosmos DB server for the session, the full
retail dataset imported once into a template SQLite file that each test copies, and a
`store` fixture parametrized over both backends (the contract suite)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shop.store.base import Collection, Record
from shop.store.cosmos import CosmosStore
from shop.store.sqlite import SqliteStore
from tests.support.cosmos import TEST_KEY, cosmos_server

AnyStore = SqliteStore | CosmosStore


@pytest.fixture(scope="session")
def dataset(dataset_dir: Path) -> dict[str, dict[str, Any]]:
    """The three files as loaded JSON; tests must copy before changing anything."""
    return {c.value: json.loads((dataset_dir / f"{c.value}.json").read_text("utf-8")) for c in Collection}


@pytest.fixture(scope="session")
def cosmos_endpoint() -> Iterator[str]:
    with cosmos_server() as endpoint:
        yield endpoint


async def open_cosmos(endpoint: str) -> CosmosStore:
    # A database per test: the server keeps everything in memory, and tests stay independent.
    return await CosmosStore.open(endpoint, TEST_KEY, f"test-{uuid.uuid4().hex[:12]}", verify_tls=False)


@pytest.fixture(params=["sqlite", "cosmos"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AnyStore]:
    """An empty store of each kind. Cosmos is started only when a cosmos case runs."""
    opened: AnyStore
    if request.param == "sqlite":
        opened = await SqliteStore.open(tmp_path / "contract.sqlite3")
    else:
        opened = await open_cosmos(request.getfixturevalue("cosmos_endpoint"))
    yield opened
    await opened.aclose()


async def import_orders_subset(
    store: AnyStore, dataset: dict[str, dict[str, Any]], order_ids: Iterable[str]
) -> None:
    """Imports the given orders, their customers (with all their orders) and every product:
    enough for the retail rules, at a fraction of a full Cosmos import."""
    orders, users = dataset["orders"], dataset["users"]
    wanted_users = {orders[o]["user_id"] for o in order_ids}
    wanted_orders = {o for u in wanted_users for o in users[u]["orders"] if o in orders}
    for collection, keys in (
        (Collection.CUSTOMERS, wanted_users),
        (Collection.ORDERS, wanted_orders),
        (Collection.PRODUCTS, set(dataset["products"])),
    ):
        records = [
            Record(key=key, seq=seq, doc=json.loads(json.dumps(doc)))
            for seq, (key, doc) in enumerate(dataset[collection.value].items())
            if key in keys
        ]
        await store.import_records(collection, records)


class ReadRendezvous:
    """Wraps a store so the first `parties` order reads wait for one another: concurrent
    actions then all act on the same version, the race the ETags must settle."""

    def __init__(self, inner: AnyStore, parties: int = 2) -> None:
        self._inner = inner
        self._parties = parties
        self._arrived = 0
        self._everyone = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get_order(self, order_id: str) -> Any:
        read = await self._inner.get_order(order_id)
        if self._arrived < self._parties:
            self._arrived += 1
            if self._arrived == self._parties:
                self._everyone.set()
            await asyncio.wait_for(self._everyone.wait(), timeout=10)
        return read
