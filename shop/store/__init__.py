"""Storage for the shop: the order and state protocols and their SQLite and Cosmos DB
implementations.

Start at `open_stores(settings)`; the design and its Cosmos DB costs are in README.md
next to this file. The Bot Framework's `Storage` adapter over a `StateStore` lives with
the bot (`bot.state_storage`), and dataset import/export in `shop.dataset`.
"""

from shop.store.base import Collection, OrderStore, Record, RetentionPolicy, StateStore, Versioned
from shop.store.factory import Stores, open_stores, seed_if_empty

__all__ = [
    "Collection",
    "OrderStore",
    "Record",
    "RetentionPolicy",
    "StateStore",
    "Stores",
    "Versioned",
    "open_stores",
    "seed_if_empty",
]
