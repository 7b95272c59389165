"""Storage for Aftercare: the order and state protocols, their SQLite and Cosmos DB
implementations, the Bot Framework storage adapter, and dataset import/export.

Start at `open_stores(settings)`; the design and its Cosmos DB costs are in README.md
next to this file.
"""

from bot.store.base import Collection, OrderStore, Record, StateStore, Versioned
from bot.store.factory import Stores, open_stores, seed_if_empty
from bot.store.state import BotFrameworkStorage

__all__ = [
    "BotFrameworkStorage",
    "Collection",
    "OrderStore",
    "Record",
    "StateStore",
    "Stores",
    "Versioned",
    "open_stores",
    "seed_if_empty",
]
