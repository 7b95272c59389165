"""Store latency: SQLite and Cosmos DB (the local protocol server) side by side.

For each store, in one run: `get_order_details` through the retail service (a turn's
order lookup), a conversation-state read + conditional write through the Bot Framework
storage adapter (what every turn does once), and an import of the full retail dataset.
Prints p50 and p99 per operation. The Cosmos DB figures measure the protocol server
on this machine, not Azure: they show client-side cost and relative shape only.

Run: `.venv/bin/python -m bench.store_bench [--lookups 1000] [--state-turns 500] [--imports 3]`
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.state_storage import BotFrameworkStorage
from shop.dataset import SHIPPED_DATASET_DIR, import_dataset
from shop.retail import RetailService
from shop.store.base import Collection
from shop.store.cosmos import CosmosStore
from shop.store.sqlite import SqliteStore
from tests.support.cosmos import TEST_KEY, cosmos_server

DATASET_DIR = SHIPPED_DATASET_DIR
Store = SqliteStore | CosmosStore


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def timed(runs: int, operation: Callable[[int], Awaitable[object]]) -> list[float]:
    """Milliseconds per call of operation(i), for i in range(runs)."""
    samples = []
    for i in range(runs):
        started = time.perf_counter()
        await operation(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def measure(
    name: str, open_store: Callable[[], Awaitable[Store]], args: argparse.Namespace
) -> list[str]:
    rows = []

    async def fresh_import(_: int) -> None:
        store = await open_store()
        try:
            await import_dataset(store, args.dataset, progress=False)
        finally:
            await store.aclose()

    imports = await timed(args.imports, fresh_import)
    store = await open_store()
    try:
        await import_dataset(store, args.dataset, progress=False)
        order_ids = [key async for key, _ in store.iter_records(Collection.ORDERS)]
        rng = random.Random(7)
        picks = [rng.choice(order_ids) for _ in range(args.lookups)]
        service = RetailService(store)
        await service.get_order_details(picks[0])  # warm the connection
        lookups = await timed(args.lookups, lambda i: service.get_order_details(picks[i]))

        storage = BotFrameworkStorage(store)
        key = f"webchat/conversations/{uuid.uuid4().hex}/"
        await storage.write({key: {"turns": 0}})

        async def state_turn(_: int) -> None:
            item = (await storage.read([key]))[key]
            assert isinstance(item, dict)
            item["turns"] += 1
            await storage.write({key: item})

        state = await timed(args.state_turns, state_turn)
    finally:
        await store.aclose()
    for label, samples in (
        ("get_order_details", lookups),
        ("state read+write", state),
        ("import full dataset", imports),
    ):
        rows.append(
            f"| {name} | {label} | {len(samples)} | {statistics.median(samples):.2f} | "
            f"{percentile(samples, 0.99):.2f} |"
        )
    return rows


async def main(args: argparse.Namespace) -> None:
    rows = ["| store | operation | n | p50 ms | p99 ms |", "| --- | --- | --- | --- | --- |"]
    with tempfile.TemporaryDirectory() as scratch:

        async def open_sqlite() -> Store:
            return await SqliteStore.open(Path(scratch) / f"{uuid.uuid4().hex}.sqlite3")

        rows += await measure("sqlite", open_sqlite, args)
    with cosmos_server() as endpoint:

        async def open_cosmos() -> Store:
            return await CosmosStore.open(
                endpoint, TEST_KEY, f"bench-{uuid.uuid4().hex[:8]}", verify_tls=False
            )

        rows += await measure("cosmos (local server)", open_cosmos, args)
    print("\n".join(rows))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lookups", type=int, default=1000, help="get_order_details calls per store")
    parser.add_argument("--state-turns", type=int, default=500, help="state read+write cycles per store")
    parser.add_argument("--imports", type=int, default=3, help="full imports into a fresh store, per store")
    parser.add_argument("--dataset", type=Path, default=DATASET_DIR, help="folder of the retail dataset")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
