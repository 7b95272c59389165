"""Bot Framework `Storage` over a `StateStore`, so `ConversationState` and `UserState`
persist in SQLite or Cosmos DB with optimistic concurrency.

The e_tag rules follow `botbuilder.core.MemoryStorage` (and the Cosmos DB storage of
botbuilder-azure, which this replaces without its dependency tree):

- `read` returns each stored item as a dict carrying `"e_tag"`, the store's ETag.
- `write` takes dicts (their `"e_tag"` key) or objects such as `StoreItem` (their
  `e_tag` attribute). No e_tag or `"*"` writes unconditionally; `""` is refused as in
  MemoryStorage; any other value must equal the stored ETag, else the write raises
  `ConcurrencyConflict` and stores nothing for that key. A key with nothing stored
  accepts any e_tag (a conversation cleared mid-turn starts afresh).
- The conflict message contains "Etag conflict" and "precondition is not met", the two
  phrases botbuilder's Teams SSO de-duplication middleware looks for.

One deliberate difference: items are stored as plain JSON, not pickled. Reads return
dicts; a value JSON cannot hold fails the write with a `TypeError` naming the key, so
nothing from the store is ever unpickled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from botbuilder.core import Storage

from shop.store import jsondoc
from shop.store.base import JsonDict, StateStore

_E_TAG = "e_tag"


def _item_etag(item: object) -> str | None:
    value = item.get(_E_TAG) if isinstance(item, Mapping) else getattr(item, _E_TAG, None)
    return None if value is None else str(value)


def _item_body(key: str, item: object) -> JsonDict:
    """The JSON document for one item, without its e_tag."""
    if isinstance(item, Mapping):
        body = {str(k): v for k, v in item.items() if k != _E_TAG}
    elif hasattr(item, "__dict__"):
        body = {k: v for k, v in vars(item).items() if k != _E_TAG and not k.startswith("_")}
    else:
        raise TypeError(f"state item {key!r} is a {type(item).__name__}, not a dict or StoreItem")
    try:
        # Round-trip through JSON: proves the value is storable and drops any aliasing
        # with the caller's objects (MemoryStorage deep-copies for the same reason).
        return dict(jsondoc.copy(body))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"state item {key!r} holds a value that is not plain JSON: {exc}") from exc


class BotFrameworkStorage(Storage):
    """`botbuilder.core.Storage` backed by a `StateStore`."""

    def __init__(self, store: StateStore) -> None:
        super().__init__()
        self._store = store

    async def read(self, keys: list[str]) -> dict[str, object]:
        if not keys:
            return {}
        unique = list(dict.fromkeys(keys))
        found = await asyncio.gather(*(self._store.read_state(key) for key in unique))
        result: dict[str, object] = {}
        for key, versioned in zip(unique, found, strict=True):
            if versioned is not None:
                # The store parses the document afresh on every read (the StateStore
                # contract), so the caller may own it without a copy.
                item = versioned.doc
                item[_E_TAG] = versioned.etag
                result[key] = item
        return result

    async def write(self, changes: dict[str, object]) -> None:
        if changes is None:
            raise ValueError("changes are required when writing")
        if not changes:
            return
        prepared: list[tuple[str, JsonDict, str | None, object]] = []
        for key, item in changes.items():
            etag = _item_etag(item)
            if etag == "":
                raise ValueError(f"state item {key!r} has an empty e_tag")
            prepared.append((key, _item_body(key, item), None if etag == "*" else etag, item))
        for key, body, etag, item in prepared:
            new_etag = await self._store.write_state(key, body, etag=etag)
            # Hand the new ETag back to the caller's object, so a second save in the same
            # turn is conditional on this write rather than failing on its own ETag.
            # Only when the caller already tracks one: MemoryStorage leaves new items bare.
            if etag is not None:
                _set_etag(item, new_etag)

    async def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            await self._store.delete_state(key)


def _set_etag(item: Any, etag: str) -> None:
    if isinstance(item, dict):
        item[_E_TAG] = etag
    elif hasattr(item, "__dict__"):
        setattr(item, _E_TAG, etag)
