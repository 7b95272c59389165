"""Chooses and opens the stores from settings: the one place that knows both backends.

Cosmos DB support is an optional extra; it is imported only when STORE=cosmos, and a
missing SDK stops start-up with a message that names the extra.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from shop.errors import ConfigurationError
from shop.store.base import OrderStore, RetentionPolicy, StateStore
from shop.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from shop.store.cosmos import CosmosStore

log = logging.getLogger(__name__)


class StoreKind(StrEnum):
    SQLITE = "sqlite"
    COSMOS = "cosmos"


class StoreSettings(Protocol):
    """The settings a store is opened with; `bot.settings.Settings` has them."""

    @property
    def store(self) -> StoreKind: ...
    @property
    def sqlite_path(self) -> Path: ...
    @property
    def cosmos_endpoint(self) -> str: ...
    @property
    def cosmos_key(self) -> str: ...
    @property
    def cosmos_database(self) -> str: ...
    @property
    def cosmos_create_containers(self) -> bool: ...


@dataclass
class Stores:
    """The opened stores of one app instance. Both may be the same object (one
    connection or client serves both); `aclose` closes each underlying store once."""

    orders: OrderStore
    state: StateStore

    async def aclose(self) -> None:
        await self.orders.aclose()
        if self.state is not self.orders:
            await self.state.aclose()


async def open_stores(
    settings: StoreSettings, *, retention: RetentionPolicy | None = None, cosmos_verify_tls: bool = True
) -> Stores:
    """Opens the store that STORE names. It does not seed: the app calls `seed_if_empty`
    when SEED_ON_START is set, and `aftercare data import` must not import twice.

    `retention` says which state documents are conversation data and how long they are
    kept (a Cosmos DB `ttl` on each; `purge_expired` on SQLite); without it nothing expires.

    `cosmos_verify_tls=False` is for a self-signed Cosmos DB emulator in tests and
    benchmarks; it is an argument, not a setting, so a deployment cannot switch
    verification off.
    """
    if settings.store == StoreKind.COSMOS:
        if not settings.cosmos_endpoint:
            raise ConfigurationError("COSMOS_ENDPOINT is required when STORE=cosmos")
        store: CosmosStore | SqliteStore = await _cosmos_store_class().open(
            settings.cosmos_endpoint,
            settings.cosmos_key,
            settings.cosmos_database,
            verify_tls=cosmos_verify_tls,
            retention=retention,
            create_containers=settings.cosmos_create_containers,
        )
    else:
        store = await SqliteStore.open(settings.sqlite_path, retention=retention)
    return Stores(orders=store, state=store)


async def seed_if_empty(orders: OrderStore, dataset_dir: Path) -> int:
    """Imports the retail dataset when the store holds no orders; returns records imported.

    An already-seeded store is left alone (0), so restarts and several app instances
    starting together do not rewrite it; the import is idempotent should two race.
    """
    if await orders.has_data():
        return 0
    from shop.dataset import import_dataset

    counts = await import_dataset(orders, dataset_dir, progress=False)
    total = sum(counts.values())
    log.info("seeded the order store from %s: %s", dataset_dir, counts)
    return total


def _cosmos_store_class() -> type[CosmosStore]:
    try:
        from shop.store.cosmos import CosmosStore
    except ImportError as exc:
        raise ConfigurationError(
            "STORE=cosmos needs the Azure Cosmos DB SDK: pip install 'aftercare[cosmos]'"
        ) from exc
    return CosmosStore
